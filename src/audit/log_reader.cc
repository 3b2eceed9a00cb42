#include "audit/log_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <thread>
#include <utility>

#include "core/utf8.h"

namespace ztslm::audit {
namespace {
constexpr size_t kChunk = 64 << 10;
}  // namespace

Result<LineReader> LineReader::open(const std::string& path, size_t max_line_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found("audit log {} not found", printable(path, 200));
    return Status::unavailable("cannot open audit log {}: {}", printable(path, 200),
                               std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::invalid_argument("{} is not a regular file", printable(path, 200));
  }
  return LineReader(fd, max_line_bytes);
}

LineReader::~LineReader() {
  if (fd_ >= 0) ::close(fd_);
}

LineReader::LineReader(LineReader&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      max_line_(other.max_line_),
      buf_(std::move(other.buf_)),
      pos_(other.pos_),
      consumed_(other.consumed_) {}

Result<LineReader::Next> LineReader::next(std::string_view* line) {
  for (;;) {
    const size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos) {
      if (nl - pos_ > max_line_) return Next::kTooLong;
      *line = std::string_view(buf_).substr(pos_, nl - pos_);
      consumed_ += nl - pos_ + 1;
      pos_ = nl + 1;
      return Next::kLine;
    }
    // SECURITY: the buffer never holds more than one line of max_line_ plus one chunk.
    if (buf_.size() - pos_ > max_line_) return Next::kTooLong;
    if (pos_ > 0) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    const size_t old = buf_.size();
    buf_.resize(old + kChunk);
    ssize_t r;
    do {
      r = ::read(fd_, buf_.data() + old, kChunk);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      buf_.resize(old);
      return Status::unavailable("audit log read failed: {}", std::strerror(errno));
    }
    buf_.resize(old + static_cast<size_t>(r));
    if (r == 0) return Next::kEnd;
  }
}

Result<uint64_t> LineReader::file_size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return Status::unavailable("audit log stat failed");
  return static_cast<uint64_t>(st.st_size);
}

Status LineReader::seek(uint64_t offset) {
  if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
    return Status::unavailable("audit log seek failed");
  }
  buf_.clear();
  pos_ = 0;
  consumed_ = offset;
  return Status();
}

Result<VerifyReport> verify_file(const std::string& path, const VerifyOptions& options) {
  ZTSLM_ASSIGN_OR_RETURN(LineReader reader, LineReader::open(path, options.limits.max_line_bytes));
  ChainVerifier verifier(options);
  for (;;) {
    std::string_view line;
    ZTSLM_ASSIGN_OR_RETURN(LineReader::Next n, reader.next(&line));
    if (n == LineReader::Next::kLine) {
      if (!verifier.feed(line)) return verifier.finish(0);
      continue;
    }
    if (n == LineReader::Next::kTooLong) {
      // Report it as the defect of the next line.
      VerifyReport r = verifier.report();
      r.ok = false;
      r.bad_line = r.n_lines + 1;
      r.reason = str_format("line exceeds {} bytes", options.limits.max_line_bytes);
      return r;
    }
    return verifier.finish(reader.partial());
  }
}

Status tail_file(const std::string& path, const TailOptions& options,
                 const std::function<void(std::string_view line)>& emit,
                 const std::function<void(uint64_t line_no, const Status& why)>& bad) {
  ZTSLM_ASSIGN_OR_RETURN(LineReader reader, LineReader::open(path, options.limits.max_line_bytes));
  RecordParser parser(options.limits);
  uint64_t line_no = 0;
  std::deque<std::string> last;
  auto handle = [&](std::string_view line, bool buffered) {
    ++line_no;
    Result<Json> rec = parser.parse(line);
    if (!rec.has_value()) {
      bad(line_no, rec.error());
      return;
    }
    if (!buffered) {
      emit(line);
      return;
    }
    last.emplace_back(line);
    if (last.size() > options.last_n) last.pop_front();
  };
  bool initial = true;
  for (;;) {
    std::string_view line;
    ZTSLM_ASSIGN_OR_RETURN(LineReader::Next n, reader.next(&line));
    if (n == LineReader::Next::kLine) {
      handle(line, initial);
      continue;
    }
    if (n == LineReader::Next::kTooLong) {
      bad(line_no + 1, Status::resource_exhausted("line exceeds {} bytes",
                                                  options.limits.max_line_bytes));
      // Skip to the end of the file and keep following from there.
      ZTSLM_ASSIGN_OR_RETURN(uint64_t size, reader.file_size());
      ZTSLM_TRY(reader.seek(size));
      if (!options.follow) return Status();
    }
    if (initial) {
      for (const std::string& l : last) emit(l);
      last.clear();
      initial = false;
    }
    if (!options.follow) return Status();
    if (options.keep_going && !options.keep_going()) return Status();
    ZTSLM_ASSIGN_OR_RETURN(uint64_t size, reader.file_size());
    if (size < reader.offset() + reader.partial()) {
      ZTSLM_TRY(reader.seek(0));  // truncated or rewritten: start over
      line_no = 0;
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(options.poll_ms));
  }
}

}  // namespace ztslm::audit
