#include "engine/arch/llama.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <span>

#include "core/checked_math.h"
#include "engine/kv/half.h"

namespace ztslm::engine {
namespace {

constexpr size_t kAlign = kv::AlignedBuffer::kAlignment;

size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// y = rmsnorm(x) ⊙ w over `n` values (§4.1): squares summed in double, scale in float, then two
// separate F32 multiplies.
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

void add_bias(std::span<const float> b, int64_t n_tokens, int64_t r0, int64_t r1, float* y,
              int64_t ldy) {
  if (b.empty()) return;
  for (int64_t t = 0; t < n_tokens; ++t) {
    float* row = y + t * ldy;
    for (int64_t r = r0; r < r1; ++r) row[r] += b[static_cast<size_t>(r)];
  }
}

// RoPE settings for one pass (§4.2).
struct Rope {
  int64_t n_rot = 0;
  bool neox = false;
  float theta_scale = 1.0f;
  float freq_scale = 1.0f;
  float ext_factor = 0.0f;
  float attn_factor = 1.0f;
  float corr_lo = 0.0f;
  float corr_hi = 0.0f;
  const float* freq_factors = nullptr;

  explicit Rope(const Model& m) {
    const HParams& hp = m.hparams();
    n_rot = hp.n_rot;
    neox = hp.rope_type == RopeType::kNeox;
    theta_scale = std::pow(hp.rope_freq_base, -2.0f / static_cast<float>(n_rot));
    freq_scale = hp.rope_freq_scale;
    ext_factor = hp.rope_ext_factor;
    attn_factor = hp.rope_attn_factor;
    if (!m.rope_freqs().empty()) freq_factors = m.rope_freqs().data();
    if (ext_factor != 0.0f) {
      const float dims = static_cast<float>(n_rot);
      const float n_ctx_orig = static_cast<float>(hp.n_ctx_orig);
      const float two_log_base = 2.0f * std::log(hp.rope_freq_base);
      auto corr = [&](float beta) {
        return dims * std::log(n_ctx_orig / (beta * 2.0f * std::numbers::pi_v<float>)) /
               two_log_base;
      };
      corr_lo = std::max(0.0f, std::floor(corr(hp.rope_beta_fast)));
      corr_hi = std::min(dims - 1.0f, std::ceil(corr(hp.rope_beta_slow)));
    }
  }

  // cs[2i] = cos θ'_i · mscale, cs[2i+1] = sin θ'_i · mscale for pair i at position `pos`; θ is
  // built by repeated multiplication, as the reference does.
  void cache(int64_t pos, float* cs) const {
    float theta = static_cast<float>(pos);
    for (int64_t i = 0; i < n_rot / 2; ++i) {
      const float ff = freq_factors != nullptr ? freq_factors[i] : 1.0f;
      const float theta_ext = theta / ff;
      const float theta_int = freq_scale * theta_ext;
      float th = theta_int;
      float mscale = attn_factor;
      if (ext_factor != 0.0f) {
        const float y = (static_cast<float>(i) - corr_lo) / std::max(0.001f, corr_hi - corr_lo);
        const float ramp = 1.0f - std::min(1.0f, std::max(0.0f, y));
        const float mix = ramp * ext_factor;
        th = theta_int * (1.0f - mix) + theta_ext * mix;
        mscale *= 1.0f + 0.1f * std::log(1.0f / freq_scale);
      }
      cs[2 * i] = std::cos(th) * mscale;
      cs[2 * i + 1] = std::sin(th) * mscale;
      theta *= theta_scale;
    }
  }

  // Rotates the first n_rot values of each of `n_heads` heads of `head_dim` values in `v`.
  void apply(const float* cs, float* v, int64_t n_heads, int64_t head_dim) const {
    const int64_t half = n_rot / 2;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* x = v + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = neox ? i : 2 * i;
        const int64_t b = neox ? i + half : 2 * i + 1;
        const float c = cs[2 * i];
        const float s = cs[2 * i + 1];
        const float x0 = x[a];
        const float x1 = x[b];
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
      }
    }
  }
};

// Softmax in place over `n` scores scaled by `scale` (§4.3): max, exp, sum in double, then one
// multiply by the float reciprocal.
void softmax(float* w, int64_t n, float scale) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) {
    w[j] *= scale;
    mx = std::max(mx, w[j]);
  }
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    const float e = std::exp(w[j] - mx);
    w[j] = e;
    sum += static_cast<double>(e);
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < n; ++j) w[j] *= inv;
}

float silu(float g) { return g / (1.0f + std::exp(-g)); }

}  // namespace

// Shared state of one pass; the member functions run on every thread of the pool.
struct ForwardPass {
  const Model& m;
  const HParams& hp;
  KvCache& kv;
  ForwardScratch& s;
  ThreadPool& pool;
  const int32_t* tokens;
  int64_t n;
  int64_t n_past;
  bool all_logits;
  float* logits;
  Rope rope;
  Isa isa;

  float* f32(size_t off) const { return reinterpret_cast<float*>(s.buf_.data() + off); }
  std::byte* act(int region) const { return s.buf_.data() + s.off_act_ + region * s.act_bytes_; }

  // Converts rows [t0, t1) of x ([*, n_cols]) for every distinct activation type among `ms`;
  // region[i] receives the index of the activation region matrix i reads.
  void convert(const Matrix* const* ms, int n_ms, const float* x, int64_t n_cols, int64_t t0,
               int64_t t1, int* region) const {
    for (int i = 0; i < n_ms; ++i) {
      region[i] = i;
      for (int j = 0; j < i; ++j) {
        if (ms[j]->act_type() == ms[i]->act_type()) {
          region[i] = region[j];
          break;
        }
      }
      if (region[i] == i && t1 > t0) {
        convert_activations(ms[i]->act_type(), x, n_cols, t0, t1, act(i), isa);
      }
    }
  }

  // y[t, r] for this thread's rows of `w`, plus the optional bias.
  void multiply(const Matrix& w, int region, int64_t n_tok, std::span<const float> bias,
                float* y, int64_t ldy, int ith, int nth) const {
    int64_t r0 = 0, r1 = 0;
    ThreadPool::split(w.n_rows(), ith, nth, w.row_granularity(), &r0, &r1);
    if (r1 <= r0) return;
    w.multiply(act(region), n_tok, r0, r1, y, ldy);
    add_bias(bias, n_tok, r0, r1, y, ldy);
  }

  // Attention of token t (position n_past + t), query head h, into out[D].
  void attend(uint32_t il, int64_t t, int64_t h, const float* q, float* out, float* scores) const {
    const int64_t d = hp.n_embd_head;
    const int64_t group = hp.n_head(il) / hp.n_head_kv(il);
    const uint32_t kvh = static_cast<uint32_t>(h / group);
    const int64_t n_kv = n_past + t + 1;  // causal: cells 0..pos
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    if (kv.type() == KvType::kF32) {
      const float* k = kv.k_f32(il, kvh);
      const float* v = kv.v_f32(il, kvh);
      attn_scores_f32(q, k, n_kv, d, scores);
      softmax(scores, n_kv, scale);
      attn_values_f32(scores, v, n_kv, d, out);
    } else {
      // F16 cache: q and p are rounded to F16 too (their vec_dot_type), products summed in
      // double for the scores.
      const uint16_t* k = kv.k_f16(il, kvh);
      const uint16_t* v = kv.v_f16(il, kvh);
      float qh[1024];
      for (int64_t i = 0; i < d; ++i) qh[i] = kv::f16_to_f32(kv::f32_to_f16(q[i]));
      for (int64_t j = 0; j < n_kv; ++j) {
        double acc = 0.0;
        const uint16_t* kj = k + j * d;
        for (int64_t i = 0; i < d; ++i) acc += static_cast<double>(qh[i] * kv::f16_to_f32(kj[i]));
        scores[j] = static_cast<float>(acc);
      }
      softmax(scores, n_kv, scale);
      std::fill(out, out + d, 0.0f);
      for (int64_t j = 0; j < n_kv; ++j) {
        const float p = kv::f16_to_f32(kv::f32_to_f16(scores[j]));
        const uint16_t* vj = v + j * d;
        for (int64_t i = 0; i < d; ++i) out[i] += p * kv::f16_to_f32(vj[i]);
      }
    }
  }

  void run(int ith, int nth) {
    const int64_t e = hp.n_embd;
    const int64_t d = hp.n_embd_head;
    const float eps = hp.rms_eps;
    float* x = f32(s.off_x_);
    float* hbuf = f32(s.off_h_);
    float* q = f32(s.off_q_);
    float* k = f32(s.off_k_);
    float* v = f32(s.off_v_);
    float* attn = f32(s.off_attn_);
    float* tmp = f32(s.off_tmp_);
    float* gate = f32(s.off_gate_);
    float* up = f32(s.off_up_);
    float* rope_cs = f32(s.off_rope_);
    float* scores = reinterpret_cast<float*>(s.buf_.data() + s.off_scores_ +
                                             static_cast<size_t>(ith) * s.scores_stride_);

    int64_t t0 = 0, t1 = 0;
    ThreadPool::split(n, ith, nth, 1, &t0, &t1);

    // Embeddings (exact dequantisation of the rows) and the RoPE table of each token.
    for (int64_t t = t0; t < t1; ++t) {
      m.token_embd().dequantize_row(tokens[t], x + t * e);
      rope.cache(n_past + t, rope_cs + t * rope.n_rot);
    }

    for (uint32_t il = 0; il < hp.n_layer; ++il) {
      const LayerWeights& L = m.layer(il);
      const int64_t n_h = hp.n_head(il);
      const int64_t n_kvh = hp.n_head_kv(il);
      const int64_t n_q = n_h * d;
      const int64_t n_kv = n_kvh * d;
      const int64_t n_ff = hp.n_ff(il);

      // h = rmsnorm(x) ⊙ attn_norm; activations for Wq, Wk, Wv.
      for (int64_t t = t0; t < t1; ++t) {
        rms_norm(x + t * e, L.attn_norm.data(), e, eps, hbuf + t * e);
      }
      const Matrix* qkv[3] = {&L.wq, &L.wk, &L.wv};
      int reg[3];
      convert(qkv, 3, hbuf, e, t0, t1, reg);
      pool.barrier();

      // [n, n_q], [n, n_kv], [n, n_kv]
      multiply(L.wq, reg[0], n, L.bq, q, n_q, ith, nth);
      multiply(L.wk, reg[1], n, L.bk, k, n_kv, ith, nth);
      multiply(L.wv, reg[2], n, L.bv, v, n_kv, ith, nth);
      pool.barrier();

      // RoPE on q and k, then append k, v to the cache.
      for (int64_t t = t0; t < t1; ++t) {
        const float* cs = rope_cs + t * rope.n_rot;
        rope.apply(cs, q + t * n_q, n_h, d);
        rope.apply(cs, k + t * n_kv, n_kvh, d);
        kv.store(il, static_cast<uint32_t>(n_past + t), k + t * n_kv, v + t * n_kv);
      }
      pool.barrier();

      // Attention, one (token, head) pair at a time: [n, n_q].
      int64_t u0 = 0, u1 = 0;
      ThreadPool::split(n * n_h, ith, nth, 1, &u0, &u1);
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t t = u / n_h;
        const int64_t h = u % n_h;
        attend(il, t, h, q + t * n_q + h * d, attn + t * n_q + h * d, scores);
      }
      pool.barrier();

      const Matrix* wo[1] = {&L.wo};
      convert(wo, 1, attn, n_q, t0, t1, reg);
      pool.barrier();
      multiply(L.wo, reg[0], n, L.bo, tmp, e, ith, nth);  // [n, n_embd]
      pool.barrier();

      // x += attention output; h = rmsnorm(x) ⊙ ffn_norm; activations for gate and up.
      for (int64_t t = t0; t < t1; ++t) {
        float* xr = x + t * e;
        const float* tr = tmp + t * e;
        for (int64_t i = 0; i < e; ++i) xr[i] = tr[i] + xr[i];
        rms_norm(xr, L.ffn_norm.data(), e, eps, hbuf + t * e);
      }
      const Matrix* gu[2] = {&L.ffn_gate, &L.ffn_up};
      convert(gu, 2, hbuf, e, t0, t1, reg);
      pool.barrier();
      multiply(L.ffn_gate, reg[0], n, L.b_gate, gate, n_ff, ith, nth);  // [n, n_ff]
      multiply(L.ffn_up, reg[1], n, L.b_up, up, n_ff, ith, nth);        // [n, n_ff]
      pool.barrier();

      // SwiGLU: gate = silu(gate) ⊙ up; activations for W_down.
      for (int64_t t = t0; t < t1; ++t) {
        float* g = gate + t * n_ff;
        const float* ur = up + t * n_ff;
        for (int64_t i = 0; i < n_ff; ++i) g[i] = silu(g[i]) * ur[i];
      }
      const Matrix* dn[1] = {&L.ffn_down};
      convert(dn, 1, gate, n_ff, t0, t1, reg);
      pool.barrier();
      multiply(L.ffn_down, reg[0], n, L.b_down, tmp, e, ith, nth);  // [n, n_embd]
      pool.barrier();

      for (int64_t t = t0; t < t1; ++t) {
        float* xr = x + t * e;
        const float* tr = tmp + t * e;
        for (int64_t i = 0; i < e; ++i) xr[i] = tr[i] + xr[i];
      }
    }

    // Output: rmsnorm ⊙ output_norm on the rows that need logits, then W_out.
    const int64_t n_out = all_logits ? n : 1;
    const int64_t first = all_logits ? 0 : n - 1;
    int64_t o0 = 0, o1 = 0;
    ThreadPool::split(n_out, ith, nth, 1, &o0, &o1);
    if (!all_logits) pool.barrier();  // row n-1 may belong to another thread's token range
    for (int64_t o = o0; o < o1; ++o) {
      rms_norm(x + (first + o) * e, m.output_norm().data(), e, eps, hbuf + o * e);
    }
    const Matrix* out[1] = {&m.output()};
    int reg[1];
    convert(out, 1, hbuf, e, o0, o1, reg);
    pool.barrier();
    multiply(m.output(), reg[0], n_out, m.output_bias(), logits, hp.n_vocab, ith, nth);
  }
};

Result<ForwardScratch> ForwardScratch::create(const Model& model, uint32_t max_batch,
                                              uint32_t n_ctx, int n_threads, size_t max_bytes) {
  const HParams& hp = model.hparams();
  if (max_batch == 0 || n_ctx == 0 || n_threads < 1) {
    return Status::invalid_argument("scratch needs max_batch, n_ctx and n_threads > 0");
  }
  if (hp.n_embd_head > 1024) {
    return Status::invalid_argument("head_dim {} exceeds 1024", hp.n_embd_head);
  }
  ForwardScratch s;
  s.max_batch_ = max_batch;
  s.n_ctx_ = n_ctx;
  s.n_threads_ = n_threads;
  const size_t b = max_batch;
  const size_t e = hp.n_embd;
  const size_t n_q = size_t{hp.max_n_head()} * hp.n_embd_head;
  const size_t n_kv = size_t{hp.max_n_head_kv()} * hp.n_embd_head;
  const size_t n_ff = hp.max_n_ff();

  // Largest activation row among all matrices (each converted from at most max_batch rows).
  size_t act_row = activation_row_bytes(model.output().act_type(), model.output().n_cols());
  for (uint32_t il = 0; il < hp.n_layer; ++il) {
    const LayerWeights& L = model.layer(il);
    for (const Matrix* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down}) {
      act_row = std::max(act_row, activation_row_bytes(w->act_type(), w->n_cols()));
    }
  }

  size_t total = 0;
  bool ok = true;
  auto take = [&](size_t n_bytes) {
    const size_t at = total;
    size_t padded = 0;
    ok = ok && checked_add(n_bytes, kAlign - 1, &padded);
    padded = padded / kAlign * kAlign;
    ok = ok && checked_add(total, padded, &total);
    return at;
  };
  auto floats = [&](size_t rows, size_t cols) {
    size_t n_el = 0;
    ok = ok && checked_mul(rows, cols, &n_el) && checked_mul(n_el, sizeof(float), &n_el);
    return take(n_el);
  };
  s.off_x_ = floats(b, e);
  s.off_h_ = floats(b, e);
  s.off_q_ = floats(b, n_q);
  s.off_k_ = floats(b, n_kv);
  s.off_v_ = floats(b, n_kv);
  s.off_attn_ = floats(b, n_q);
  s.off_tmp_ = floats(b, e);
  s.off_gate_ = floats(b, n_ff);
  s.off_up_ = floats(b, n_ff);
  s.off_rope_ = floats(b, hp.n_rot);
  size_t act_bytes = 0;
  ok = ok && checked_mul(act_row, b, &act_bytes);
  s.act_bytes_ = round_up(act_bytes);
  s.off_act_ = take(s.act_bytes_ * 3);
  s.scores_stride_ = round_up(size_t{n_ctx} * sizeof(float));
  s.off_scores_ = take(s.scores_stride_ * static_cast<size_t>(n_threads));
  if (!ok || total > max_bytes) {
    return Status::resource_exhausted(
        "activation scratch for batch {} and n_ctx {} exceeds the limit of {} bytes", max_batch,
        n_ctx, max_bytes);
  }
  s.buf_ = kv::AlignedBuffer(total);
  return s;
}

void forward(const Model& model, KvCache& kv, ForwardScratch& scratch, ThreadPool& pool,
             const int32_t* tokens, uint32_t n_tokens, uint32_t n_past, bool all_logits,
             float* logits) {
  ZTSLM_CHECK(n_tokens >= 1 && n_tokens <= scratch.max_batch());
  ZTSLM_CHECK(size_t{n_past} + n_tokens <= kv.n_ctx() && kv.n_ctx() <= scratch.n_ctx());
  ZTSLM_CHECK(pool.size() <= scratch.n_threads());
  ForwardPass pass{model,  model.hparams(), kv,         scratch, pool,       tokens,
                   n_tokens, n_past,        all_logits, logits,  Rope(model), model.isa()};
  pool.run([&pass](int ith, int nth) { pass.run(ith, nth); });
}

}  // namespace ztslm::engine
