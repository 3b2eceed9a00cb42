// Hyper-parameter and tensor validation, and the features the reference models do not exercise
// (untied output and output bias, all optional biases, partial NEOX RoPE, frequency factors,
// linear RoPE scaling, per-layer head counts), on small synthetic models built with gguf::Writer
// and checked against a float64 forward pass written from spec/ENGINE.md §4.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/arch/hparams.h"
#include "engine/model.h"
#include "engine/session.h"
#include "gguf/writer.h"
#include "test_util.h"

namespace ztslm::engine {
namespace {

struct Spec {
  std::string arch = "llama";
  uint32_t n_embd = 16, n_layer = 2, n_head = 4, n_head_kv = 2, n_ff = 24, n_vocab = 40;
  uint32_t head_dim = 4, n_rot = 4;
  std::vector<uint32_t> n_head_kv_arr;  // per layer, instead of n_head_kv, when not empty
  bool biases = false, untied = false, output_bias = false, rope_freqs = false;
  float freq_base = 10000.0f, scale_factor = 0.0f;  // linear scaling when > 0
};

struct TensorSpec {
  std::string name;
  gguf::TensorType type = gguf::TensorType::kF32;
  std::vector<int64_t> ne;
  std::vector<float> data;
};

struct Built {
  gguf::Metadata md;
  std::vector<TensorSpec> tensors;
};

Built build(const Spec& s) {
  Built b;
  const std::string a = s.arch;
  b.md.add("general.architecture", gguf::Value::string(a));
  b.md.add(a + ".context_length", gguf::Value::u32(64));
  b.md.add(a + ".embedding_length", gguf::Value::u32(s.n_embd));
  b.md.add(a + ".block_count", gguf::Value::u32(s.n_layer));
  b.md.add(a + ".feed_forward_length", gguf::Value::u32(s.n_ff));
  b.md.add(a + ".attention.head_count", gguf::Value::u32(s.n_head));
  if (s.n_head_kv_arr.empty()) {
    b.md.add(a + ".attention.head_count_kv", gguf::Value::u32(s.n_head_kv));
  } else {
    b.md.add(a + ".attention.head_count_kv",
             gguf::Value::array(gguf::ValueType::kUint32, s.n_head_kv_arr));
  }
  b.md.add(a + ".attention.key_length", gguf::Value::u32(s.head_dim));
  b.md.add(a + ".attention.value_length", gguf::Value::u32(s.head_dim));
  b.md.add(a + ".rope.dimension_count", gguf::Value::u32(s.n_rot));
  b.md.add(a + ".rope.freq_base", gguf::Value::f32(s.freq_base));
  b.md.add(a + ".attention.layer_norm_rms_epsilon", gguf::Value::f32(1e-5f));
  b.md.add(a + ".vocab_size", gguf::Value::u32(s.n_vocab));
  if (s.scale_factor > 0) {
    b.md.add(a + ".rope.scaling.type", gguf::Value::string("linear"));
    b.md.add(a + ".rope.scaling.factor", gguf::Value::f32(s.scale_factor));
  }
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto add = [&](std::string name, std::vector<int64_t> ne, float std, float mean = 0.0f) {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = mean + std * nd(rng);
    b.tensors.push_back({std::move(name), gguf::TensorType::kF32, std::move(ne), std::move(v)});
  };
  const int64_t e = s.n_embd, d = s.head_dim;
  add("token_embd.weight", {e, s.n_vocab}, 0.5f);
  for (uint32_t il = 0; il < s.n_layer; ++il) {
    const int64_t hkv = s.n_head_kv_arr.empty() ? s.n_head_kv : s.n_head_kv_arr[il];
    const std::string p = "blk." + std::to_string(il) + ".";
    add(p + "attn_norm.weight", {e}, 0.05f, 1.0f);
    add(p + "attn_q.weight", {e, s.n_head * d}, 0.3f);
    add(p + "attn_k.weight", {e, hkv * d}, 0.3f);
    add(p + "attn_v.weight", {e, hkv * d}, 0.3f);
    add(p + "attn_output.weight", {s.n_head * d, e}, 0.3f);
    if (s.biases) {
      add(p + "attn_q.bias", {s.n_head * d}, 0.1f);
      add(p + "attn_k.bias", {hkv * d}, 0.1f);
      add(p + "attn_v.bias", {hkv * d}, 0.1f);
      add(p + "attn_output.bias", {e}, 0.1f);
      add(p + "ffn_gate.bias", {s.n_ff}, 0.1f);
      add(p + "ffn_up.bias", {s.n_ff}, 0.1f);
      add(p + "ffn_down.bias", {e}, 0.1f);
    }
    add(p + "ffn_norm.weight", {e}, 0.05f, 1.0f);
    add(p + "ffn_gate.weight", {e, s.n_ff}, 0.3f);
    add(p + "ffn_up.weight", {e, s.n_ff}, 0.3f);
    add(p + "ffn_down.weight", {s.n_ff, e}, 0.3f);
  }
  add("output_norm.weight", {e}, 0.05f, 1.0f);
  if (s.untied) add("output.weight", {e, s.n_vocab}, 0.5f);
  if (s.output_bias) add("output.bias", {s.n_vocab}, 0.5f);
  if (s.rope_freqs) add("rope_freqs.weight", {s.n_rot / 2}, 0.5f, 2.0f);
  return b;
}

Result<std::shared_ptr<const Model>> load(const Built& b) {
  gguf::Writer w;
  for (const auto& [k, v] : b.md.entries()) w.metadata().add(k, v);
  for (const TensorSpec& t : b.tensors) {
    const auto* bytes = reinterpret_cast<const std::byte*>(t.data.data());
    const size_t n_bytes = t.data.size() * 4;  // F32 or I32
    Status st = w.add_tensor(t.name, t.type, t.ne, std::span(bytes, n_bytes));
    if (!st.ok()) return st;
  }
  auto image = std::make_shared<std::vector<std::byte>>(w.serialize());
  const std::span<const std::byte> view(*image);
  return Model::from_bytes(image, view);
}

const std::vector<float>& tensor(const Built& b, const std::string& name) {
  for (const TensorSpec& t : b.tensors) {
    if (t.name == name) return t.data;
  }
  static const std::vector<float> kEmpty;
  return kEmpty;
}

// y = W x (+ b) in double; W is [rows, cols] row-major.
std::vector<double> matvec(const std::vector<float>& w, const std::vector<double>& x, size_t rows,
                           const std::vector<float>& bias) {
  std::vector<double> y(rows, 0.0);
  for (size_t r = 0; r < rows; ++r) {
    double acc = 0;
    for (size_t c = 0; c < x.size(); ++c) acc += double{w[r * x.size() + c]} * x[c];
    y[r] = acc + (bias.empty() ? 0.0 : double{bias[r]});
  }
  return y;
}

std::vector<double> rmsnorm(const std::vector<double>& x, const std::vector<float>& w) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double scale = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + 1e-5);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * scale * w[i];
  return y;
}

// Float64 forward pass over `tokens` (positions 0..n-1); returns the logits of every position.
std::vector<std::vector<double>> reference_forward(const Spec& s, const Built& b,
                                                   const std::vector<int32_t>& tokens) {
  const size_t e = s.n_embd, d = s.head_dim, n = tokens.size();
  const bool neox = s.arch == "qwen2";
  const std::vector<float>& emb = tensor(b, "token_embd.weight");
  const std::vector<float>& ff = tensor(b, "rope_freqs.weight");
  const double freq_scale = s.scale_factor > 0 ? 1.0 / s.scale_factor : 1.0;
  std::vector<std::vector<double>> x(n);
  for (size_t t = 0; t < n; ++t) {
    x[t].assign(emb.begin() + static_cast<ptrdiff_t>(tokens[t] * e),
                emb.begin() + static_cast<ptrdiff_t>((tokens[t] + 1) * e));
  }
  auto rope = [&](std::vector<double>& v, size_t n_heads, size_t pos) {
    for (size_t h = 0; h < n_heads; ++h) {
      for (size_t i = 0; i < s.n_rot / 2; ++i) {
        double theta = static_cast<double>(pos) *
                       std::pow(double{s.freq_base}, -2.0 * static_cast<double>(i) / s.n_rot);
        if (!ff.empty()) theta /= ff[i];
        theta *= freq_scale;
        const size_t a = h * d + (neox ? i : 2 * i);
        const size_t c = h * d + (neox ? i + s.n_rot / 2 : 2 * i + 1);
        const double x0 = v[a], x1 = v[c];
        v[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
        v[c] = x0 * std::sin(theta) + x1 * std::cos(theta);
      }
    }
  };
  for (uint32_t il = 0; il < s.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    const size_t hkv = s.n_head_kv_arr.empty() ? s.n_head_kv : s.n_head_kv_arr[il];
    std::vector<std::vector<double>> q(n), k(n), v(n);
    for (size_t t = 0; t < n; ++t) {
      const auto h = rmsnorm(x[t], tensor(b, p + "attn_norm.weight"));
      q[t] = matvec(tensor(b, p + "attn_q.weight"), h, s.n_head * d, tensor(b, p + "attn_q.bias"));
      k[t] = matvec(tensor(b, p + "attn_k.weight"), h, hkv * d, tensor(b, p + "attn_k.bias"));
      v[t] = matvec(tensor(b, p + "attn_v.weight"), h, hkv * d, tensor(b, p + "attn_v.bias"));
      rope(q[t], s.n_head, t);
      rope(k[t], hkv, t);
    }
    for (size_t t = 0; t < n; ++t) {
      std::vector<double> o(s.n_head * d, 0.0);
      for (size_t h = 0; h < s.n_head; ++h) {
        const size_t kh = h / (s.n_head / hkv);
        std::vector<double> sc(t + 1);
        double mx = -INFINITY;
        for (size_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (size_t i = 0; i < d; ++i) dot += q[t][h * d + i] * k[j][kh * d + i];
          sc[j] = dot / std::sqrt(static_cast<double>(d));
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (double& z : sc) sum += (z = std::exp(z - mx));
        for (size_t j = 0; j <= t; ++j) {
          for (size_t i = 0; i < d; ++i) o[h * d + i] += sc[j] / sum * v[j][kh * d + i];
        }
      }
      const auto ao = matvec(tensor(b, p + "attn_output.weight"), o, e,
                             tensor(b, p + "attn_output.bias"));
      for (size_t i = 0; i < e; ++i) x[t][i] += ao[i];
      const auto h = rmsnorm(x[t], tensor(b, p + "ffn_norm.weight"));
      auto g = matvec(tensor(b, p + "ffn_gate.weight"), h, s.n_ff, tensor(b, p + "ffn_gate.bias"));
      const auto u = matvec(tensor(b, p + "ffn_up.weight"), h, s.n_ff, tensor(b, p + "ffn_up.bias"));
      for (size_t i = 0; i < s.n_ff; ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      const auto dn = matvec(tensor(b, p + "ffn_down.weight"), g, e, tensor(b, p + "ffn_down.bias"));
      for (size_t i = 0; i < e; ++i) x[t][i] += dn[i];
    }
  }
  std::vector<std::vector<double>> logits(n);
  const std::vector<float>& out = s.untied ? tensor(b, "output.weight") : emb;
  for (size_t t = 0; t < n; ++t) {
    logits[t] = matvec(out, rmsnorm(x[t], tensor(b, "output_norm.weight")), s.n_vocab,
                       tensor(b, "output.bias"));
  }
  return logits;
}

double max_diff_vs_reference(const Spec& s) {
  const Built b = build(s);
  auto model = load(b);
  EXPECT_TRUE(model.has_value()) << model.error().to_string();
  if (!model.has_value()) return INFINITY;
  ThreadPool pool(2);
  SessionOptions o;
  o.n_ctx = 32;
  o.max_logit_rows = 32;
  auto sess = Session::create(*model, pool, o);
  EXPECT_TRUE(sess.has_value());
  const std::vector<int32_t> tokens = {3, 17, 5, 39, 0, 22, 22, 9, 1};
  auto got = sess->decode(tokens, true);
  EXPECT_TRUE(got.has_value());
  const auto want = reference_forward(s, b, tokens);
  double m = 0;
  for (size_t t = 0; t < tokens.size(); ++t) {
    for (size_t v = 0; v < s.n_vocab; ++v) {
      m = std::max(m, std::fabs((*got)[t * s.n_vocab + v] - want[t][v]));
    }
  }
  return m;
}

TEST(SynthModelTest, LlamaMatchesFloat64Reference) {
  Spec s;
  EXPECT_LT(max_diff_vs_reference(s), 1e-4);
}

TEST(SynthModelTest, OptionalTensorsAndRopeVariantsMatchFloat64Reference) {
  Spec s;
  s.biases = s.untied = s.output_bias = s.rope_freqs = true;
  s.scale_factor = 4.0f;
  s.freq_base = 500000.0f;
  EXPECT_LT(max_diff_vs_reference(s), 1e-4);
  s.arch = "qwen2";  // NEOX, and a partial rotation: 4 of 8 dims per head
  s.head_dim = 8;
  s.n_rot = 4;
  s.n_head = 2;
  s.n_head_kv = 1;
  EXPECT_LT(max_diff_vs_reference(s), 1e-4);
  s.n_head_kv_arr = {2, 1};  // per-layer KV head counts
  EXPECT_LT(max_diff_vs_reference(s), 1e-4);
}

struct Defect {
  const char* name;
  std::function<void(Built&)> mutate;
  StatusCode code;
  const char* message_part;
};

TEST(SynthModelTest, RejectsEachDefect) {
  const std::vector<Defect> defects = {
      {"unsupported arch",
       [](Built& b) { b.md.set("general.architecture", gguf::Value::string("gpt2")); },
       StatusCode::kInvalidArgument, "gpt2"},
      {"block_count as i32", [](Built& b) { b.md.set("llama.block_count", gguf::Value::i32(2)); },
       StatusCode::kMalformed, "llama.block_count"},
      {"block_count over limit",
       [](Built& b) { b.md.set("llama.block_count", gguf::Value::u32(100000)); },
       StatusCode::kResourceExhausted, "block_count"},
      {"embedding_length 0",
       [](Built& b) { b.md.set("llama.embedding_length", gguf::Value::u32(0)); },
       StatusCode::kMalformed, "embedding_length"},
      {"head_count_kv does not divide",
       [](Built& b) { b.md.set("llama.attention.head_count_kv", gguf::Value::u32(3)); },
       StatusCode::kMalformed, "head_count_kv"},
      {"head_count array of wrong length",
       [](Built& b) {
         b.md.set("llama.attention.head_count",
                  gguf::Value::array(gguf::ValueType::kUint32, std::vector<uint32_t>{4, 4, 4}));
       },
       StatusCode::kMalformed, "head_count"},
      {"rms eps as f64",
       [](Built& b) {
         b.md.set("llama.attention.layer_norm_rms_epsilon", gguf::Value::f64(1e-5));
       },
       StatusCode::kMalformed, "layer_norm_rms_epsilon"},
      {"rope dims != head dim for llama",
       [](Built& b) { b.md.set("llama.rope.dimension_count", gguf::Value::u32(2)); },
       StatusCode::kMalformed, "dimension_count"},
      {"longrope", [](Built& b) { b.md.set("llama.rope.scaling.type", gguf::Value::string("longrope")); },
       StatusCode::kInvalidArgument, "longrope"},
      {"unknown scaling",
       [](Built& b) { b.md.set("llama.rope.scaling.type", gguf::Value::string("bogus")); },
       StatusCode::kMalformed, "rope.scaling.type"},
      {"moe", [](Built& b) { b.md.set("llama.expert_count", gguf::Value::u32(8)); },
       StatusCode::kInvalidArgument, "expert_count"},
      {"vocab_size mismatch", [](Built& b) { b.md.set("llama.vocab_size", gguf::Value::u32(41)); },
       StatusCode::kMalformed, "vocab_size"},
      {"missing tensor",
       [](Built& b) {
         std::erase_if(b.tensors, [](const TensorSpec& t) { return t.name == "blk.1.ffn_up.weight"; });
       },
       StatusCode::kMalformed, "blk.1.ffn_up.weight"},
      {"wrong shape",
       [](Built& b) {
         for (TensorSpec& t : b.tensors) {
           if (t.name == "blk.0.attn_k.weight") t.ne = {8, 16};
         }
       },
       StatusCode::kMalformed, "blk.0.attn_k.weight"},
      {"unexpected tensor",
       [](Built& b) {
         b.tensors.push_back({"blk.0.attn_q_norm.weight", gguf::TensorType::kF32, {4}, {1, 1, 1, 1}});
       },
       StatusCode::kMalformed, "blk.0.attn_q_norm.weight"},
      {"unsupported tensor type",
       [](Built& b) {
         for (TensorSpec& t : b.tensors) {
           if (t.name == "blk.0.ffn_up.weight") t.type = gguf::TensorType::kI32;
         }
       },
       StatusCode::kInvalidArgument, "blk.0.ffn_up.weight"},
      {"norm not F32",
       [](Built& b) {
         for (TensorSpec& t : b.tensors) {
           if (t.name == "output_norm.weight") {
             t.type = gguf::TensorType::kI32;
           }
         }
       },
       StatusCode::kInvalidArgument, "output_norm.weight"},
  };
  for (const Defect& d : defects) {
    Built b = build(Spec());
    d.mutate(b);
    auto m = load(b);
    ASSERT_FALSE(m.has_value()) << d.name;
    EXPECT_EQ(m.error().code(), d.code) << d.name << ": " << m.error().to_string();
    EXPECT_THAT(m.error().message(), ::testing::HasSubstr(d.message_part)) << d.name;
  }
}

TEST(HParamsTest, DefaultsAndScaling) {
  Built b = build(Spec());
  auto hp = HParams::from_metadata(b.md);
  ASSERT_TRUE(hp.has_value()) << hp.error().to_string();
  EXPECT_EQ(hp->rope_type, RopeType::kNorm);
  EXPECT_EQ(hp->rope_scaling, RopeScaling::kLinear);
  EXPECT_EQ(hp->rope_freq_scale, 1.0f);
  EXPECT_EQ(hp->n_ctx_orig, 64u);
  EXPECT_EQ(hp->n_head_kv(1), 2u);

  gguf::Metadata md = b.md;  // head_count_kv absent → head_count; key_length absent → E/H
  gguf::Metadata md2;
  for (const auto& [k, v] : md.entries()) {
    if (k != "llama.attention.head_count_kv" && k != "llama.attention.key_length" &&
        k != "llama.attention.value_length" && k != "llama.rope.dimension_count") {
      md2.add(k, v);
    }
  }
  md2.add("llama.rope.scaling.type", gguf::Value::string("yarn"));
  md2.add("llama.rope.scaling.factor", gguf::Value::f32(4.0f));
  hp = HParams::from_metadata(md2);
  ASSERT_TRUE(hp.has_value()) << hp.error().to_string();
  EXPECT_EQ(hp->n_head_kv(0), 4u);
  EXPECT_EQ(hp->n_embd_head, 4u);
  EXPECT_EQ(hp->n_rot, 4u);
  EXPECT_EQ(hp->rope_scaling, RopeScaling::kYarn);
  EXPECT_EQ(hp->rope_freq_scale, 0.25f);
  EXPECT_EQ(hp->rope_ext_factor, 1.0f);
  EXPECT_FLOAT_EQ(hp->rope_attn_factor, 1.0f);  // the YaRN mscale is cancelled (§4.2)

  md2.set("llama.rope.scaling.type", gguf::Value::string("none"));
  hp = HParams::from_metadata(md2);
  ASSERT_TRUE(hp.has_value());
  EXPECT_EQ(hp->rope_freq_scale, 1.0f);
  EXPECT_EQ(hp->rope_ext_factor, 0.0f);

  gguf::Metadata q;
  for (const auto& [k, v] : b.md.entries()) {
    q.add(k == "general.architecture" ? k : "qwen2" + k.substr(5),
          k == "general.architecture" ? gguf::Value::string("qwen2") : v);
  }
  hp = HParams::from_metadata(q);
  ASSERT_TRUE(hp.has_value()) << hp.error().to_string();
  EXPECT_EQ(hp->arch, Arch::kQwen2);
  EXPECT_EQ(hp->rope_type, RopeType::kNeox);
}

TEST(HParamsTest, RequiredKeys) {
  const Built b = build(Spec());
  for (const char* key : {"general.architecture", "llama.context_length", "llama.embedding_length",
                          "llama.block_count", "llama.attention.layer_norm_rms_epsilon",
                          "llama.feed_forward_length", "llama.attention.head_count"}) {
    gguf::Metadata md;
    for (const auto& [k, v] : b.md.entries()) {
      if (k != key) md.add(k, v);
    }
    auto hp = HParams::from_metadata(md);
    ASSERT_FALSE(hp.has_value()) << key;
    EXPECT_EQ(hp.error().code(), StatusCode::kMalformed) << key;
    EXPECT_THAT(hp.error().message(), ::testing::HasSubstr(std::string(key).substr(std::string(key).find('.') + 1))) << key;
  }
}

}  // namespace
}  // namespace ztslm::engine
