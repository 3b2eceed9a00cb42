// libFuzzer target: frames sent by the worker (read by the gateway).
// Input: one mode byte, then datagrams, each a u16 little-endian length and that many bytes.
// Properties: the decoder never crashes; every accepted frame re-encodes and decodes equal
// (round trip); a frame the endpoint accepts is one the peer may send in that state; after the
// first rejection the endpoint is closed and rejects every later frame.
#include <cstdint>
#include <algorithm>
#include <vector>

#include "core/byte_reader.h"
#include "core/check.h"
#include "worker/protocol/endpoint.h"
#include "worker/protocol/frames.h"

using namespace ztslm::worker::protocol;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ztslm::ByteReader in(ztslm::as_bytes(data, size));
  uint8_t mode = 0;
  if (!in.read_u8(&mode)) return 0;
  GatewayEndpoint ep;
  // Bring the gateway to the state the first input byte selects: awaiting Ready, or generating.
  ZTSLM_CHECK(ep.on_send(Hello{kProtocolVersion, 4, 256}).has_value());
  if (mode & 1) {
    ZTSLM_CHECK(ep.on_receive(*encode(Ready{kProtocolVersion, 100, 256, 256, 4, 4096, ""})).has_value());
    Generate g;
    g.session_id = 1;
    g.text = "x";
    ZTSLM_CHECK(ep.on_send(g).has_value());
    if (mode & 2) ZTSLM_CHECK(ep.on_send(Ping{7}).has_value());
    if (mode & 4) ZTSLM_CHECK(ep.on_send(CloseSession{2}).has_value());
  }
  bool rejected = false;
  uint16_t n = 0;
  while (in.read_u16_le(&n)) {
    std::span<const std::byte> datagram;
    if (!in.read_bytes(n, &datagram)) break;
    const State before = ep.state();
    auto frame = ep.on_receive(datagram);
    if (!frame.has_value()) {
      rejected = true;
      ZTSLM_CHECK(ep.state() == State::kClosed);
      continue;
    }
    ZTSLM_CHECK(!rejected);  // nothing is accepted after a violation
    ZTSLM_CHECK(before != State::kClosed);
    auto bytes = encode(*frame);
    ZTSLM_CHECK(bytes.has_value());
    auto again = decode(*bytes);
    ZTSLM_CHECK(again.has_value() && *again == *frame);
    // The codec is canonical: the accepted datagram is exactly the re-encoding.
    ZTSLM_CHECK(bytes->size() == datagram.size() &&
                std::equal(bytes->begin(), bytes->end(), datagram.begin()));
  }
  return 0;
}
