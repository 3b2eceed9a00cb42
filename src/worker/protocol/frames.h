// Gateway <-> worker frames (protocol version 1). One frame is one SOCK_SEQPACKET datagram:
//
//   frame   = header payload
//   header  = u8 version (1) | u8 type | u16 reserved (0) | u32 payload_bytes   (little-endian)
//   payload = exactly payload_bytes bytes, the fields of `type` in the order below
//   string  = u32 length | bytes (UTF-8, validated; each field has its own bound)
//   i32s    = u32 count | count * i32
//
// Every field is validated when decoded (bounds, UTF-8, finite floats, enum ranges, non-zero
// session ids, reserved bits zero, no trailing bytes); which frames are legal when is the job of
// protocol/endpoint.h. Both directions are untrusted: see README.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/result.h"

namespace ztslm::worker::protocol {

inline constexpr uint8_t kProtocolVersion = 1;
inline constexpr size_t kHeaderBytes = 8;

struct Limits {
  size_t max_frame_bytes = size_t{1} << 20;   // header + payload; prompts above this are refused
  size_t max_text_bytes = size_t{768} << 10;  // prompt text, sum of chat message contents
  size_t max_prompt_tokens = size_t{1} << 17; // token-id prompts (4 bytes each)
  size_t max_messages = 512;                  // chat messages per request
  size_t max_role_bytes = 64;                 // "system", "user", "assistant", "tool"
  size_t max_stop = 16;                       // stop strings (OpenAI allows 4)
  size_t max_stop_bytes = 256;                // one stop string
  size_t max_logit_bias = 1024;               // OpenAI allows 300
  size_t max_chunk_bytes = size_t{64} << 10;  // one TokenChunk's text
  size_t max_message_bytes = 256;             // Error text
  size_t max_report_bytes = 1024;             // Ready's lock-down report
  uint64_t max_session_kv_bytes = uint64_t{16} << 30;  // Ready: engine::SessionOptions::max_kv_bytes
};

enum class FrameType : uint8_t {
  kHello = 1,          // gateway -> worker, first frame
  kReady = 2,          // worker -> gateway, answer to Hello
  kGenerate = 3,       // gateway -> worker
  kTokenChunk = 4,     // worker -> gateway
  kGenerateEnd = 5,    // worker -> gateway
  kError = 6,          // worker -> gateway
  kPing = 7,           // gateway -> worker
  kPong = 8,           // worker -> gateway
  kCloseSession = 9,   // gateway -> worker
  kSessionClosed = 10, // worker -> gateway
  kCancel = 11,        // gateway -> worker
};
std::string_view frame_type_name(FrameType t);

struct Hello {
  uint16_t version = kProtocolVersion;
  uint32_t max_sessions = 0;  // sessions the worker may hold at once (1..65536)
  uint32_t n_ctx = 0;         // context cells per session (1..2^20)
  friend bool operator==(const Hello&, const Hello&) = default;
};

struct Ready {
  uint16_t version = kProtocolVersion;
  uint32_t n_vocab = 0;
  uint32_t n_ctx_train = 0;
  uint32_t n_ctx = 0;          // per session, as granted
  uint32_t max_sessions = 0;
  // KV cache bytes of one session at the granted n_ctx (every session of a worker has the same);
  // the gateway counts it against sessions.max_bytes. [1, Limits::max_session_kv_bytes].
  uint64_t session_kv_bytes = 0;
  std::string lockdown;        // sandbox::LockdownReport::to_string()
  friend bool operator==(const Ready&, const Ready&) = default;
};

struct ChatMessage {
  std::string role;
  std::string content;
  friend bool operator==(const ChatMessage&, const ChatMessage&) = default;
};

struct LogitBias {
  int32_t token = 0;
  float bias = 0;  // finite, or -inf to ban
  friend bool operator==(const LogitBias&, const LogitBias&) = default;
};

struct Sampling {
  float temperature = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int32_t penalty_last_n = 64;
  uint32_t seed = 0xFFFFFFFFu;  // 0xFFFFFFFF: the worker draws one
  uint32_t max_tokens = 256;
  std::vector<std::string> stop;
  std::vector<LogitBias> logit_bias;
  friend bool operator==(const Sampling&, const Sampling&) = default;
};

enum class PromptKind : uint8_t { kText = 0, kTokens = 1, kChat = 2 };

struct Generate {
  uint64_t session_id = 0;  // non-zero; a known id continues that session's context
  PromptKind kind = PromptKind::kText;
  std::string text;                   // kText: tokenised with BOS, special-token text stays text
  std::vector<int32_t> tokens;        // kTokens
  std::vector<ChatMessage> messages;  // kChat: the model's chat template, generation prompt added
  Sampling sampling;
  friend bool operator==(const Generate&, const Generate&) = default;
};

struct TokenChunk {
  uint64_t session_id = 0;
  std::string text;      // whole UTF-8 characters, after stop-string hold-back
  uint32_t n_tokens = 0; // tokens generated since the previous chunk
  friend bool operator==(const TokenChunk&, const TokenChunk&) = default;
};

enum class FinishReason : uint8_t { kStop = 0, kLength = 1, kCancelled = 2, kContextFull = 3 };

struct GenerateEnd {
  uint64_t session_id = 0;
  uint32_t prompt_tokens = 0;
  uint32_t completion_tokens = 0;
  uint32_t cached_tokens = 0;  // prompt tokens reused from the session's context
  FinishReason finish = FinishReason::kStop;
  uint64_t prefill_us = 0;
  uint64_t decode_us = 0;
  friend bool operator==(const GenerateEnd&, const GenerateEnd&) = default;
};

struct Error {
  uint64_t session_id = 0;  // 0: the worker itself (its last frame)
  uint8_t code = 0;         // a StatusCode other than kOk
  std::string message;      // printable ASCII, no prompt text
  friend bool operator==(const Error&, const Error&) = default;
};

struct Ping {
  uint64_t nonce = 0;
  friend bool operator==(const Ping&, const Ping&) = default;
};
struct Pong {
  uint64_t nonce = 0;
  friend bool operator==(const Pong&, const Pong&) = default;
};
struct CloseSession {
  uint64_t session_id = 0;
  friend bool operator==(const CloseSession&, const CloseSession&) = default;
};
struct SessionClosed {
  uint64_t session_id = 0;
  friend bool operator==(const SessionClosed&, const SessionClosed&) = default;
};
struct Cancel {
  uint64_t session_id = 0;
  friend bool operator==(const Cancel&, const Cancel&) = default;
};

using Frame = std::variant<Hello, Ready, Generate, TokenChunk, GenerateEnd, Error, Ping, Pong, CloseSession,
                           SessionClosed, Cancel>;

FrameType type_of(const Frame& f);

// Encodes `frame` (header included). kInvalidArgument when a field is out of its bound in
// `limits` or invalid (a sender bug: the frame is never sent).
Result<std::vector<std::byte>> encode(const Frame& frame, const Limits& limits = Limits());

// Decodes one whole datagram. kMalformed for any defect (the message names the field),
// kResourceExhausted past `limits`.
Result<Frame> decode(std::span<const std::byte> datagram, const Limits& limits = Limits());

}  // namespace ztslm::worker::protocol
