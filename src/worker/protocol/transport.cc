#include "worker/protocol/transport.h"

#include <errno.h>
#include <sys/socket.h>

#include <cstring>

namespace ztslm::worker::protocol {

Status send_datagram(int fd, std::span<const std::byte> datagram) {
  for (;;) {
    const ssize_t n = ::send(fd, datagram.data(), datagram.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      if (static_cast<size_t>(n) != datagram.size()) return Status::internal("short send of a frame");
      return Status();
    }
    if (errno == EINTR) continue;
    if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) return Status::unavailable("peer closed the socket");
    return Status::internal("send failed: {}", std::strerror(errno));
  }
}

Result<std::optional<std::span<const std::byte>>> recv_datagram(int fd, std::vector<std::byte>& buf,
                                                                  size_t max_bytes, bool wait) {
  // One spare byte: a datagram that fills it is over the limit even without MSG_TRUNC.
  if (buf.size() != max_bytes + 1) buf.resize(max_bytes + 1);
  for (;;) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_TRUNC | (wait ? 0 : MSG_DONTWAIT));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (!wait && (errno == EAGAIN || errno == EWOULDBLOCK)) return std::optional<std::span<const std::byte>>();
      if (errno == ECONNRESET || errno == ENOTCONN) return Status::unavailable("peer closed the socket");
      return Status::internal("recv failed: {}", std::strerror(errno));
    }
    // A frame is never empty (8-byte header), so 0 is the peer's end of stream.
    if (n == 0) return Status::unavailable("peer closed the socket");
    if (static_cast<size_t>(n) > max_bytes) {
      return Status::resource_exhausted("datagram of {} bytes exceeds limit {}", n, max_bytes);
    }
    return std::optional<std::span<const std::byte>>(std::span<const std::byte>(buf.data(), static_cast<size_t>(n)));
  }
}

}  // namespace ztslm::worker::protocol
