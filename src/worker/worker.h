// The worker process's main loop (`ztslm worker --fd N --model-fd M`). It owns the model and
// nothing else: no keys, tokens, policy or filesystem. Start-up order:
//   1. check the model fd is a sealed memfd, map it read-only, load the model and vocabulary
//   2. close every inherited descriptor but the socket and stdio
//   3. lock down (sandbox/lockdown.h): from here no file, socket or exec is possible
//   4. start the thread pool, then read the first frame (Hello) and answer Ready
// Then it serves frames (protocol/endpoint.h) with one engine Session per session id, wiped on
// CloseSession and at exit. A protocol violation ends the worker (exit code 3); the gateway
// closing the socket ends it cleanly (exit code 0).
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"
#include "sandbox/lockdown.h"
#include "worker/protocol/frames.h"

namespace ztslm::worker {

struct WorkerOptions {
  int socket_fd = -1;                 // SOCK_SEQPACKET end shared with the gateway
  int model_fd = -1;                  // sealed memfd with the verified GGUF bytes
  bool require_sealed_model = true;   // tests of the loop alone may pass a plain file
  int n_threads = 1;
  std::string chat_format;            // "": the model's template, else chatml
  uint32_t max_sessions = 64;         // upper bound on what Hello may ask for
  uint32_t max_n_ctx = 1u << 16;      // upper bound on what Hello may ask for
  sandbox::LockdownOptions lockdown;
  protocol::Limits limits;
};

// Exit codes of run_worker.
inline constexpr int kExitPeerClosed = 0;   // the gateway closed the socket
inline constexpr int kExitStartup = 1;      // model or lock-down failed (an Error frame was sent)
inline constexpr int kExitTransport = 2;    // socket error
inline constexpr int kExitViolation = 3;    // the gateway broke the protocol

// Runs the worker until the gateway closes the socket or breaks the protocol; returns the exit
// code. Must be called in a single-threaded process (lock-down requires it).
int run_worker(const WorkerOptions& opt);

}  // namespace ztslm::worker
