#include "engine/model.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <set>
#include <utility>

#include "core/utf8.h"

namespace ztslm::engine {
namespace {

// Loads tensors by name, checks shapes and records which were used, so that a tensor the
// architecture does not expect can be reported.
class TensorLoader {
 public:
  TensorLoader(const gguf::File& f, Isa isa) : f_(f), isa_(isa) {}

  const gguf::TensorInfo* find(const std::string& name) const { return f_.find_tensor(name); }

  // A weight stored as GGUF ne = [n_cols, n_rows].
  Result<Matrix> matrix(const std::string& name, int64_t n_cols, int64_t n_rows) {
    const gguf::TensorInfo* t = f_.find_tensor(name);
    if (t == nullptr) return Status::malformed("missing tensor {}", name);
    ZTSLM_TRY(check_shape(*t, n_cols, n_rows));
    ZTSLM_TRY(check_alignment(*t));
    used_.insert(name);
    auto m = Matrix::create(t->type, n_cols, n_rows, t->data, isa_);
    if (!m.has_value()) {
      return Status(m.error().code(), str_format("tensor {} (type {}): {}", name,
                                                 gguf::tensor_type_name(t->type),
                                                 m.error().message()));
    }
    return std::move(m).value();
  }

  // An F32 vector of `n` values; absent is an error unless `optional` (then empty).
  Result<std::vector<float>> vector(const std::string& name, int64_t n, bool optional = false) {
    const gguf::TensorInfo* t = f_.find_tensor(name);
    if (t == nullptr) {
      if (optional) return std::vector<float>();
      return Status::malformed("missing tensor {}", name);
    }
    ZTSLM_TRY(check_shape(*t, n, 1));
    if (t->type != gguf::TensorType::kF32) {
      return Status::invalid_argument("tensor {} has unsupported type {} (expected F32)", name,
                                      gguf::tensor_type_name(t->type));
    }
    if (t->data.size() != static_cast<size_t>(n) * sizeof(float)) {
      return Status::malformed("tensor {} has {} bytes, expected {}", name, t->data.size(),
                               static_cast<size_t>(n) * sizeof(float));
    }
    used_.insert(name);
    std::vector<float> v(static_cast<size_t>(n));
    std::memcpy(v.data(), t->data.data(), t->data.size());
    for (float x : v) {
      if (!std::isfinite(x)) return Status::malformed("tensor {} holds a non-finite value", name);
    }
    return v;
  }

  // kMalformed naming the first tensor that was never asked for.
  Status check_all_used() const {
    for (const gguf::TensorInfo& t : f_.tensors) {
      if (used_.count(t.name) == 0) {
        return Status::malformed("unexpected tensor {}", printable(t.name, 64));
      }
    }
    return Status();
  }

 private:
  static Status check_shape(const gguf::TensorInfo& t, int64_t ne0, int64_t ne1) {
    if (t.ne[0] != ne0 || t.ne[1] != ne1 || t.ne[2] != 1 || t.ne[3] != 1) {
      return Status::malformed("tensor {} has shape [{}, {}, {}, {}], expected [{}, {}]", t.name,
                               t.ne[0], t.ne[1], t.ne[2], t.ne[3], ne0, ne1);
    }
    return Status();
  }
  static Status check_alignment(const gguf::TensorInfo& t) {
    // SECURITY: the kernels read F32/F16 fields in place; a file with a tiny general.alignment
    // must not make them do misaligned (undefined) loads.
    if (reinterpret_cast<uintptr_t>(t.data.data()) % 4 != 0) {
      return Status::malformed("tensor {} data is not 4-byte aligned", t.name);
    }
    return Status();
  }

  const gguf::File& f_;
  Isa isa_;
  std::set<std::string, std::less<>> used_;
};

std::string blk(uint32_t il, const char* suffix) {
  return str_format("blk.{}.{}", il, suffix);
}

}  // namespace

Result<std::shared_ptr<const Model>> Model::load(MappedFile file, const ModelOptions& opt) {
  auto owner = std::make_shared<MappedFile>(std::move(file));
  const std::span<const std::byte> bytes = owner->bytes();
  return from_bytes(std::move(owner), bytes, opt);
}

Result<std::shared_ptr<const Model>> Model::open(const std::string& path,
                                                 const ModelOptions& opt) {
  ZTSLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  return load(std::move(file), opt);
}

Result<std::shared_ptr<const Model>> Model::from_bytes(std::shared_ptr<const void> owner,
                                                       std::span<const std::byte> bytes,
                                                       const ModelOptions& opt) {
  std::shared_ptr<Model> m(new Model());
  m->storage_ = std::move(owner);
  ZTSLM_ASSIGN_OR_RETURN(m->file_, gguf::parse(bytes, opt.gguf_limits));
  ZTSLM_TRY(m->init(opt));
  return std::shared_ptr<const Model>(std::move(m));
}

Status Model::init(const ModelOptions& opt) {
  ZTSLM_ASSIGN_OR_RETURN(hp_, HParams::from_metadata(file_.metadata, opt.hparams_limits));
  isa_ = opt.isa;
  TensorLoader ld(file_, isa_);
  const int64_t n_embd = hp_.n_embd;
  const int64_t d = hp_.n_embd_head;

  // Vocabulary size: token_embd's row count, cross-checked with the metadata.
  const gguf::TensorInfo* te = ld.find("token_embd.weight");
  if (te == nullptr) return Status::malformed("missing tensor token_embd.weight");
  const int64_t n_vocab = te->ne[1];
  if (n_vocab < 1 || n_vocab > static_cast<int64_t>(opt.max_vocab)) {
    return Status::resource_exhausted("token_embd.weight has {} rows, limit {}", n_vocab,
                                      opt.max_vocab);
  }
  if (hp_.n_vocab != 0 && hp_.n_vocab != n_vocab) {
    return Status::malformed("{}.vocab_size {} != token_embd.weight rows {}", arch_name(hp_.arch),
                             hp_.n_vocab, n_vocab);
  }
  if (const gguf::Value* toks = file_.metadata.find("tokenizer.ggml.tokens");
      toks != nullptr && toks->array_size() != static_cast<size_t>(n_vocab)) {
    return Status::malformed("tokenizer.ggml.tokens has {} entries, token_embd.weight {} rows",
                             toks->array_size(), n_vocab);
  }
  hp_.n_vocab = static_cast<uint32_t>(n_vocab);

  ZTSLM_ASSIGN_OR_RETURN(token_embd_, ld.matrix("token_embd.weight", n_embd, n_vocab));
  ZTSLM_ASSIGN_OR_RETURN(output_norm_, ld.vector("output_norm.weight", n_embd));
  if (ld.find("output.weight") != nullptr) {
    ZTSLM_ASSIGN_OR_RETURN(output_, ld.matrix("output.weight", n_embd, n_vocab));
    tied_output_ = false;
  } else {
    output_ = token_embd_;  // tied: logits = output_norm(x) · token_embdᵀ
    tied_output_ = true;
  }
  ZTSLM_ASSIGN_OR_RETURN(output_bias_, ld.vector("output.bias", n_vocab, /*optional=*/true));
  ZTSLM_ASSIGN_OR_RETURN(rope_freqs_, ld.vector("rope_freqs.weight", hp_.n_rot / 2, true));
  for (float f : rope_freqs_) {
    if (!(f > 0.0f)) return Status::malformed("rope_freqs.weight holds a non-positive factor");
  }

  layers_.resize(hp_.n_layer);
  for (uint32_t il = 0; il < hp_.n_layer; ++il) {
    LayerWeights& l = layers_[il];
    const int64_t n_q = int64_t{hp_.n_head(il)} * d;
    const int64_t n_kv = int64_t{hp_.n_head_kv(il)} * d;
    const int64_t n_ff = hp_.n_ff(il);
    ZTSLM_ASSIGN_OR_RETURN(l.attn_norm, ld.vector(blk(il, "attn_norm.weight"), n_embd));
    ZTSLM_ASSIGN_OR_RETURN(l.wq, ld.matrix(blk(il, "attn_q.weight"), n_embd, n_q));
    ZTSLM_ASSIGN_OR_RETURN(l.wk, ld.matrix(blk(il, "attn_k.weight"), n_embd, n_kv));
    ZTSLM_ASSIGN_OR_RETURN(l.wv, ld.matrix(blk(il, "attn_v.weight"), n_embd, n_kv));
    ZTSLM_ASSIGN_OR_RETURN(l.wo, ld.matrix(blk(il, "attn_output.weight"), n_q, n_embd));
    ZTSLM_ASSIGN_OR_RETURN(l.bq, ld.vector(blk(il, "attn_q.bias"), n_q, true));
    ZTSLM_ASSIGN_OR_RETURN(l.bk, ld.vector(blk(il, "attn_k.bias"), n_kv, true));
    ZTSLM_ASSIGN_OR_RETURN(l.bv, ld.vector(blk(il, "attn_v.bias"), n_kv, true));
    ZTSLM_ASSIGN_OR_RETURN(l.bo, ld.vector(blk(il, "attn_output.bias"), n_embd, true));
    ZTSLM_ASSIGN_OR_RETURN(l.ffn_norm, ld.vector(blk(il, "ffn_norm.weight"), n_embd));
    ZTSLM_ASSIGN_OR_RETURN(l.ffn_gate, ld.matrix(blk(il, "ffn_gate.weight"), n_embd, n_ff));
    ZTSLM_ASSIGN_OR_RETURN(l.ffn_up, ld.matrix(blk(il, "ffn_up.weight"), n_embd, n_ff));
    ZTSLM_ASSIGN_OR_RETURN(l.ffn_down, ld.matrix(blk(il, "ffn_down.weight"), n_ff, n_embd));
    ZTSLM_ASSIGN_OR_RETURN(l.b_gate, ld.vector(blk(il, "ffn_gate.bias"), n_ff, true));
    ZTSLM_ASSIGN_OR_RETURN(l.b_up, ld.vector(blk(il, "ffn_up.bias"), n_ff, true));
    ZTSLM_ASSIGN_OR_RETURN(l.b_down, ld.vector(blk(il, "ffn_down.bias"), n_embd, true));
  }
  return ld.check_all_used();
}

}  // namespace ztslm::engine
