#include "worker/protocol/endpoint.h"

#include <algorithm>

namespace ztslm::worker::protocol {
namespace {

using StateMask = uint8_t;
constexpr StateMask bit(State s) { return static_cast<StateMask>(1u << static_cast<unsigned>(s)); }
constexpr StateMask kIdleOrGenerating = bit(State::kIdle) | bit(State::kGenerating);

// Which frames each side may send in which of the receiver's states (STYLE.md E7). Session ids
// and nonces are checked in on_receive / on_send.
struct Rule {
  FrameType type;
  StateMask allowed_in;
  bool once;
};
// clang-format off
constexpr Rule kFromGateway[] = {  // states of the worker endpoint
    {FrameType::kHello,        bit(State::kAwaitHello), /*once=*/true},
    {FrameType::kGenerate,     bit(State::kIdle),       false},
    {FrameType::kPing,         kIdleOrGenerating,       false},
    {FrameType::kCancel,       kIdleOrGenerating,       false},  // Idle: the generation just ended
    {FrameType::kCloseSession, kIdleOrGenerating,       false},
};
constexpr Rule kFromWorker[] = {  // states of the gateway endpoint
    {FrameType::kReady,         bit(State::kAwaitReady),                      /*once=*/true},
    {FrameType::kTokenChunk,    bit(State::kGenerating),                      false},
    {FrameType::kGenerateEnd,   bit(State::kGenerating),                      false},
    {FrameType::kError,         bit(State::kAwaitReady) | kIdleOrGenerating,  false},
    {FrameType::kPong,          kIdleOrGenerating,                            false},
    {FrameType::kSessionClosed, kIdleOrGenerating,                            false},
};
// What each side may send, in its own endpoint's states.
constexpr Rule kGatewaySends[] = {
    {FrameType::kHello,        bit(State::kStart),      true},
    {FrameType::kGenerate,     bit(State::kIdle),       false},
    {FrameType::kPing,         kIdleOrGenerating,       false},
    {FrameType::kCancel,       bit(State::kGenerating), false},
    {FrameType::kCloseSession, kIdleOrGenerating,       false},
};
constexpr Rule kWorkerSends[] = {
    {FrameType::kReady,         bit(State::kIdle),                            true},
    {FrameType::kTokenChunk,    bit(State::kGenerating),                      false},
    {FrameType::kGenerateEnd,   bit(State::kGenerating),                      false},
    {FrameType::kError,         bit(State::kAwaitHello) | kIdleOrGenerating,  false},
    {FrameType::kPong,          kIdleOrGenerating,                            false},
    {FrameType::kSessionClosed, kIdleOrGenerating,                            false},
};
// clang-format on

template <size_t N>
const Rule* find_rule(const Rule (&table)[N], FrameType t) {
  for (const Rule& r : table) {
    if (r.type == t) return &r;
  }
  return nullptr;
}

template <size_t N>
Status check_rule(const Rule (&table)[N], FrameType t, State s, const char* who) {
  const Rule* r = find_rule(table, t);
  if (r == nullptr) return Status::failed_precondition("protocol violation: {} may never send {}", who, frame_type_name(t));
  if ((r->allowed_in & bit(s)) == 0) {
    return Status::failed_precondition("protocol violation: {} sent {} in state {}", who, frame_type_name(t), state_name(s));
  }
  return Status();
}

bool take(std::vector<uint64_t>& v, uint64_t id) {
  auto it = std::find(v.begin(), v.end(), id);
  if (it == v.end()) return false;
  v.erase(it);
  return true;
}
bool contains(const std::vector<uint64_t>& v, uint64_t id) { return std::find(v.begin(), v.end(), id) != v.end(); }

Status session_violation(const char* who, FrameType t, uint64_t got, uint64_t want) {
  return Status::failed_precondition("protocol violation: {} sent {} for session {} (expected {})", who,
                                     frame_type_name(t), got, want);
}

}  // namespace

std::string_view state_name(State s) {
  switch (s) {
    case State::kStart: return "start";
    case State::kAwaitHello: return "await_hello";
    case State::kAwaitReady: return "await_ready";
    case State::kIdle: return "idle";
    case State::kGenerating: return "generating";
    case State::kClosed: return "closed";
  }
  return "unknown";
}

Result<Frame> GatewayEndpoint::on_receive(std::span<const std::byte> datagram) {
  if (state_ == State::kClosed) return Status::failed_precondition("protocol violation: worker endpoint is closed");
  auto decoded = decode(datagram, limits_);
  if (!decoded.has_value()) return violation(decoded.error());
  Frame& f = *decoded;
  const FrameType t = type_of(f);
  if (Status s = check_rule(kFromWorker, t, state_, "worker"); !s.ok()) return violation(s);
  switch (t) {
    case FrameType::kReady:
      state_ = State::kIdle;
      break;
    case FrameType::kTokenChunk:
      if (std::get<TokenChunk>(f).session_id != active_session_) {
        return violation(session_violation("worker", t, std::get<TokenChunk>(f).session_id, active_session_));
      }
      break;
    case FrameType::kGenerateEnd:
      if (std::get<GenerateEnd>(f).session_id != active_session_) {
        return violation(session_violation("worker", t, std::get<GenerateEnd>(f).session_id, active_session_));
      }
      state_ = State::kIdle;
      active_session_ = 0;
      break;
    case FrameType::kError: {
      const uint64_t id = std::get<Error>(f).session_id;
      if (id == 0) {
        state_ = State::kClosed;  // the worker's last words: it exits after this
      } else if (state_ == State::kGenerating && id == active_session_) {
        state_ = State::kIdle;
        active_session_ = 0;
      } else {
        return violation(session_violation("worker", t, id, active_session_));
      }
      break;
    }
    case FrameType::kPong:
      if (!ping_outstanding_ || std::get<Pong>(f).nonce != ping_nonce_) {
        return violation(Status::failed_precondition("protocol violation: worker sent an unsolicited pong"));
      }
      ping_outstanding_ = false;
      break;
    case FrameType::kSessionClosed:
      if (!take(closing_, std::get<SessionClosed>(f).session_id)) {
        return violation(Status::failed_precondition("protocol violation: worker closed a session it was not asked to"));
      }
      break;
    default:
      return violation(Status::failed_precondition("protocol violation: unexpected frame"));
  }
  return decoded;
}

Result<std::vector<std::byte>> GatewayEndpoint::on_send(const Frame& f) {
  if (state_ == State::kClosed) return Status::failed_precondition("worker endpoint is closed");
  const FrameType t = type_of(f);
  ZTSLM_TRY(check_rule(kGatewaySends, t, state_, "gateway"));
  ZTSLM_ASSIGN_OR_RETURN(std::vector<std::byte> bytes, encode(f, limits_));
  switch (t) {
    case FrameType::kHello:
      state_ = State::kAwaitReady;
      break;
    case FrameType::kGenerate: {
      const uint64_t id = std::get<Generate>(f).session_id;
      if (contains(closing_, id)) return Status::failed_precondition("session {} is being closed", id);
      state_ = State::kGenerating;
      active_session_ = id;
      break;
    }
    case FrameType::kPing:
      if (ping_outstanding_) return Status::failed_precondition("a ping is already outstanding");
      ping_outstanding_ = true;
      ping_nonce_ = std::get<Ping>(f).nonce;
      break;
    case FrameType::kCancel:
      if (std::get<Cancel>(f).session_id != active_session_) {
        return Status::failed_precondition("cancel of session {} which is not generating", std::get<Cancel>(f).session_id);
      }
      break;
    case FrameType::kCloseSession: {
      const uint64_t id = std::get<CloseSession>(f).session_id;
      if (id == active_session_ || contains(closing_, id)) {
        return Status::failed_precondition("session {} cannot be closed now", id);
      }
      if (closing_.size() >= 65536) return Status::resource_exhausted("too many sessions closing");
      closing_.push_back(id);
      break;
    }
    default:
      return Status::failed_precondition("gateway cannot send {}", frame_type_name(t));
  }
  return bytes;
}

Result<Frame> WorkerEndpoint::on_receive(std::span<const std::byte> datagram) {
  if (state_ == State::kClosed) return Status::failed_precondition("protocol violation: gateway endpoint is closed");
  auto decoded = decode(datagram, limits_);
  if (!decoded.has_value()) return violation(decoded.error());
  Frame& f = *decoded;
  const FrameType t = type_of(f);
  if (Status s = check_rule(kFromGateway, t, state_, "gateway"); !s.ok()) return violation(s);
  switch (t) {
    case FrameType::kHello:
      state_ = State::kIdle;
      break;
    case FrameType::kGenerate: {
      const uint64_t id = std::get<Generate>(f).session_id;
      if (contains(close_owed_, id)) return violation(session_violation("gateway", t, id, 0));
      state_ = State::kGenerating;
      active_session_ = id;
      break;
    }
    case FrameType::kPing:
      if (pong_owed_) return violation(Status::failed_precondition("protocol violation: gateway sent a second ping"));
      pong_owed_ = true;
      pong_nonce_ = std::get<Ping>(f).nonce;
      break;
    case FrameType::kCancel: {
      // In Idle only the generation that just ended may be cancelled (the frames crossed).
      const uint64_t id = std::get<Cancel>(f).session_id;
      const uint64_t want = state_ == State::kGenerating ? active_session_ : last_session_;
      if (id != want) return violation(session_violation("gateway", t, id, want));
      break;
    }
    case FrameType::kCloseSession: {
      const uint64_t id = std::get<CloseSession>(f).session_id;
      if (id == active_session_ || contains(close_owed_, id) || close_owed_.size() >= 65536) {
        return violation(session_violation("gateway", t, id, 0));
      }
      close_owed_.push_back(id);
      break;
    }
    default:
      return violation(Status::failed_precondition("protocol violation: unexpected frame"));
  }
  return decoded;
}

Result<std::vector<std::byte>> WorkerEndpoint::on_send(const Frame& f) {
  if (state_ == State::kClosed) return Status::failed_precondition("gateway endpoint is closed");
  const FrameType t = type_of(f);
  ZTSLM_TRY(check_rule(kWorkerSends, t, state_, "worker"));
  if (t != FrameType::kReady && t != FrameType::kError && !ready_sent_) {
    return Status::failed_precondition("worker must send ready first");
  }
  ZTSLM_ASSIGN_OR_RETURN(std::vector<std::byte> bytes, encode(f, limits_));
  switch (t) {
    case FrameType::kReady:
      if (ready_sent_) return Status::failed_precondition("ready already sent");
      ready_sent_ = true;
      break;
    case FrameType::kTokenChunk:
      if (std::get<TokenChunk>(f).session_id != active_session_) return Status::failed_precondition("chunk for another session");
      break;
    case FrameType::kGenerateEnd:
      if (std::get<GenerateEnd>(f).session_id != active_session_) return Status::failed_precondition("end for another session");
      last_session_ = active_session_;
      active_session_ = 0;
      state_ = State::kIdle;
      break;
    case FrameType::kError: {
      const uint64_t id = std::get<Error>(f).session_id;
      if (id == 0) {
        state_ = State::kClosed;
      } else if (state_ == State::kGenerating && id == active_session_) {
        last_session_ = active_session_;
        active_session_ = 0;
        state_ = State::kIdle;
      } else {
        return Status::failed_precondition("error for session {} which is not generating", id);
      }
      break;
    }
    case FrameType::kPong:
      if (!pong_owed_ || std::get<Pong>(f).nonce != pong_nonce_) return Status::failed_precondition("no ping to answer");
      pong_owed_ = false;
      break;
    case FrameType::kSessionClosed:
      if (!take(close_owed_, std::get<SessionClosed>(f).session_id)) return Status::failed_precondition("session not closing");
      break;
    default:
      return Status::failed_precondition("worker cannot send {}", frame_type_name(t));
  }
  return bytes;
}

}  // namespace ztslm::worker::protocol
