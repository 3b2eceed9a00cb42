// `ztslm model inspect|logits|synth|quantize`.
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/engine_setup.h"
#include "core/mapped_file.h"
#include "core/utf8.h"
#include "engine/session.h"
#include "engine/quant/quant.h"
#include "engine/synth.h"
#include "engine/tokenizer/tokenizer.h"
#include "gguf/gguf.h"

namespace ztslm::cli {
namespace {

using nlohmann::json;

// A metadata value for display: scalars as they are, arrays as type + length + first items
// (tokenizer arrays hold 100k+ entries).
json value_to_json(const gguf::Value& v, size_t max_items) {
  using gguf::ValueType;
  switch (v.type()) {
    case ValueType::kUint8:
    case ValueType::kUint16:
    case ValueType::kUint32:
    case ValueType::kUint64: return v.raw_uint();
    case ValueType::kInt8:
    case ValueType::kInt16:
    case ValueType::kInt32:
    case ValueType::kInt64: return v.raw_int();
    case ValueType::kFloat32:
    case ValueType::kFloat64: return v.raw_float();
    case ValueType::kBool: return v.raw_uint() != 0;
    case ValueType::kString: {
      const std::string& str = *v.as_string();
      if (max_items == 0 || str.size() <= 16 * max_items) return str;
      return str.substr(0, 16 * max_items - utf8_incomplete_suffix(str.substr(0, 16 * max_items))) +
             "... (" + std::to_string(str.size()) + " bytes)";
    }
    case ValueType::kArray: break;
  }
  json items = json::array();
  std::visit(
      [&](const auto& vec) {
        for (size_t i = 0; i < vec.size() && i < max_items; ++i) {
          using Elem = std::decay_t<decltype(vec[i])>;
          if constexpr (std::is_same_v<Elem, uint8_t> || std::is_same_v<Elem, int8_t>) {
            items.push_back(static_cast<int>(vec[i]));
          } else {
            items.push_back(vec[i]);
          }
        }
      },
      v.raw_array());
  return json{{"array_of", std::string(gguf::value_type_name(v.elem_type()))},
              {"length", v.array_size()},
              {"first", items}};
}

int inspect(const std::string& path, bool as_json, size_t max_items) {
  auto mapped = MappedFile::open(path);
  if (!mapped.has_value()) return fail(mapped.error());
  auto file = gguf::parse(mapped->bytes());
  if (!file.has_value()) return fail(file.error().with_context(path));

  json out;
  out["file"] = path;
  out["bytes"] = mapped->size();
  out["version"] = file->version;
  out["alignment"] = file->alignment;
  out["data_offset"] = file->data_offset;
  json md = json::object();
  for (const auto& [key, value] : file->metadata.entries()) md[key] = value_to_json(value, max_items);
  out["metadata"] = md;
  json tensors = json::array();
  uint64_t total = 0;
  for (const gguf::TensorInfo& t : file->tensors) {
    json ne = json::array();
    for (uint32_t i = 0; i < t.n_dims; ++i) ne.push_back(t.ne[i]);
    tensors.push_back({{"name", t.name},
                       {"type", std::string(gguf::tensor_type_name(t.type))},
                       {"ne", ne},
                       {"offset", t.offset},
                       {"bytes", t.n_bytes}});
    total += t.n_bytes;
  }
  out["tensors"] = tensors;
  out["tensor_bytes"] = total;
  if (as_json) {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%s: GGUF v%u, %zu bytes, alignment %u, %zu keys, %zu tensors (%.1f MiB of weights)\n",
              path.c_str(), file->version, mapped->size(), file->alignment,
              file->metadata.size(), file->tensors.size(), static_cast<double>(total) / 1048576.0);
  for (const auto& [key, value] : md.items()) {
    std::printf("  %-48s %s\n", key.c_str(), value.dump().c_str());
  }
  for (const json& t : tensors) {
    std::printf("  %-32s %-6s %-24s %12llu bytes\n", t["name"].get<std::string>().c_str(),
                t["type"].get<std::string>().c_str(), t["ne"].dump().c_str(),
                static_cast<unsigned long long>(t["bytes"].get<uint64_t>()));
  }
  return 0;
}

struct LogitsArgs {
  std::string model;
  std::string tokens;  // "1,2,3"
  std::string text;
  int top_k = 20;
  int greedy = 32;
  int threads = 0;
};

// Indices of the `k` largest logits, by value descending and id ascending on ties.
std::vector<int32_t> top_k_ids(std::span<const float> row, int k) {
  std::vector<int32_t> ids(row.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  const size_t kk = std::min(static_cast<size_t>(std::max(k, 0)), ids.size());
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(kk), ids.end(),
                    [&](int32_t a, int32_t b) {
                      return row[a] != row[b] ? row[a] > row[b] : a < b;
                    });
  ids.resize(kk);
  return ids;
}

int32_t argmax(std::span<const float> row) {
  int32_t best = 0;
  for (size_t i = 1; i < row.size(); ++i) {
    if (row[i] > row[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
  }
  return best;
}

int run_logits(const LogitsArgs& a) {
  auto lm = load_model(a.model);
  if (!lm.has_value()) return fail(lm.error());
  const uint32_t n_vocab = lm->model->n_vocab();
  std::vector<int32_t> tokens;
  if (!a.tokens.empty()) {
    std::stringstream ss(a.tokens);
    std::string item;
    while (std::getline(ss, item, ',')) {
      char* end = nullptr;
      const long v = std::strtol(item.c_str(), &end, 10);
      if (item.empty() || *end != '\0' || v < 0 || v >= static_cast<long>(n_vocab)) {
        return fail(Status::invalid_argument("token id '{}' is not in [0, {})", printable(item, 16), n_vocab));
      }
      tokens.push_back(static_cast<int32_t>(v));
    }
  } else {
    if (!is_valid_utf8(a.text)) return fail(Status::invalid_argument("text is not valid UTF-8"));
    auto t = engine::tokenizer::tokenize(*lm->vocab, a.text, /*add_special=*/true, /*parse_special=*/true, 1u << 20);
    if (!t.has_value()) return fail(t.error());
    tokens = std::move(t).value();
  }
  if (tokens.empty()) return fail(Status::invalid_argument("no tokens"));
  if (a.greedy < 0 || a.greedy > 4096) return fail(Status::invalid_argument("--greedy must be in [0, 4096]"));
  engine::ThreadPool pool(a.threads > 0 ? a.threads : default_threads());
  engine::SessionOptions so;
  so.n_ctx = static_cast<uint32_t>(tokens.size() + static_cast<size_t>(a.greedy) + 1);
  so.n_batch = static_cast<uint32_t>(tokens.size());
  so.max_logit_rows = static_cast<uint32_t>(tokens.size());
  auto session = engine::Session::create(lm->model, pool, so);
  if (!session.has_value()) return fail(session.error());
  auto logits = session->decode(tokens, /*all_logits=*/true);
  if (!logits.has_value()) return fail(logits.error());

  json positions = json::array();
  std::vector<float> last(logits->end() - n_vocab, logits->end());
  for (size_t p = 0; p < tokens.size(); ++p) {
    const std::span<const float> row = logits->subspan(p * n_vocab, n_vocab);
    json top = json::array();
    for (int32_t id : top_k_ids(row, a.top_k)) top.push_back(json::array({id, row[static_cast<size_t>(id)]}));
    positions.push_back(top);
  }
  json greedy_tokens = json::array(), greedy_logits = json::array();
  std::vector<int32_t> gen;
  std::vector<float> row = last;
  for (int i = 0; i < a.greedy; ++i) {
    const int32_t t = argmax(row);
    gen.push_back(t);
    greedy_tokens.push_back(t);
    greedy_logits.push_back(row[static_cast<size_t>(t)]);
    if (i + 1 == a.greedy) break;
    auto next = session->decode(std::span<const int32_t>(&t, 1), false);
    if (!next.has_value()) return fail(next.error());
    row.assign(next->begin(), next->end());
  }
  json out;
  out["model"] = a.model;
  out["n_vocab"] = n_vocab;
  out["tokens"] = tokens;
  out["top"] = positions;
  out["greedy"] = {{"tokens", greedy_tokens},
                   {"logit", greedy_logits},
                   {"text", engine::tokenizer::utf8_replace_invalid(engine::tokenizer::detokenize(*lm->vocab, gen, false, true))}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

struct SynthArgs {
  std::string preset;
  std::string type = "Q8_0";
  std::string out;
  uint64_t seed = 1234;
  bool list = false;
};

int run_synth(const SynthArgs& a) {
  if (a.list) {
    for (const engine::SynthShape& s : engine::synth_presets()) {
      std::printf("%-16s %-6s vocab %6u embd %5u layers %3u heads %2u/%-2u ff %5u ctx %6u%s%s\n",
                  s.name.c_str(), s.arch.c_str(), s.n_vocab, s.n_embd, s.n_layer, s.n_head, s.n_head_kv,
                  s.n_ff, s.n_ctx_train, s.tied_output ? " tied" : "", s.qkv_bias ? " qkv-bias" : "");
    }
    return 0;
  }
  if (a.preset.empty() || a.out.empty()) {
    return fail(Status::invalid_argument("give --preset and -o (or --list)"));
  }
  auto shape = engine::find_synth_preset(a.preset);
  if (!shape.has_value()) return fail(shape.error());
  auto recipe = engine::parse_synth_recipe(a.type);
  if (!recipe.has_value()) return fail(recipe.error());
  auto writer = engine::build_synth_model(*shape, *recipe, a.seed);
  if (!writer.has_value()) return fail(writer.error());
  const auto t0 = std::chrono::steady_clock::now();
  const Status st = writer->write_file(a.out);
  if (!st.ok()) return fail(st);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "wrote %s (%s, %s, seed %llu) in %.1f s\n", a.out.c_str(), a.preset.c_str(),
               a.type.c_str(), static_cast<unsigned long long>(a.seed), s);
  return 0;
}

struct QuantizeArgs {
  std::string in;
  std::string out;
  std::string type = "Q8_0";
};

// The layer index of a "blk.N." tensor name, or -1.
int layer_of(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return -1;
  int il = 0;
  size_t i = 4;
  if (i >= name.size() || name[i] < '0' || name[i] > '9') return -1;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && il < 100000; ++i) il = il * 10 + (name[i] - '0');
  return i < name.size() && name[i] == '.' ? il : -1;
}

// Rewrites a GGUF model with its 2-D weights in another type, through the engine's own
// quantisers (the reference ones of spec/ENGINE.md §2.3 for the legacy types). Norms and other
// 1-D tensors keep their type; so does a matrix whose rows are not a whole number of blocks.
int run_quantize(const QuantizeArgs& a) {
  auto recipe = engine::parse_synth_recipe(a.type);
  if (!recipe.has_value()) return fail(recipe.error());
  auto mapped = MappedFile::open(a.in);
  if (!mapped.has_value()) return fail(mapped.error());
  auto file = gguf::parse(mapped->bytes());
  if (!file.has_value()) return fail(file.error().with_context(a.in));

  uint32_t n_layer = 0;
  if (auto arch = file->metadata.get_string("general.architecture"); arch.has_value()) {
    if (auto n = file->metadata.get_u32(std::string(*arch) + ".block_count"); n.has_value()) n_layer = *n;
  }
  gguf::Writer w(file->alignment);
  for (const auto& [key, value] : file->metadata.entries()) {
    if (key == "general.alignment") continue;  // the writer sets it from its alignment
    w.metadata().add(key, value);
  }
  w.metadata().set("general.file_type", gguf::Value::u32(recipe->file_type()));
  const bool quantised = recipe->base != gguf::TensorType::kF32 &&
                         recipe->base != gguf::TensorType::kF16 &&
                         recipe->base != gguf::TensorType::kBF16;
  if (quantised) w.metadata().set("general.quantization_version", gguf::Value::u32(2));

  size_t n_converted = 0, n_kept = 0;
  for (const gguf::TensorInfo& t : file->tensors) {
    const std::span<const int64_t> ne(t.ne.data(), t.n_dims);
    gguf::TensorType type = t.type;
    if (t.n_dims == 2 && engine::is_type_implemented(t.type)) {
      type = recipe->type_for(t.name, t.ne[0], layer_of(t.name), static_cast<int>(n_layer));
      if (t.ne[0] % engine::block_elems(type) != 0) type = t.type;
    }
    if (type == t.type) {
      ++n_kept;
      if (Status st = w.add_tensor(t.name, t.type, ne, t.data); !st.ok()) return fail(st);
      continue;
    }
    ++n_converted;
    const gguf::TensorType src_type = t.type;
    const int64_t n_cols = t.ne[0];
    const std::span<const std::byte> src = t.data;
    const size_t src_row = t.row_bytes;
    auto fill = [=](std::span<std::byte> out) {
      std::vector<float> row(static_cast<size_t>(n_cols));
      const size_t dst_row = engine::row_bytes(type, n_cols);
      const size_t n_rows = out.size() / dst_row;
      for (size_t r = 0; r < n_rows; ++r) {
        engine::dequantize_row(src_type, src.data() + r * src_row, row.data(), n_cols);
        engine::quantize_row(type, row.data(), out.data() + r * dst_row, n_cols);
      }
    };
    if (Status st = w.add_tensor_lazy(t.name, type, ne, fill); !st.ok()) return fail(st);
  }
  const Status st = w.write_file(a.out);
  if (!st.ok()) return fail(st);
  std::fprintf(stderr, "wrote %s (%s): %zu tensors converted, %zu kept\n", a.out.c_str(),
               a.type.c_str(), n_converted, n_kept);
  return 0;
}

}  // namespace

void register_model_commands(CLI::App& app) {
  CLI::App* model = app.add_subcommand("model", "inspect, cross-check and synthesise GGUF models");
  model->require_subcommand(1);

  auto* insp = model->add_subcommand("inspect", "print a model's metadata and tensor table (never weights)");
  static std::string inspect_path;
  static bool inspect_json = false;
  static size_t inspect_items = 8;
  insp->add_option("file", inspect_path, "GGUF file")->required();
  insp->add_flag("--json", inspect_json, "machine-readable output");
  insp->add_option("--items", inspect_items, "array items shown per metadata key")->capture_default_str();
  insp->callback([] { set_exit_code(inspect(inspect_path, inspect_json, inspect_items)); });

  static LogitsArgs la;
  auto* lg = model->add_subcommand("logits", "print top-k logits at every position and the greedy continuation as JSON");
  lg->add_option("-m,--model", la.model, "GGUF model file")->required();
  auto* tok_opt = lg->add_option("--tokens", la.tokens, "comma-separated token ids");
  auto* text_opt = lg->add_option("--text", la.text, "text, tokenized with BOS/EOS per the vocabulary and special tokens parsed");
  tok_opt->excludes(text_opt);
  lg->add_option("-k,--top-k", la.top_k, "logits per position")->capture_default_str();
  lg->add_option("--greedy", la.greedy, "greedy continuation length")->capture_default_str();
  lg->add_option("-t,--threads", la.threads, "threads (default: all CPUs)");
  lg->callback([] {
    if (la.tokens.empty() && la.text.empty()) {
      set_exit_code(fail(Status::invalid_argument("give --tokens or --text")));
      return;
    }
    set_exit_code(run_logits(la));
  });

  static SynthArgs sa;
  auto* sy = model->add_subcommand("synth", "write a random-weight model with the shapes of a real SLM");
  sy->add_option("--preset", sa.preset, "shape preset (see --list)");
  sy->add_option("--type", sa.type, "weight type: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, Q4_K_M, Q5_K_M")->capture_default_str();
  sy->add_option("-o,--out", sa.out, "output GGUF file");
  sy->add_option("--seed", sa.seed, "seed of the random weights")->capture_default_str();
  sy->add_flag("--list", sa.list, "list the presets");
  sy->callback([] { set_exit_code(run_synth(sa)); });

  static QuantizeArgs qa;
  auto* qz = model->add_subcommand("quantize", "rewrite a model's 2-D weights in another type (engine quantisers)");
  qz->add_option("input", qa.in, "GGUF model file")->required();
  qz->add_option("output", qa.out, "output GGUF file")->required();
  qz->add_option("--type", qa.type, "weight type: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, Q4_K_M, Q5_K_M")->capture_default_str();
  qz->callback([] { set_exit_code(run_quantize(qa)); });
}

}  // namespace ztslm::cli
