#include "engine/synth.h"

#include <array>
#include <cmath>
#include <cstring>
#include <string>
#include <unordered_set>
#include <utility>

#include "core/utf8.h"
#include "engine/quant/quant.h"

namespace ztslm::engine {
namespace {

using gguf::TensorType;
using gguf::Value;
using gguf::ValueType;

// Shapes of the published checkpoints' config.json files.
const std::array<SynthShape, 5> kPresets{{
    {"smollm2-135m", "llama", 49152, 576, 30, 9, 3, 1536, 8192, 100000.0f, 1e-5f, true, false,
     false},
    {"smollm2-360m", "llama", 49152, 960, 32, 15, 5, 2560, 8192, 100000.0f, 1e-5f, true, false,
     false},
    {"qwen2.5-0.5b", "qwen2", 151936, 896, 24, 14, 2, 4864, 32768, 1000000.0f, 1e-6f, true, true,
     false},
    {"llama3.2-1b", "llama", 128256, 2048, 16, 32, 8, 8192, 131072, 500000.0f, 1e-5f, true, false,
     true},
    {"tinyllama-1.1b", "llama", 32000, 2048, 22, 32, 4, 5632, 2048, 10000.0f, 1e-5f, false, false,
     false},
}};

// splitmix64: a small, fast, seedable generator; the weights only need to be deterministic.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Approximately N(0, 1): the sum of four uniforms (Irwin–Hall), centred and scaled.
  float normal() {
    const uint64_t r = next();
    float sum = 0.0f;
    for (int i = 0; i < 4; ++i) sum += static_cast<float>((r >> (16 * i)) & 0xFFFF) * (1.0f / 65536.0f);
    return (sum - 2.0f) * 1.7320508f;
  }
};

uint64_t hash_name(std::string_view s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}

bool is_k_quant(TensorType t) {
  return t == TensorType::kQ4_K || t == TensorType::kQ5_K || t == TensorType::kQ6_K;
}

// llama-quantize's fallback for K-quants whose rows are not a multiple of 256.
TensorType k_fallback(TensorType t) {
  switch (t) {
    case TensorType::kQ4_K: return TensorType::kQ5_0;
    case TensorType::kQ5_K: return TensorType::kQ5_1;
    case TensorType::kQ6_K: return TensorType::kQ8_0;
    default: return t;
  }
}

// llama-quantize gives these layers more bits in the _M mixes.
bool use_more_bits(int il, int n_layer) {
  return il < n_layer / 8 || il >= 7 * n_layer / 8 || (il - n_layer / 8) % 3 == 2;
}

uint32_t file_type_of(const SynthRecipe& r) {
  if (r.is_mix) return r.k_medium ? 15u : 17u;  // MOSTLY_Q4_K_M / MOSTLY_Q5_K_M
  switch (r.base) {
    case TensorType::kF32: return 0;
    case TensorType::kF16: return 1;
    case TensorType::kQ4_0: return 2;
    case TensorType::kQ4_1: return 3;
    case TensorType::kQ8_0: return 7;
    case TensorType::kQ5_0: return 8;
    case TensorType::kQ5_1: return 9;
    case TensorType::kQ4_K: return 14;
    case TensorType::kQ5_K: return 16;
    case TensorType::kQ6_K: return 18;
    case TensorType::kBF16: return 32;
    default: return 0;
  }
}

// A SentencePiece vocabulary of `n_vocab` tokens: <unk> <s> </s>, the ChatML control tokens,
// 256 byte tokens, then pieces of growing length (with and without the ▁ word prefix) whose
// scores prefer earlier (shorter, more common) pieces, so SPM merges reach whole words.
void add_synth_vocab(gguf::Metadata& md, uint32_t n_vocab) {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  tokens.reserve(n_vocab);
  std::unordered_set<std::string> seen;
  auto add = [&](std::string t, int32_t type) {
    if (tokens.size() >= n_vocab || !seen.insert(t).second) return;
    tokens.push_back(std::move(t));
    types.push_back(type);
  };
  add("<unk>", 2);
  add("<s>", 3);
  add("</s>", 3);
  add("<|im_start|>", 3);
  add("<|im_end|>", 3);
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) add(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">", 6);
  const std::string kWord = "\xE2\x96\x81";  // ▁
  add(kWord, 1);
  std::vector<std::string> level;
  for (char c = 33; c < 127; ++c) level.emplace_back(1, c);
  for (const auto& s : level) {
    add(s, 1);
    add(kWord + s, 1);
  }
  const std::string letters = "etaoinshrdlcumwfgypbvkjxqz";
  std::vector<std::string> prev(letters.size());
  for (size_t i = 0; i < letters.size(); ++i) prev[i] = std::string(1, letters[i]);
  while (tokens.size() < n_vocab && !prev.empty()) {
    std::vector<std::string> next;
    for (const auto& p : prev) {
      for (char c : letters) {
        if (tokens.size() >= n_vocab) break;
        std::string s = p + c;
        add(kWord + s, 1);
        add(s, 1);
        if (next.size() < 200000) next.push_back(std::move(s));
      }
    }
    prev = std::move(next);
  }
  for (uint32_t i = static_cast<uint32_t>(tokens.size()); i < n_vocab; ++i) {
    add("<unused" + std::to_string(i) + ">", 5);
  }
  std::vector<float> scores(tokens.size());
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = -static_cast<float>(i);
  md.add("tokenizer.ggml.model", Value::string("llama"));
  md.add("tokenizer.ggml.tokens", Value::array(ValueType::kString, std::move(tokens)));
  md.add("tokenizer.ggml.scores", Value::array(ValueType::kFloat32, std::move(scores)));
  md.add("tokenizer.ggml.token_type", Value::array(ValueType::kInt32, std::move(types)));
  md.add("tokenizer.ggml.bos_token_id", Value::u32(1));
  md.add("tokenizer.ggml.eos_token_id", Value::u32(2));
  md.add("tokenizer.ggml.unknown_token_id", Value::u32(0));
  md.add("tokenizer.chat_template",
         Value::string("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                       "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                       "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"));
}

// Llama 3.1+ RoPE frequency factors (factor 32, low 1, high 4, original context 8192), as the
// converter bakes them into rope_freqs.weight.
std::vector<float> llama3_rope_freqs(uint32_t head_dim, float base) {
  const float factor = 32.0f, low_freq_factor = 1.0f, high_freq_factor = 4.0f;
  const float old_ctx = 8192.0f;
  const float low_wavelen = old_ctx / low_freq_factor;
  const float high_wavelen = old_ctx / high_freq_factor;
  std::vector<float> out(head_dim / 2);
  for (uint32_t i = 0; i < head_dim / 2; ++i) {
    const float freq = 1.0f / std::pow(base, static_cast<float>(2 * i) / static_cast<float>(head_dim));
    const float wavelen = 2.0f * 3.14159265358979f / freq;
    if (wavelen < high_wavelen) {
      out[i] = 1.0f;
    } else if (wavelen > low_wavelen) {
      out[i] = factor;
    } else {
      const float smooth = (old_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      out[i] = 1.0f / ((1.0f - smooth) / factor + smooth);
    }
  }
  return out;
}

struct TensorPlan {
  std::string name;
  std::vector<int64_t> ne;
  TensorType type;
  float std_dev;   // of the random values
  float mean;      // norms are centred on 1
};

}  // namespace

std::span<const SynthShape> synth_presets() { return kPresets; }

Result<SynthShape> find_synth_preset(std::string_view name) {
  for (const SynthShape& s : kPresets) {
    if (s.name == name) return s;
  }
  std::string names;
  for (const SynthShape& s : kPresets) names += (names.empty() ? "" : ", ") + s.name;
  return Status::not_found("unknown synth preset '{}' (known: {})", printable(name, 32), names);
}

TensorType SynthRecipe::type_for(std::string_view tensor, int64_t n_cols, int il, int n_layer) const {
  TensorType t = base;
  if (is_mix) {
    const TensorType kbase = k_medium ? TensorType::kQ4_K : TensorType::kQ5_K;
    if (il < 0) {
      t = TensorType::kQ6_K;  // token_embd acting as the output, and output.weight
    } else if (tensor.find("attn_v") != std::string_view::npos ||
               tensor.find("ffn_down") != std::string_view::npos) {
      t = use_more_bits(il, n_layer) ? TensorType::kQ6_K : kbase;
    } else {
      t = kbase;
    }
  }
  if (is_k_quant(t) && n_cols % 256 != 0) t = k_fallback(t);
  return t;
}

uint32_t SynthRecipe::file_type() const { return file_type_of(*this); }

Result<SynthRecipe> parse_synth_recipe(std::string_view name) {
  SynthRecipe r;
  r.name = std::string(name);
  if (name == "Q4_K_M" || name == "q4_k_m" || name == "Q5_K_M" || name == "q5_k_m") {
    r.is_mix = true;
    r.k_medium = name[1] == '4';
    r.base = r.k_medium ? TensorType::kQ4_K : TensorType::kQ5_K;
    return r;
  }
  const auto t = gguf::tensor_type_from_name(name);
  if (!t.has_value() || !can_quantize(*t)) {
    return Status::invalid_argument(
        "unknown or unsupported weight type '{}' (choose F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, "
        "Q8_0, Q4_K, Q5_K, Q6_K, Q4_K_M, Q5_K_M)",
        printable(name, 16));
  }
  r.base = *t;
  return r;
}

Result<gguf::Writer> build_synth_model(const SynthShape& s, const SynthRecipe& recipe, uint64_t seed) {
  if (s.n_head == 0 || s.n_embd % s.n_head != 0 || s.n_head_kv == 0 || s.n_head % s.n_head_kv != 0) {
    return Status::invalid_argument("inconsistent synth shape {}", s.name);
  }
  gguf::Writer w;
  gguf::Metadata& md = w.metadata();
  const std::string& a = s.arch;
  const uint32_t head_dim = s.n_embd / s.n_head;
  md.add("general.architecture", Value::string(a));
  md.add("general.name", Value::string("synth-" + s.name + "-" + recipe.name));
  md.add("general.file_type", Value::u32(file_type_of(recipe)));
  if (recipe.base != TensorType::kF32 && recipe.base != TensorType::kF16 &&
      recipe.base != TensorType::kBF16) {
    md.add("general.quantization_version", Value::u32(2));
  }
  md.add(a + ".context_length", Value::u32(s.n_ctx_train));
  md.add(a + ".embedding_length", Value::u32(s.n_embd));
  md.add(a + ".block_count", Value::u32(s.n_layer));
  md.add(a + ".feed_forward_length", Value::u32(s.n_ff));
  md.add(a + ".attention.head_count", Value::u32(s.n_head));
  md.add(a + ".attention.head_count_kv", Value::u32(s.n_head_kv));
  md.add(a + ".attention.layer_norm_rms_epsilon", Value::f32(s.rms_eps));
  md.add(a + ".rope.freq_base", Value::f32(s.rope_freq_base));
  md.add(a + ".rope.dimension_count", Value::u32(head_dim));
  md.add(a + ".vocab_size", Value::u32(s.n_vocab));
  add_synth_vocab(md, s.n_vocab);

  const int n_layer = static_cast<int>(s.n_layer);
  const int64_t e = s.n_embd, kv = int64_t{s.n_head_kv} * head_dim, ff = s.n_ff;
  std::vector<TensorPlan> plan;
  auto mat = [&](std::string name, int64_t n_cols, int64_t n_rows, int il) {
    const TensorType t = recipe.type_for(name, n_cols, il, n_layer);
    plan.push_back({std::move(name), {n_cols, n_rows}, t, 1.0f / std::sqrt(static_cast<float>(n_cols)), 0.0f});
  };
  auto vec = [&](std::string name, int64_t n, float std_dev, float mean) {
    plan.push_back({std::move(name), {n}, TensorType::kF32, std_dev, mean});
  };
  mat("token_embd.weight", e, s.n_vocab, s.tied_output ? -1 : 0);
  if (s.llama3_rope) {
    plan.push_back({"rope_freqs.weight", {head_dim / 2}, TensorType::kF32, -1.0f, 0.0f});
  }
  for (int il = 0; il < n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    vec(p + "attn_norm.weight", e, 0.05f, 1.0f);
    mat(p + "attn_q.weight", e, e, il);
    mat(p + "attn_k.weight", e, kv, il);
    mat(p + "attn_v.weight", e, kv, il);
    if (s.qkv_bias) {
      vec(p + "attn_q.bias", e, 0.1f, 0.0f);
      vec(p + "attn_k.bias", kv, 0.1f, 0.0f);
      vec(p + "attn_v.bias", kv, 0.1f, 0.0f);
    }
    mat(p + "attn_output.weight", e, e, il);
    vec(p + "ffn_norm.weight", e, 0.05f, 1.0f);
    mat(p + "ffn_gate.weight", e, ff, il);
    mat(p + "ffn_up.weight", e, ff, il);
    mat(p + "ffn_down.weight", ff, e, il);
  }
  vec("output_norm.weight", e, 0.05f, 1.0f);
  if (!s.tied_output) mat("output.weight", e, s.n_vocab, -1);

  const std::vector<float> rope_freqs =
      s.llama3_rope ? llama3_rope_freqs(head_dim, s.rope_freq_base) : std::vector<float>();
  for (const TensorPlan& t : plan) {
    const uint64_t tseed = seed ^ hash_name(t.name);
    const TensorType type = t.type;
    const int64_t n_cols = t.ne[0];
    const float std_dev = t.std_dev, mean = t.mean;
    const bool is_rope = t.name == "rope_freqs.weight";
    auto fill = [=](std::span<std::byte> out) {
      Rng rng{tseed};
      std::vector<float> row(static_cast<size_t>(n_cols));
      const size_t rb = row_bytes(type, n_cols);
      const size_t n_rows = out.size() / rb;
      for (size_t r = 0; r < n_rows; ++r) {
        if (is_rope) {
          std::memcpy(row.data(), rope_freqs.data(), row.size() * sizeof(float));
        } else {
          for (float& v : row) v = mean + std_dev * rng.normal();
        }
        quantize_row(type, row.data(), out.data() + r * rb, n_cols);
      }
    };
    ZTSLM_TRY(w.add_tensor_lazy(t.name, type, t.ne, fill));
  }
  return w;
}

}  // namespace ztslm::engine
