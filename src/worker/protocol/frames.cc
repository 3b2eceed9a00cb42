#include "worker/protocol/frames.h"

#include <cmath>
#include <cstring>

#include "core/byte_reader.h"
#include "core/byte_writer.h"
#include "core/utf8.h"

namespace ztslm::worker::protocol {
namespace {

// Field readers over the payload; each returns kMalformed / kResourceExhausted naming `what`.
class Fields final {
 public:
  explicit Fields(ByteReader r) : r_(r) {}

  Status u8(uint8_t* out, const char* what) { return r_.read_u8(out) ? Status() : truncated(what); }
  Status u16(uint16_t* out, const char* what) { return r_.read_u16_le(out) ? Status() : truncated(what); }
  Status u32(uint32_t* out, const char* what) { return r_.read_u32_le(out) ? Status() : truncated(what); }
  Status i32(int32_t* out, const char* what) { return r_.read_i32_le(out) ? Status() : truncated(what); }
  Status u64(uint64_t* out, const char* what) { return r_.read_u64_le(out) ? Status() : truncated(what); }
  Status session(uint64_t* out) {
    ZTSLM_TRY(u64(out, "session id"));
    if (*out == 0) return Status::malformed("frame session id is 0");
    return Status();
  }
  // A float that must be finite and within [lo, hi].
  Status f32(float* out, float lo, float hi, const char* what) {
    if (!r_.read_f32_le(out)) return truncated(what);
    if (!std::isfinite(*out) || *out < lo || *out > hi) {
      return Status::malformed("frame field {} outside [{}, {}]", what, lo, hi);
    }
    return Status();
  }
  Status f32_raw(float* out, const char* what) { return r_.read_f32_le(out) ? Status() : truncated(what); }
  Status string(std::string* out, size_t max_bytes, const char* what) {
    ByteReader body;
    if (!r_.read_prefixed_u32_le(&body)) return truncated(what);
    if (body.size() > max_bytes) {
      return Status::resource_exhausted("frame field {} of {} bytes exceeds limit {}", what, body.size(), max_bytes);
    }
    const std::string_view s = body.as_string_view();
    if (!is_valid_utf8(s)) return Status::malformed("frame field {} is not UTF-8", what);
    out->assign(s);
    return Status();
  }
  // A count that is checked against `max` and against the bytes left (each element takes at
  // least `min_elem_bytes`) before anything is allocated.
  Status count(uint32_t* out, size_t max, size_t min_elem_bytes, const char* what) {
    ZTSLM_TRY(u32(out, what));
    if (*out > max) return Status::resource_exhausted("frame field {} count {} exceeds limit {}", what, *out, max);
    if (static_cast<uint64_t>(*out) * min_elem_bytes > r_.size()) return truncated(what);
    return Status();
  }
  Status end() {
    return r_.expect_empty() ? Status() : Status::malformed("frame has {} trailing bytes", r_.size());
  }

 private:
  static Status truncated(const char* what) { return Status::malformed("frame truncated at {}", what); }
  ByteReader r_;
};

void put_string(ByteWriter& w, std::string_view s) {
  w.put_u32_le(static_cast<uint32_t>(s.size()));
  w.put_string(s);
}

Status decode_sampling(Fields& f, const Limits& lim, Sampling& s) {
  ZTSLM_TRY(f.f32(&s.temperature, 0.0f, 100.0f, "temperature"));
  ZTSLM_TRY(f.i32(&s.top_k, "top_k"));
  if (s.top_k < 0) return Status::malformed("frame field top_k is negative");
  ZTSLM_TRY(f.f32(&s.top_p, 0.0f, 1.0f, "top_p"));
  if (s.top_p <= 0.0f) return Status::malformed("frame field top_p outside (0, 1]");
  ZTSLM_TRY(f.f32(&s.min_p, 0.0f, 1.0f, "min_p"));
  ZTSLM_TRY(f.f32(&s.repeat_penalty, 0.0f, 100.0f, "repeat_penalty"));
  if (s.repeat_penalty <= 0.0f) return Status::malformed("frame field repeat_penalty outside (0, 100]");
  ZTSLM_TRY(f.f32(&s.frequency_penalty, -100.0f, 100.0f, "frequency_penalty"));
  ZTSLM_TRY(f.f32(&s.presence_penalty, -100.0f, 100.0f, "presence_penalty"));
  ZTSLM_TRY(f.i32(&s.penalty_last_n, "penalty_last_n"));
  if (s.penalty_last_n < 0 || s.penalty_last_n > (1 << 16)) {
    return Status::malformed("frame field penalty_last_n outside [0, 65536]");
  }
  ZTSLM_TRY(f.u32(&s.seed, "seed"));
  ZTSLM_TRY(f.u32(&s.max_tokens, "max_tokens"));
  if (s.max_tokens == 0 || s.max_tokens > (1u << 20)) return Status::malformed("frame field max_tokens outside [1, 2^20]");
  uint32_t n = 0;
  ZTSLM_TRY(f.count(&n, lim.max_stop, 4, "stop"));
  s.stop.resize(n);
  for (std::string& stop : s.stop) {
    ZTSLM_TRY(f.string(&stop, lim.max_stop_bytes, "stop"));
    if (stop.empty()) return Status::malformed("frame field stop is empty");
  }
  ZTSLM_TRY(f.count(&n, lim.max_logit_bias, 8, "logit_bias"));
  s.logit_bias.resize(n);
  for (LogitBias& b : s.logit_bias) {
    ZTSLM_TRY(f.i32(&b.token, "logit_bias token"));
    if (b.token < 0) return Status::malformed("frame field logit_bias token is negative");
    float v = 0;
    ZTSLM_TRY(f.f32_raw(&v, "logit_bias value"));
    // -inf bans a token; any other non-finite value is a defect.
    if (!(std::isfinite(v) && std::fabs(v) <= 100.0f) && !(std::isinf(v) && v < 0)) {
      return Status::malformed("frame field logit_bias value outside [-100, 100] or -inf");
    }
    b.bias = v;
  }
  return Status();
}

void encode_sampling(ByteWriter& w, const Sampling& s) {
  w.put_f32_le(s.temperature);
  w.put_i32_le(s.top_k);
  w.put_f32_le(s.top_p);
  w.put_f32_le(s.min_p);
  w.put_f32_le(s.repeat_penalty);
  w.put_f32_le(s.frequency_penalty);
  w.put_f32_le(s.presence_penalty);
  w.put_i32_le(s.penalty_last_n);
  w.put_u32_le(s.seed);
  w.put_u32_le(s.max_tokens);
  w.put_u32_le(static_cast<uint32_t>(s.stop.size()));
  for (const std::string& stop : s.stop) put_string(w, stop);
  w.put_u32_le(static_cast<uint32_t>(s.logit_bias.size()));
  for (const LogitBias& b : s.logit_bias) {
    w.put_i32_le(b.token);
    w.put_f32_le(b.bias);
  }
}

Result<Frame> decode_payload(FrameType type, Fields& f, const Limits& lim) {
  switch (type) {
    case FrameType::kHello: {
      Hello h;
      ZTSLM_TRY(f.u16(&h.version, "version"));
      if (h.version != kProtocolVersion) return Status::malformed("hello protocol version {} is not {}", h.version, kProtocolVersion);
      ZTSLM_TRY(f.u32(&h.max_sessions, "max_sessions"));
      ZTSLM_TRY(f.u32(&h.n_ctx, "n_ctx"));
      if (h.max_sessions == 0 || h.max_sessions > 65536) return Status::malformed("hello max_sessions outside [1, 65536]");
      if (h.n_ctx == 0 || h.n_ctx > (1u << 20)) return Status::malformed("hello n_ctx outside [1, 2^20]");
      return Frame(h);
    }
    case FrameType::kReady: {
      Ready r;
      ZTSLM_TRY(f.u16(&r.version, "version"));
      if (r.version != kProtocolVersion) return Status::malformed("ready protocol version {} is not {}", r.version, kProtocolVersion);
      ZTSLM_TRY(f.u32(&r.n_vocab, "n_vocab"));
      ZTSLM_TRY(f.u32(&r.n_ctx_train, "n_ctx_train"));
      ZTSLM_TRY(f.u32(&r.n_ctx, "n_ctx"));
      ZTSLM_TRY(f.u32(&r.max_sessions, "max_sessions"));
      ZTSLM_TRY(f.u64(&r.session_kv_bytes, "session_kv_bytes"));
      if (r.n_vocab == 0 || r.n_ctx == 0 || r.max_sessions == 0 || r.session_kv_bytes == 0) {
        return Status::malformed("ready has a zero size");
      }
      if (r.session_kv_bytes > lim.max_session_kv_bytes) {
        return Status::resource_exhausted("ready session_kv_bytes {} exceeds limit {}", r.session_kv_bytes,
                                          lim.max_session_kv_bytes);
      }
      ZTSLM_TRY(f.string(&r.lockdown, lim.max_report_bytes, "lockdown"));
      return Frame(std::move(r));
    }
    case FrameType::kGenerate: {
      Generate g;
      ZTSLM_TRY(f.session(&g.session_id));
      uint8_t kind = 0;
      ZTSLM_TRY(f.u8(&kind, "prompt kind"));
      if (kind > 2) return Status::malformed("generate prompt kind {} unknown", kind);
      g.kind = static_cast<PromptKind>(kind);
      if (g.kind == PromptKind::kText) {
        ZTSLM_TRY(f.string(&g.text, lim.max_text_bytes, "prompt text"));
      } else if (g.kind == PromptKind::kTokens) {
        uint32_t n = 0;
        ZTSLM_TRY(f.count(&n, lim.max_prompt_tokens, 4, "prompt tokens"));
        if (n == 0) return Status::malformed("generate has no prompt tokens");
        g.tokens.resize(n);
        for (int32_t& t : g.tokens) {
          ZTSLM_TRY(f.i32(&t, "prompt token"));
          if (t < 0) return Status::malformed("generate prompt token {} is negative", t);
        }
      } else {
        uint32_t n = 0;
        ZTSLM_TRY(f.count(&n, lim.max_messages, 8, "messages"));
        if (n == 0) return Status::malformed("generate has no chat messages");
        g.messages.resize(n);
        size_t total = 0;
        for (ChatMessage& m : g.messages) {
          ZTSLM_TRY(f.string(&m.role, lim.max_role_bytes, "message role"));
          if (m.role.empty()) return Status::malformed("generate message role is empty");
          ZTSLM_TRY(f.string(&m.content, lim.max_text_bytes, "message content"));
          total += m.content.size();
          if (total > lim.max_text_bytes) {
            return Status::resource_exhausted("generate messages exceed {} bytes", lim.max_text_bytes);
          }
        }
      }
      ZTSLM_TRY(decode_sampling(f, lim, g.sampling));
      return Frame(std::move(g));
    }
    case FrameType::kTokenChunk: {
      TokenChunk c;
      ZTSLM_TRY(f.session(&c.session_id));
      ZTSLM_TRY(f.string(&c.text, lim.max_chunk_bytes, "chunk text"));
      ZTSLM_TRY(f.u32(&c.n_tokens, "n_tokens"));
      return Frame(std::move(c));
    }
    case FrameType::kGenerateEnd: {
      GenerateEnd e;
      ZTSLM_TRY(f.session(&e.session_id));
      ZTSLM_TRY(f.u32(&e.prompt_tokens, "prompt_tokens"));
      ZTSLM_TRY(f.u32(&e.completion_tokens, "completion_tokens"));
      ZTSLM_TRY(f.u32(&e.cached_tokens, "cached_tokens"));
      if (e.cached_tokens > e.prompt_tokens) return Status::malformed("generate end cached_tokens exceeds prompt_tokens");
      uint8_t finish = 0;
      ZTSLM_TRY(f.u8(&finish, "finish reason"));
      if (finish > 3) return Status::malformed("generate end finish reason {} unknown", finish);
      e.finish = static_cast<FinishReason>(finish);
      ZTSLM_TRY(f.u64(&e.prefill_us, "prefill_us"));
      ZTSLM_TRY(f.u64(&e.decode_us, "decode_us"));
      return Frame(e);
    }
    case FrameType::kError: {
      Error e;
      ZTSLM_TRY(f.u64(&e.session_id, "session id"));
      ZTSLM_TRY(f.u8(&e.code, "error code"));
      if (e.code == 0 || e.code > static_cast<uint8_t>(StatusCode::kInternal)) {
        return Status::malformed("error code {} unknown", e.code);
      }
      ZTSLM_TRY(f.string(&e.message, lim.max_message_bytes, "error message"));
      for (char c : e.message) {
        if (c < 0x20 || c > 0x7e) return Status::malformed("error message is not printable ascii");
      }
      return Frame(std::move(e));
    }
    case FrameType::kPing: {
      Ping p;
      ZTSLM_TRY(f.u64(&p.nonce, "nonce"));
      return Frame(p);
    }
    case FrameType::kPong: {
      Pong p;
      ZTSLM_TRY(f.u64(&p.nonce, "nonce"));
      return Frame(p);
    }
    case FrameType::kCloseSession: {
      CloseSession c;
      ZTSLM_TRY(f.session(&c.session_id));
      return Frame(c);
    }
    case FrameType::kSessionClosed: {
      SessionClosed c;
      ZTSLM_TRY(f.session(&c.session_id));
      return Frame(c);
    }
    case FrameType::kCancel: {
      Cancel c;
      ZTSLM_TRY(f.session(&c.session_id));
      return Frame(c);
    }
  }
  return Status::malformed("frame type {} unknown", static_cast<int>(type));
}

struct PayloadEncoder {
  ByteWriter& w;
  void operator()(const Hello& h) const {
    w.put_u16_le(h.version);
    w.put_u32_le(h.max_sessions);
    w.put_u32_le(h.n_ctx);
  }
  void operator()(const Ready& r) const {
    w.put_u16_le(r.version);
    w.put_u32_le(r.n_vocab);
    w.put_u32_le(r.n_ctx_train);
    w.put_u32_le(r.n_ctx);
    w.put_u32_le(r.max_sessions);
    w.put_u64_le(r.session_kv_bytes);
    put_string(w, r.lockdown);
  }
  void operator()(const Generate& g) const {
    w.put_u64_le(g.session_id);
    w.put_u8(static_cast<uint8_t>(g.kind));
    if (g.kind == PromptKind::kText) {
      put_string(w, g.text);
    } else if (g.kind == PromptKind::kTokens) {
      w.put_u32_le(static_cast<uint32_t>(g.tokens.size()));
      for (int32_t t : g.tokens) w.put_i32_le(t);
    } else {
      w.put_u32_le(static_cast<uint32_t>(g.messages.size()));
      for (const ChatMessage& m : g.messages) {
        put_string(w, m.role);
        put_string(w, m.content);
      }
    }
    encode_sampling(w, g.sampling);
  }
  void operator()(const TokenChunk& c) const {
    w.put_u64_le(c.session_id);
    put_string(w, c.text);
    w.put_u32_le(c.n_tokens);
  }
  void operator()(const GenerateEnd& e) const {
    w.put_u64_le(e.session_id);
    w.put_u32_le(e.prompt_tokens);
    w.put_u32_le(e.completion_tokens);
    w.put_u32_le(e.cached_tokens);
    w.put_u8(static_cast<uint8_t>(e.finish));
    w.put_u64_le(e.prefill_us);
    w.put_u64_le(e.decode_us);
  }
  void operator()(const Error& e) const {
    w.put_u64_le(e.session_id);
    w.put_u8(e.code);
    put_string(w, e.message);
  }
  void operator()(const Ping& p) const { w.put_u64_le(p.nonce); }
  void operator()(const Pong& p) const { w.put_u64_le(p.nonce); }
  void operator()(const CloseSession& c) const { w.put_u64_le(c.session_id); }
  void operator()(const SessionClosed& c) const { w.put_u64_le(c.session_id); }
  void operator()(const Cancel& c) const { w.put_u64_le(c.session_id); }
};

}  // namespace

std::string_view frame_type_name(FrameType t) {
  switch (t) {
    case FrameType::kHello: return "hello";
    case FrameType::kReady: return "ready";
    case FrameType::kGenerate: return "generate";
    case FrameType::kTokenChunk: return "token_chunk";
    case FrameType::kGenerateEnd: return "generate_end";
    case FrameType::kError: return "error";
    case FrameType::kPing: return "ping";
    case FrameType::kPong: return "pong";
    case FrameType::kCloseSession: return "close_session";
    case FrameType::kSessionClosed: return "session_closed";
    case FrameType::kCancel: return "cancel";
  }
  return "unknown";
}

FrameType type_of(const Frame& f) {
  // The variant's alternatives are in FrameType order, starting at 1.
  return static_cast<FrameType>(f.index() + 1);
}

Result<std::vector<std::byte>> encode(const Frame& frame, const Limits& limits) {
  ByteWriter w;
  w.put_u8(kProtocolVersion);
  w.put_u8(static_cast<uint8_t>(type_of(frame)));
  w.put_u16_le(0);
  w.put_u32_le(0);  // payload size, patched below
  std::visit(PayloadEncoder{w}, frame);
  std::vector<std::byte> out = w.take();
  const size_t payload = out.size() - kHeaderBytes;
  if (out.size() > limits.max_frame_bytes) {
    return Status::invalid_argument("{} frame of {} bytes exceeds limit {}", frame_type_name(type_of(frame)),
                                    out.size(), limits.max_frame_bytes);
  }
  const uint32_t n = static_cast<uint32_t>(payload);
  std::memcpy(out.data() + 4, &n, sizeof n);
  // A sender never emits what its peer must reject: the same validation runs on the way out.
  auto check = decode(out, limits);
  if (!check.has_value()) {
    return Status::invalid_argument("refusing to send invalid {} frame: {}", frame_type_name(type_of(frame)),
                                    check.error().message());
  }
  return out;
}

Result<Frame> decode(std::span<const std::byte> datagram, const Limits& limits) {
  if (datagram.size() > limits.max_frame_bytes) {
    return Status::resource_exhausted("frame of {} bytes exceeds limit {}", datagram.size(), limits.max_frame_bytes);
  }
  ByteReader r(datagram);
  uint8_t version = 0, type = 0;
  uint16_t reserved = 0;
  uint32_t n_payload = 0;
  if (!r.read_u8(&version) || !r.read_u8(&type) || !r.read_u16_le(&reserved) || !r.read_u32_le(&n_payload)) {
    return Status::malformed("frame of {} bytes is shorter than its header", datagram.size());
  }
  if (version != kProtocolVersion) return Status::malformed("frame version {} is not {}", version, kProtocolVersion);
  if (reserved != 0) return Status::malformed("frame reserved bits are set");
  if (n_payload != r.size()) return Status::malformed("frame payload length {} but {} bytes follow", n_payload, r.size());
  if (type < static_cast<uint8_t>(FrameType::kHello) || type > static_cast<uint8_t>(FrameType::kCancel)) {
    return Status::malformed("frame type {} unknown", type);
  }
  Fields f(r);
  ZTSLM_ASSIGN_OR_RETURN(Frame frame, decode_payload(static_cast<FrameType>(type), f, limits));
  ZTSLM_TRY(f.end());
  return frame;
}

}  // namespace ztslm::worker::protocol
