// A worker that breaks the protocol, for the supervisor's tests. The test executable doubles as
// it: WorkerBackend execs /proc/self/exe of the test in place of `ztslm worker` (same arguments)
// with ZTSLM_FAKE_WORKER_MODE set, and a static initializer runs the fake before gtest starts.
// It answers Hello with a valid Ready, then answers the first Generate with bytes that are not a
// frame ("malformed"), or with a well-formed TokenChunk for a session that is not generating
// ("wrong_session"), or with a whole answer (TokenChunk "complete answer", GenerateEnd) after
// which it exits at once, before the CloseSession of that request ("die_after_end").
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "worker/protocol/endpoint.h"
#include "worker/protocol/transport.h"

namespace {

namespace proto = ztslm::worker::protocol;

// The value after `--fd` in this process's command line, or -1.
int fd_argument() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  size_t start = 0;
  for (size_t i = 0; i < cmdline.size(); ++i) {
    if (cmdline[i] == '\0') {
      args.push_back(cmdline.substr(start, i - start));
      start = i + 1;
    }
  }
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--fd") return std::atoi(args[i + 1].c_str());
  }
  return -1;
}

int run_fake_worker(const std::string& mode) {
  const int fd = fd_argument();
  if (fd < 0) return 2;
  proto::WorkerEndpoint ep;
  std::vector<std::byte> buf;
  for (;;) {
    auto got = proto::recv_datagram(fd, buf, ep.limits().max_frame_bytes, /*wait=*/true);
    if (!got.has_value()) return 0;
    auto frame = ep.on_receive(**got);
    if (!frame.has_value()) return 3;
    switch (proto::type_of(*frame)) {
      case proto::FrameType::kHello: {
        proto::Ready r;
        r.n_vocab = 32000;
        r.n_ctx_train = 512;
        r.n_ctx = 256;
        r.max_sessions = 4;
        r.session_kv_bytes = 1 << 20;
        r.lockdown = "fake worker: no lockdown";
        auto bytes = ep.on_send(r);
        if (!bytes.has_value() || !proto::send_datagram(fd, *bytes).ok()) return 2;
        break;
      }
      case proto::FrameType::kPing: {
        auto bytes = ep.on_send(proto::Pong{std::get<proto::Ping>(*frame).nonce});
        if (!bytes.has_value() || !proto::send_datagram(fd, *bytes).ok()) return 2;
        break;
      }
      case proto::FrameType::kGenerate: {
        if (mode == "die_after_end") {
          const uint64_t sid = std::get<proto::Generate>(*frame).session_id;
          for (const proto::Frame& f : {proto::Frame(proto::TokenChunk{sid, "complete ", 1}),
                                        proto::Frame(proto::TokenChunk{sid, "answer", 1}),
                                        proto::Frame(proto::GenerateEnd{sid, 3, 2, 0, proto::FinishReason::kStop, 10, 20})}) {
            auto bytes = ep.on_send(f);
            if (!bytes.has_value() || !proto::send_datagram(fd, *bytes).ok()) return 2;
          }
          return 0;
        }
        std::vector<std::byte> bad;
        if (mode == "wrong_session") {
          auto bytes = proto::encode(proto::TokenChunk{std::get<proto::Generate>(*frame).session_id + 1000, "x", 1});
          if (!bytes.has_value()) return 2;
          bad = *bytes;
        } else {
          // Version 9, type 200, a payload length past the datagram.
          bad = {std::byte{9}, std::byte{200}, std::byte{0}, std::byte{0}, std::byte{0xff}, std::byte{0xff},
                 std::byte{0}, std::byte{0}, std::byte{1}};
        }
        (void)proto::send_datagram(fd, bad);
        // Stay alive: the supervisor must end this peer itself.
        for (;;) {
          auto more = proto::recv_datagram(fd, buf, ep.limits().max_frame_bytes, /*wait=*/true);
          if (!more.has_value()) return 0;
        }
      }
      default:
        break;
    }
  }
}

// Runs before main(): in a process started as a fake worker, the fake runs and exits.
[[maybe_unused]] const bool kIsFakeWorker = [] {
  const char* mode = std::getenv("ZTSLM_FAKE_WORKER_MODE");
  if (mode == nullptr) return false;
  ::_exit(run_fake_worker(mode));
}();

}  // namespace
