// Sending and receiving whole frames on a SOCK_SEQPACKET socket (one frame per datagram).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "core/result.h"

namespace ztslm::worker::protocol {

// Sends one datagram. kUnavailable when the peer is gone (EPIPE/ECONNRESET; no SIGPIPE), kInternal
// for other errors.
Status send_datagram(int fd, std::span<const std::byte> datagram);

// Receives one datagram into `buf` (resized to `max_bytes` once) and returns a view of it.
// `wait`: block until one arrives; otherwise std::nullopt when none is queued.
// kUnavailable when the peer closed its end, kResourceExhausted for a datagram larger than
// `max_bytes` (it is consumed: the caller must end the peer), kInternal for other errors.
Result<std::optional<std::span<const std::byte>>> recv_datagram(int fd, std::vector<std::byte>& buf,
                                                                  size_t max_bytes, bool wait);

}  // namespace ztslm::worker::protocol
