// Reading audit log files back: a bounded line reader over a file descriptor, whole-file
// verification and `tail -f`. The file is untrusted (anyone with write access may have edited
// it): lines longer than ParseLimits::max_line_bytes are an error, never an allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "audit/chain.h"
#include "core/result.h"

namespace ztslm::audit {

// Reads '\n'-terminated lines from a file, holding at most `max_line_bytes` + one read chunk.
class LineReader final {
 public:
  enum class Next { kLine, kEnd, kTooLong };

  // Opens `path` read-only (kNotFound when absent).
  static Result<LineReader> open(const std::string& path, size_t max_line_bytes);
  ~LineReader();
  LineReader(LineReader&& other) noexcept;
  LineReader& operator=(LineReader&&) = delete;
  LineReader(const LineReader&) = delete;

  // kLine: `*line` is the next complete line (without '\n'), valid until the next call.
  // kEnd: no complete line is left; partial() holds the bytes read after the last '\n'.
  // kTooLong: a line exceeds the limit (the reader is then unusable).
  // A later call after kEnd reads what was appended since (for tail -f).
  Result<Next> next(std::string_view* line);
  size_t partial() const { return buf_.size() - pos_; }
  // Offset of the byte after the last line returned.
  uint64_t offset() const { return consumed_; }
  // Current size of the file (to notice truncation while following).
  Result<uint64_t> file_size() const;
  // Starts reading again at `offset` (0 after the file was truncated or replaced).
  Status seek(uint64_t offset);

 private:
  LineReader(int fd, size_t max_line_bytes) : fd_(fd), max_line_(max_line_bytes) {}
  int fd_ = -1;
  size_t max_line_ = 0;
  std::string buf_;
  size_t pos_ = 0;
  uint64_t consumed_ = 0;
};

// Verifies the log file at `path` (chain.h). kNotFound / kUnavailable when it cannot be read;
// otherwise the report says whether it is intact and, if not, the first bad line and why.
Result<VerifyReport> verify_file(const std::string& path, const VerifyOptions& options);

struct TailOptions {
  size_t last_n = 10;    // lines printed before following
  bool follow = false;   // keep reading as the file grows
  int poll_ms = 200;     // follow: how often to look for new data
  ParseLimits limits;
  // follow: returns false to stop (signal handler, tests). Checked every poll.
  std::function<bool()> keep_going;
};

// Calls `emit` with each complete, canonical record line (the last `last_n`, then new ones when
// following). A line that does not parse is passed to `bad` with its reason and skipped (tail
// does not verify the chain; `audit verify` does). Follows truncation by starting over.
Status tail_file(const std::string& path, const TailOptions& options,
                 const std::function<void(std::string_view line)>& emit,
                 const std::function<void(uint64_t line_no, const Status& why)>& bad);

}  // namespace ztslm::audit
