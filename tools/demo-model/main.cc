// ztslm-demo-train: builds the bundled demo model.
//
//   ztslm-demo-train data  --seed S --count N -o data.jsonl
//   ztslm-demo-train train --data data.jsonl --seed S --steps K -o demo-F32.gguf
//                          --manifest manifest.json --loss loss.tsv --plot loss.svg
//
// `train` learns the BPE vocabulary from the dataset, tokenises every conversation with the
// engine's own ChatML tokenisation (so training and serving see the same ids), trains a llama
// model with LibTorch on the CPU (2 threads, deterministic) and exports an F32 GGUF through the
// project's GGUF writer. Quantisation and signing are `ztslm model quantize` / `ztslm model sign`.
#include <torch/torch.h>

#include <openssl/evp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bpe.h"
#include "dataset.h"
#include "engine/chat/chat_template.h"
#include "engine/chat_prompt.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab.h"
#include "gguf/writer.h"

namespace ztslm::demo {
namespace {

struct Hyper {
  uint32_t n_vocab = 2048;
  uint32_t n_embd = 256;
  uint32_t n_layer = 4;
  uint32_t n_head = 8;
  uint32_t n_head_kv = 4;
  uint32_t n_ff = 704;
  uint32_t n_ctx = 512;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  int64_t steps = 3000;
  int64_t batch = 32;
  double lr = 2e-3;
  double min_lr = 1e-4;
  int64_t warmup = 100;
  double weight_decay = 0.01;
  double clip = 1.0;
  int threads = 2;
  int64_t decay_start = 0;     // step where the LR decay starts (0: at 80% of steps or of max_seconds)
  double max_seconds = 0;      // wall budget (0: none); the decay start it caused is recorded
  int64_t export_every = 0;    // also export the model every N steps (for looking at it while training)
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

// The raw text fragments of a rendered conversation (between special tokens), for BPE training.
void add_fragments(const Conversation& c, std::vector<std::string>& out) {
  std::vector<engine::ChatMessage> msgs;
  for (const Message& m : c.messages) msgs.push_back({m.role, m.content});
  auto text = engine::apply_chat_template(engine::ChatFormat::kChatml, msgs, false);
  if (!text.has_value()) return;
  std::string s = *text;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t a = s.find("<|im_", pos);
    if (a == std::string::npos) a = s.size();
    if (a > pos) out.push_back(s.substr(pos, a - pos));
    if (a == s.size()) break;
    const size_t close = s.find("|>", a);
    pos = close == std::string::npos ? s.size() : close + 2;
  }
}

struct Example {
  std::vector<int64_t> tokens;
  size_t answer_begin = 0;  // first token of the assistant answer
  size_t answer_end = 0;    // one past <|im_end|> of the answer
};

// Tokenises with the engine (markup parsed, content untrusted), exactly as serving does.
bool tokenize_example(engine::tokenizer::Tokenizer& tok, const Conversation& c, int32_t im_end,
                      size_t max_tokens, Example* out) {
  std::vector<engine::ChatMessage> msgs;
  for (const Message& m : c.messages) msgs.push_back({m.role, m.content});
  auto prefix = engine::tokenize_chat(tok, engine::ChatFormat::kChatml,
                                      std::span(msgs.data(), msgs.size() - 1), true, max_tokens);
  auto full = engine::tokenize_chat(tok, engine::ChatFormat::kChatml, msgs, false, max_tokens);
  if (!prefix.has_value() || !full.has_value()) return false;
  if (prefix->size() >= full->size() ||
      !std::equal(prefix->begin(), prefix->end(), full->begin())) {
    return false;
  }
  size_t end = full->size();
  while (end > 0 && (*full)[end - 1] != im_end) --end;
  if (end <= prefix->size()) return false;
  out->tokens.assign(full->begin(), full->begin() + static_cast<std::ptrdiff_t>(end));
  out->answer_begin = prefix->size();
  out->answer_end = end;
  return true;
}

// --- the model --------------------------------------------------------------------------------

struct LayerImpl : torch::nn::Module {
  LayerImpl(const Hyper& h) {
    const int64_t e = h.n_embd, kv = int64_t{h.n_head_kv} * (h.n_embd / h.n_head), ff = h.n_ff;
    attn_norm = register_parameter("attn_norm", torch::ones({e}));
    wq = register_parameter("wq", torch::empty({e, e}));
    wk = register_parameter("wk", torch::empty({kv, e}));
    wv = register_parameter("wv", torch::empty({kv, e}));
    wo = register_parameter("wo", torch::empty({e, e}));
    ffn_norm = register_parameter("ffn_norm", torch::ones({e}));
    w_gate = register_parameter("w_gate", torch::empty({ff, e}));
    w_up = register_parameter("w_up", torch::empty({ff, e}));
    w_down = register_parameter("w_down", torch::empty({e, ff}));
  }
  torch::Tensor attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
};
TORCH_MODULE(Layer);

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  return x * torch::rsqrt(x.pow(2).mean(-1, true) + eps) * w;
}

// RoPE NORM mode (llama in GGUF): rotates adjacent pairs (x[2i], x[2i+1]). x: [B, T, H, D].
torch::Tensor rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const auto s = x.sizes();
  auto xp = x.reshape({s[0], s[1], s[2], s[3] / 2, 2});
  auto x0 = xp.select(-1, 0), x1 = xp.select(-1, 1);
  auto c = cos.view({1, s[1], 1, s[3] / 2}), sn = sin.view({1, s[1], 1, s[3] / 2});
  auto o0 = x0 * c - x1 * sn;
  auto o1 = x0 * sn + x1 * c;
  return torch::stack({o0, o1}, -1).reshape(s);
}

struct ModelImpl : torch::nn::Module {
  explicit ModelImpl(const Hyper& hp) : h(hp) {
    embd = register_parameter("embd", torch::empty({int64_t{h.n_vocab}, int64_t{h.n_embd}}));
    for (uint32_t il = 0; il < h.n_layer; ++il) {
      layers.push_back(register_module("layer" + std::to_string(il), Layer(h)));
    }
    out_norm = register_parameter("out_norm", torch::ones({int64_t{h.n_embd}}));
    const double std_dev = 0.02, out_std = 0.02 / std::sqrt(2.0 * h.n_layer);
    torch::NoGradGuard ng;
    embd.normal_(0, std_dev);
    for (auto& l : layers) {
      for (auto* t : {&l->wq, &l->wk, &l->wv, &l->w_gate, &l->w_up}) t->normal_(0, std_dev);
      l->wo.normal_(0, out_std);
      l->w_down.normal_(0, out_std);
    }
    const int64_t d = h.n_embd / h.n_head;
    // theta_i = p * base^(-2i/d), as the engine computes it (up to rounding).
    auto inv = torch::pow(torch::tensor(double{h.rope_base}),
                          -torch::arange(0, d / 2, torch::kFloat64) * 2.0 / static_cast<double>(d));
    auto pos = torch::arange(0, int64_t{h.n_ctx}, torch::kFloat64);
    auto ang = torch::outer(pos, inv);
    rope_cos = ang.cos().to(torch::kFloat32);
    rope_sin = ang.sin().to(torch::kFloat32);
  }

  torch::Tensor forward(const torch::Tensor& tokens) {
    const int64_t b = tokens.size(0), t = tokens.size(1);
    const int64_t nh = h.n_head, nkv = h.n_head_kv, d = h.n_embd / h.n_head;
    auto x = embd.index_select(0, tokens.reshape({-1})).view({b, t, int64_t{h.n_embd}});
    auto cos = rope_cos.narrow(0, 0, t), sin = rope_sin.narrow(0, 0, t);
    auto mask = torch::full({t, t}, -INFINITY).triu(1);
    for (auto& l : layers) {
      auto hn = rms_norm(x, l->attn_norm, h.rms_eps);
      auto q = rope(torch::matmul(hn, l->wq.t()).view({b, t, nh, d}), cos, sin);
      auto k = rope(torch::matmul(hn, l->wk.t()).view({b, t, nkv, d}), cos, sin);
      auto v = torch::matmul(hn, l->wv.t()).view({b, t, nkv, d});
      q = q.transpose(1, 2);
      k = k.transpose(1, 2).repeat_interleave(nh / nkv, 1);
      v = v.transpose(1, 2).repeat_interleave(nh / nkv, 1);
      auto att = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(d)) + mask;
      auto o = torch::matmul(torch::softmax(att, -1), v).transpose(1, 2).reshape({b, t, int64_t{h.n_embd}});
      x = x + torch::matmul(o, l->wo.t());
      auto hf = rms_norm(x, l->ffn_norm, h.rms_eps);
      auto g = torch::silu(torch::matmul(hf, l->w_gate.t())) * torch::matmul(hf, l->w_up.t());
      x = x + torch::matmul(g, l->w_down.t());
    }
    x = rms_norm(x, out_norm, h.rms_eps);
    return torch::matmul(x, embd.t());  // tied output
  }

  Hyper h;
  torch::Tensor embd, out_norm, rope_cos, rope_sin;
  std::vector<Layer> layers;
};
TORCH_MODULE(Model);

// --- export ---------------------------------------------------------------------------------

Status add_f32(gguf::Writer& w, const std::string& name, const torch::Tensor& t) {
  auto c = t.detach().contiguous().to(torch::kFloat32);
  std::vector<int64_t> ne(c.sizes().rbegin(), c.sizes().rend());  // GGUF: innermost first
  const auto* p = reinterpret_cast<const std::byte*>(c.data_ptr<float>());
  return w.add_tensor(name, gguf::TensorType::kF32, ne,
                      std::span<const std::byte>(p, static_cast<size_t>(c.numel()) * 4));
}

Status export_gguf(Model& m, const BpeVocab& vocab, const Hyper& h, const std::string& path) {
  using gguf::Value;
  gguf::Writer w;
  gguf::Metadata& md = w.metadata();
  md.add("general.architecture", Value::string("llama"));
  md.add("general.name", Value::string("ztslm-demo"));
  md.add("general.file_type", Value::u32(0));
  md.add("llama.context_length", Value::u32(h.n_ctx));
  md.add("llama.embedding_length", Value::u32(h.n_embd));
  md.add("llama.block_count", Value::u32(h.n_layer));
  md.add("llama.feed_forward_length", Value::u32(h.n_ff));
  md.add("llama.attention.head_count", Value::u32(h.n_head));
  md.add("llama.attention.head_count_kv", Value::u32(h.n_head_kv));
  md.add("llama.attention.layer_norm_rms_epsilon", Value::f32(h.rms_eps));
  md.add("llama.rope.freq_base", Value::f32(h.rope_base));
  md.add("llama.rope.dimension_count", Value::u32(h.n_embd / h.n_head));
  md.add("llama.vocab_size", Value::u32(static_cast<uint32_t>(vocab.tokens.size())));
  add_vocab_metadata(vocab, md);
  ZTSLM_TRY(add_f32(w, "token_embd.weight", m->embd));
  for (uint32_t il = 0; il < h.n_layer; ++il) {
    const auto& l = m->layers[il];
    const std::string p = "blk." + std::to_string(il) + ".";
    ZTSLM_TRY(add_f32(w, p + "attn_norm.weight", l->attn_norm));
    ZTSLM_TRY(add_f32(w, p + "attn_q.weight", l->wq));
    ZTSLM_TRY(add_f32(w, p + "attn_k.weight", l->wk));
    ZTSLM_TRY(add_f32(w, p + "attn_v.weight", l->wv));
    ZTSLM_TRY(add_f32(w, p + "attn_output.weight", l->wo));
    ZTSLM_TRY(add_f32(w, p + "ffn_norm.weight", l->ffn_norm));
    ZTSLM_TRY(add_f32(w, p + "ffn_gate.weight", l->w_gate));
    ZTSLM_TRY(add_f32(w, p + "ffn_up.weight", l->w_up));
    ZTSLM_TRY(add_f32(w, p + "ffn_down.weight", l->w_down));
  }
  ZTSLM_TRY(add_f32(w, "output_norm.weight", m->out_norm));
  return w.write_file(path);
}

// A small SVG line plot of the loss (log-free, linear axes).
std::string loss_svg(const std::vector<std::pair<int64_t, double>>& pts) {
  const double W = 640, H = 360, L = 60, R = 20, T = 30, B = 50;
  double max_loss = 0;
  int64_t max_step = 1;
  for (const auto& [s, l] : pts) {
    max_loss = std::max(max_loss, l);
    max_step = std::max(max_step, s);
  }
  max_loss = std::ceil(max_loss);
  auto X = [&](double s) { return L + (W - L - R) * s / static_cast<double>(max_step); };
  auto Y = [&](double l) { return T + (H - T - B) * (1.0 - l / max_loss); };
  std::ostringstream o;
  o.precision(1);
  o << std::fixed;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << W / 2 << "\" y=\"18\" text-anchor=\"middle\">ztslm demo model: training loss "
       "(assistant tokens, smoothed)</text>\n";
  for (int i = 0; i <= 4; ++i) {
    const double l = max_loss * i / 4.0, y = Y(l);
    o << "<line x1=\"" << L << "\" y1=\"" << y << "\" x2=\"" << W - R << "\" y2=\"" << y
      << "\" stroke=\"#ddd\"/><text x=\"" << L - 6 << "\" y=\"" << y + 4
      << "\" text-anchor=\"end\">" << l << "</text>\n";
    const double s = static_cast<double>(max_step) * i / 4.0, x = X(s);
    o << "<text x=\"" << x << "\" y=\"" << H - B + 18 << "\" text-anchor=\"middle\">"
      << static_cast<int64_t>(s) << "</text>\n";
  }
  o << "<text x=\"" << W / 2 << "\" y=\"" << H - 10 << "\" text-anchor=\"middle\">step</text>\n";
  o << "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"";
  for (const auto& [s, l] : pts) o << X(static_cast<double>(s)) << "," << Y(l) << " ";
  o << "\"/>\n</svg>\n";
  return o.str();
}

// --- commands -------------------------------------------------------------------------------

int cmd_data(uint64_t seed, size_t count, const std::string& out) {
  const std::string text = to_jsonl(generate_dataset(seed, count));
  if (!write_text(out, text)) {
    std::fprintf(stderr, "cannot write %s\n", out.c_str());
    return 1;
  }
  std::fprintf(stderr, "wrote %zu conversations to %s (sha256 %s)\n", count, out.c_str(),
               sha256_hex(text).c_str());
  return 0;
}

struct TrainArgs {
  std::string data, out, manifest, loss, plot, init;
  std::string vocab_data;  // dataset whose first conversations train the vocabulary ("": `data`)
  uint64_t seed = 7;
  uint64_t data_seed = 7;
  size_t vocab_conversations = 6000;
};

int cmd_train(const TrainArgs& a, Hyper h) {
  const auto t_start = std::chrono::steady_clock::now();
  const std::string raw = read_file(a.data);
  std::vector<Conversation> data;
  if (raw.empty() || !from_jsonl(raw, &data)) {
    std::fprintf(stderr, "cannot read dataset %s\n", a.data.c_str());
    return 1;
  }
  // 1. Vocabulary (from another dataset file when continuing a run on a different mix, so that
  // the ids stay those of the checkpoint).
  std::vector<Conversation> vocab_source;
  if (!a.vocab_data.empty()) {
    const std::string vraw = read_file(a.vocab_data);
    if (vraw.empty() || !from_jsonl(vraw, &vocab_source)) {
      std::fprintf(stderr, "cannot read dataset %s\n", a.vocab_data.c_str());
      return 1;
    }
  }
  const std::vector<Conversation>& vsrc = a.vocab_data.empty() ? data : vocab_source;
  std::vector<std::string> fragments;
  for (size_t i = 0; i < vsrc.size() && i < a.vocab_conversations; ++i) add_fragments(vsrc[i], fragments);
  const BpeVocab bv = train_bpe(fragments, h.n_vocab);
  h.n_vocab = static_cast<uint32_t>(bv.tokens.size());
  gguf::Metadata vmd;
  add_vocab_metadata(bv, vmd);
  auto vocab = engine::tokenizer::Vocab::from_metadata(vmd);
  if (!vocab.has_value()) {
    std::fprintf(stderr, "vocab rejected by the engine: %s\n", vocab.error().to_string().c_str());
    return 1;
  }
  std::fprintf(stderr, "vocab: %u tokens, %zu merges\n", h.n_vocab, bv.merges.size());

  // 2. Tokenise with the engine.
  engine::tokenizer::Tokenizer tok(*vocab);
  std::vector<Example> examples;
  size_t skipped = 0, n_tokens = 0;
  for (const Conversation& c : data) {
    Example e;
    if (tokenize_example(tok, c, bv.im_end, h.n_ctx, &e) && e.tokens.size() <= h.n_ctx) {
      n_tokens += e.tokens.size();
      examples.push_back(std::move(e));
    } else {
      ++skipped;
    }
  }
  std::fprintf(stderr, "examples: %zu (%zu skipped), %zu tokens, %.1f tokens/example\n",
               examples.size(), skipped, n_tokens,
               static_cast<double>(n_tokens) / static_cast<double>(examples.size()));

  // 3. Train.
  torch::manual_seed(a.seed);
  at::set_num_threads(h.threads);
  at::set_num_interop_threads(1);
  at::globalContext().setDeterministicAlgorithms(true, false);
  Model model(h);
  if (!a.init.empty()) {
    torch::load(model, a.init);  // continue from a checkpoint (the `.pt` a previous run wrote)
    std::fprintf(stderr, "initialised from %s\n", a.init.c_str());
  }
  int64_t n_params = 0;
  for (const auto& p : model->parameters()) n_params += p.numel();
  std::fprintf(stderr, "model: %lld parameters\n", static_cast<long long>(n_params));
  torch::optim::AdamW opt(model->parameters(),
                          torch::optim::AdamWOptions(h.lr).betas({0.9, 0.95}).weight_decay(h.weight_decay));

  // Batches: a seeded shuffle, then examples of similar length grouped (less padding).
  std::mt19937_64 rng(a.seed);
  std::vector<size_t> order;
  size_t cursor = 0;
  auto refill = [&] {
    order.resize(examples.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
    const size_t chunk = static_cast<size_t>(h.batch) * 64;
    for (size_t s = 0; s < order.size(); s += chunk) {
      auto b = order.begin() + static_cast<std::ptrdiff_t>(s);
      auto e = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), s + chunk));
      std::stable_sort(b, e, [&](size_t x, size_t y) { return examples[x].tokens.size() < examples[y].tokens.size(); });
    }
    // Shuffle whole batches so lengths are mixed over time.
    const size_t nb = order.size() / static_cast<size_t>(h.batch);
    std::vector<size_t> bo(nb);
    for (size_t i = 0; i < nb; ++i) bo[i] = i;
    for (size_t i = nb; i > 1; --i) std::swap(bo[i - 1], bo[rng() % i]);
    std::vector<size_t> shuffled;
    for (size_t bi : bo) {
      for (int64_t j = 0; j < h.batch; ++j) shuffled.push_back(order[bi * static_cast<size_t>(h.batch) + static_cast<size_t>(j)]);
    }
    order = std::move(shuffled);
    cursor = 0;
  };
  refill();

  std::vector<std::pair<int64_t, double>> curve;
  std::string loss_tsv = "step\tloss\tlr\tseconds\n";
  double ema = 0;
  int64_t epoch_steps = 0;
  int64_t last_step = 0;
  int64_t decay_start = h.decay_start;
  bool end_now = false;
  for (int64_t step = 1; step <= h.steps && !end_now; ++step) {
    last_step = step;
    if (cursor + static_cast<size_t>(h.batch) > order.size()) refill();
    size_t max_len = 0;
    for (int64_t j = 0; j < h.batch; ++j) max_len = std::max(max_len, examples[order[cursor + static_cast<size_t>(j)]].tokens.size());
    const int64_t T = static_cast<int64_t>(max_len) - 1;
    auto inp = torch::full({h.batch, T}, int64_t{bv.endoftext}, torch::kInt64);
    auto tgt = torch::full({h.batch, T}, int64_t{-100}, torch::kInt64);
    auto ia = inp.accessor<int64_t, 2>();
    auto ta = tgt.accessor<int64_t, 2>();
    for (int64_t j = 0; j < h.batch; ++j) {
      const Example& e = examples[order[cursor + static_cast<size_t>(j)]];
      for (size_t i = 0; i + 1 < e.tokens.size(); ++i) {
        ia[j][static_cast<int64_t>(i)] = e.tokens[i];
        if (i + 1 >= e.answer_begin && i + 1 < e.answer_end) ta[j][static_cast<int64_t>(i)] = e.tokens[i + 1];
      }
    }
    cursor += static_cast<size_t>(h.batch);
    ++epoch_steps;

    // Warmup, a stable phase, then a linear decay over a quarter of the steps before it. The
    // decay starts at 80% of --steps, or when 80% of --max-seconds has passed (the step where it
    // started is recorded, so --decay-start reproduces the same schedule).
    if (decay_start == 0) {
      const double secs_now = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
      if (step >= (h.steps * 4) / 5 || (h.max_seconds > 0 && secs_now > 0.8 * h.max_seconds)) {
        decay_start = step;
        std::fprintf(stderr, "decay starts at step %lld\n", static_cast<long long>(step));
      }
    }
    const int64_t decay_len = decay_start > 0 ? std::max<int64_t>(1, decay_start / 4) : 1;
    double lr = h.lr;
    if (step <= h.warmup) {
      lr = h.lr * static_cast<double>(step) / static_cast<double>(h.warmup);
    } else if (decay_start > 0) {
      const double p = std::min(1.0, static_cast<double>(step - decay_start) / static_cast<double>(decay_len));
      lr = h.lr + (h.min_lr - h.lr) * p;
    }
    if (decay_start > 0 && step >= decay_start + decay_len) {
      last_step = step;
      end_now = true;
    }
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);

    opt.zero_grad();
    auto logits = model->forward(inp);
    auto loss = torch::nn::functional::cross_entropy(
        logits.reshape({-1, int64_t{h.n_vocab}}), tgt.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), h.clip);
    opt.step();
    const double l = loss.item<double>();
    ema = step == 1 ? l : 0.98 * ema + 0.02 * l;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    char line[128];
    std::snprintf(line, sizeof line, "%lld\t%.5f\t%.6f\t%.1f\n", static_cast<long long>(step), l, lr, secs);
    loss_tsv += line;
    if (step % 10 == 0 || step == h.steps) curve.emplace_back(step, ema);
    if (step % 50 == 0 || step == 1 || step == h.steps) {
      std::fprintf(stderr, "step %lld/%lld loss %.4f (ema %.4f) lr %.2e T %lld %.0fs\n",
                   static_cast<long long>(step), static_cast<long long>(h.steps), l, ema, lr,
                   static_cast<long long>(T), secs);
    }
    if (h.export_every > 0 && step % h.export_every == 0) {
      const Status st = export_gguf(model, bv, h, a.out);
      if (!st.ok()) std::fprintf(stderr, "export failed: %s\n", st.to_string().c_str());
    }
  }
  const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();

  // 4. Export and record.
  torch::save(model, a.out + ".pt");
  const Status st = export_gguf(model, bv, h, a.out);
  if (!st.ok()) {
    std::fprintf(stderr, "export failed: %s\n", st.to_string().c_str());
    return 1;
  }
  if (!a.loss.empty()) write_text(a.loss, loss_tsv);
  if (!a.plot.empty()) write_text(a.plot, loss_svg(curve));
  if (!a.manifest.empty()) {
    nlohmann::json m;
    m["model"] = "ztslm-demo";
    m["architecture"] = "llama";
    m["dataset"] = {{"generator_version", kGeneratorVersion},
                    {"seed", a.data_seed},
                    {"conversations", data.size()},
                    {"sha256", sha256_hex(raw)},
                    {"examples_used", examples.size()},
                    {"tokens", n_tokens}};
    m["seed"] = a.seed;
    if (!a.init.empty()) m["initialised_from"] = a.init;
    if (!a.vocab_data.empty()) m["vocabulary_from"] = a.vocab_data;
    m["tokenizer"] = {{"model", "gpt2"}, {"pre", "qwen2"}, {"vocab_size", h.n_vocab},
                      {"merges", bv.merges.size()}, {"trained_on_conversations", std::min(data.size(), a.vocab_conversations)}};
    m["hyperparameters"] = {{"n_embd", h.n_embd}, {"n_layer", h.n_layer}, {"n_head", h.n_head},
                            {"n_head_kv", h.n_head_kv}, {"n_ff", h.n_ff}, {"n_ctx", h.n_ctx},
                            {"rms_eps", h.rms_eps}, {"rope_freq_base", h.rope_base},
                            {"tied_embeddings", true}, {"steps", h.steps}, {"steps_run", last_step}, {"batch", h.batch},
                            {"lr", h.lr}, {"min_lr", h.min_lr}, {"warmup", h.warmup},
                            {"schedule", "linear warmup, constant, linear decay over decay_start/4 steps"},
                            {"decay_start", decay_start},
                            {"optimizer", "AdamW(0.9, 0.95)"}, {"weight_decay", h.weight_decay},
                            {"grad_clip", h.clip}, {"loss", "cross-entropy on assistant tokens"}};
    m["parameters"] = n_params;
    std::ostringstream rep;
    rep << "ztslm-demo-train data --seed " << a.data_seed << " --count " << data.size()
        << " -o data.jsonl && ztslm-demo-train train --data data.jsonl --seed " << a.seed
        << " --vocab " << h.n_vocab << " --embd " << h.n_embd << " --layers " << h.n_layer
        << " --heads " << h.n_head << " --heads-kv " << h.n_head_kv << " --ff " << h.n_ff
        << " --ctx " << h.n_ctx << " --batch " << h.batch << " --lr " << h.lr << " --warmup "
        << h.warmup << " --steps " << h.steps << " --decay-start " << decay_start
        << " --threads " << h.threads << (a.init.empty() ? "" : " --init " + a.init) << " -o demo-F32.gguf";
    m["reproduce"] = rep.str();
    write_text(a.manifest, m.dump(2) + "\n");
  }
  std::fprintf(stderr, "wrote %s (final loss %.4f, %.0f s)\n", a.out.c_str(), ema, train_s);
  return 0;
}

}  // namespace
}  // namespace ztslm::demo

int main(int argc, char** argv) {
  using namespace ztslm::demo;
  CLI::App app{"ztslm-demo-train: dataset generator and trainer of the bundled demo model"};
  app.require_subcommand(1);
  uint64_t data_seed = 7;
  size_t count = 60000;
  std::string data_out;
  auto* d = app.add_subcommand("data", "write the synthetic ChatML dataset (JSONL)");
  d->add_option("--seed", data_seed)->capture_default_str();
  d->add_option("--count", count)->capture_default_str();
  d->add_option("-o,--out", data_out)->required();

  TrainArgs ta;
  Hyper h;
  auto* t = app.add_subcommand("train", "train the vocabulary and the model, export F32 GGUF");
  t->add_option("--data", ta.data)->required();
  t->add_option("-o,--out", ta.out)->required();
  t->add_option("--manifest", ta.manifest);
  t->add_option("--loss", ta.loss);
  t->add_option("--plot", ta.plot);
  t->add_option("--seed", ta.seed)->capture_default_str();
  t->add_option("--steps", h.steps)->capture_default_str();
  t->add_option("--batch", h.batch)->capture_default_str();
  t->add_option("--lr", h.lr)->capture_default_str();
  t->add_option("--vocab", h.n_vocab)->capture_default_str();
  t->add_option("--embd", h.n_embd)->capture_default_str();
  t->add_option("--layers", h.n_layer)->capture_default_str();
  t->add_option("--heads", h.n_head)->capture_default_str();
  t->add_option("--heads-kv", h.n_head_kv)->capture_default_str();
  t->add_option("--ff", h.n_ff)->capture_default_str();
  t->add_option("--ctx", h.n_ctx)->capture_default_str();
  t->add_option("--threads", h.threads)->capture_default_str();
  t->add_option("--decay-start", h.decay_start, "step where the LR decay starts (default: 80% of --steps or of --max-seconds)");
  t->add_option("--max-seconds", h.max_seconds, "wall budget in seconds (0: none)");
  t->add_option("--export-every", h.export_every, "also export every N steps");
  t->add_option("--warmup", h.warmup)->capture_default_str();
  t->add_option("--init", ta.init, "start from this checkpoint (.pt written next to a previous -o)");
  t->add_option("--vocab-data", ta.vocab_data, "train the vocabulary on this dataset instead of --data");
  t->add_option("--data-seed", ta.data_seed, "seed the dataset was generated with (for the manifest)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    if (d->parsed()) return cmd_data(data_seed, count, data_out);
    return cmd_train(ta, h);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
