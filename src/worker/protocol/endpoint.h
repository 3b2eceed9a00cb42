// The two protocol state machines. Each side feeds every datagram it reads to its endpoint,
// which decodes it and accepts it only if the frame type is one the peer may send in the current
// state (tables kFromGateway / kFromWorker in endpoint.cc, STYLE.md E7), and its session id or
// nonce matches what is outstanding. Anything else is a protocol violation: the caller ends the
// peer (the gateway kills the worker; the worker exits) and audits it. No recovery.
//
// Each side also passes what it sends through on_send(), which enforces its own half of the
// protocol (a local bug is caught before the peer would see it).
//
//   gateway                                 worker
//   Hello                 ------------->    (after lock-down)
//                         <-------------    Ready
//   Generate{session}     ------------->
//                         <-------------    TokenChunk*            (Ping/Pong, Cancel,
//                         <-------------    GenerateEnd | Error     CloseSession of other
//   CloseSession{session} ------------->                            sessions interleave)
//                         <-------------    SessionClosed
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/result.h"
#include "worker/protocol/frames.h"

namespace ztslm::worker::protocol {

enum class State : uint8_t {
  kStart = 0,       // gateway: Hello not sent yet
  kAwaitHello = 1,  // worker: waiting for Hello
  kAwaitReady = 2,  // gateway: Hello sent
  kIdle = 3,        // no generation in flight
  kGenerating = 4,  // one generation in flight (active_session())
  kClosed = 5,      // a violation happened; nothing more is accepted
};
std::string_view state_name(State s);

// Base with the common bookkeeping; not used directly.
class Endpoint {
 public:
  State state() const { return state_; }
  uint64_t active_session() const { return active_session_; }
  const Limits& limits() const { return limits_; }

 protected:
  explicit Endpoint(State initial, const Limits& limits) : state_(initial), limits_(limits) {}
  // Marks the endpoint closed and returns `s` (kMalformed / kFailedPrecondition).
  Status violation(Status s) {
    state_ = State::kClosed;
    return s;
  }
  State state_;
  Limits limits_;
  uint64_t active_session_ = 0;
};

// The gateway's view of one worker.
class GatewayEndpoint final : public Endpoint {
 public:
  explicit GatewayEndpoint(const Limits& limits = Limits()) : Endpoint(State::kStart, limits) {}
  // Decodes a datagram from the worker and checks it against the state. On error the endpoint is
  // closed and the worker must be ended: kMalformed (bad bytes), kFailedPrecondition (a frame not
  // allowed now: "protocol violation: ...").
  Result<Frame> on_receive(std::span<const std::byte> datagram);
  // Checks and records a frame the gateway is about to send, and encodes it.
  // kFailedPrecondition when the gateway may not send it now (a gateway bug).
  Result<std::vector<std::byte>> on_send(const Frame& frame);
  bool ping_outstanding() const { return ping_outstanding_; }

 private:
  bool ping_outstanding_ = false;
  uint64_t ping_nonce_ = 0;
  std::vector<uint64_t> closing_;  // CloseSession sent, SessionClosed not yet received
};

// The worker's view of the gateway.
class WorkerEndpoint final : public Endpoint {
 public:
  explicit WorkerEndpoint(const Limits& limits = Limits()) : Endpoint(State::kAwaitHello, limits) {}
  Result<Frame> on_receive(std::span<const std::byte> datagram);
  Result<std::vector<std::byte>> on_send(const Frame& frame);

 private:
  bool pong_owed_ = false;
  bool ready_sent_ = false;
  uint64_t pong_nonce_ = 0;
  uint64_t last_session_ = 0;  // the last generation that ended (a crossing Cancel names it)
  std::vector<uint64_t> close_owed_;
};

}  // namespace ztslm::worker::protocol
