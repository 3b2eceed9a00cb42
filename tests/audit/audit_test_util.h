// Helpers for the audit tests: a private temporary directory, a fake clock, file editing.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ztslm::audit::testing {

// A 0700 directory under $TMPDIR, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = std::filesystem::temp_directory_path().string() + "/ztslm-audit-XXXXXX";
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A settable clock in Unix microseconds.
class FakeClock {
 public:
  explicit FakeClock(int64_t start_us = 1'700'000'000'000'000) : now_(start_us) {}
  int64_t operator()() const { return now_.load(); }
  void advance_us(int64_t d) { now_ += d; }

 private:
  std::atomic<int64_t> now_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Complete lines of `bytes` (without '\n'); a torn tail is dropped.
inline std::vector<std::string> split_lines(const std::string& bytes) {
  std::vector<std::string> lines;
  size_t pos = 0;
  for (;;) {
    const size_t nl = bytes.find('\n', pos);
    if (nl == std::string::npos) break;
    lines.push_back(bytes.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

inline std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out.append(l).push_back('\n');
  return out;
}

}  // namespace ztslm::audit::testing
