#include "core/data_dir.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#ifndef ZTSLM_SOURCE_DIR_FOR_DATA
#error "ZTSLM_SOURCE_DIR_FOR_DATA must be defined by the build"
#endif
#ifndef ZTSLM_BUILD_DIR_FOR_DATA
#error "ZTSLM_BUILD_DIR_FOR_DATA must be defined by the build"
#endif
#ifndef ZTSLM_INSTALL_DATA_DIR
#error "ZTSLM_INSTALL_DATA_DIR must be defined by the build"
#endif

namespace ztslm {
namespace {

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// realpath(3) of `path`, or "" when it does not resolve.
std::string canonical(const char* path) {
  char buf[PATH_MAX];
  if (::realpath(path, buf) == nullptr) return {};
  return buf;
}

// The running executable, symlinks resolved ("" when /proc is not mounted).
std::string executable_path() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  buf[n] = '\0';
  return buf;
}

std::string parent_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool is_inside(const std::string& path, const std::string& dir) {
  return !dir.empty() && path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

}  // namespace

DataDir data_dir() {
  if (const char* env = std::getenv("ZTSLM_DATA_DIR"); env != nullptr && env[0] != '\0') {
    std::string p = env;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return {std::move(p), "ZTSLM_DATA_DIR"};
  }
  const std::string exe = executable_path();
  if (!exe.empty()) {
    const std::string build_dir = canonical(ZTSLM_BUILD_DIR_FOR_DATA);
    if (is_inside(exe, build_dir) && is_directory(ZTSLM_SOURCE_DIR_FOR_DATA)) {
      return {ZTSLM_SOURCE_DIR_FOR_DATA, "source checkout"};
    }
    const std::string beside = canonical((parent_of(parent_of(exe)) + "/share/ztslm").c_str());
    if (!beside.empty() && is_directory(beside)) return {beside, "next to the executable"};
  }
  return {ZTSLM_INSTALL_DATA_DIR, "install prefix"};
}

std::string data_path(std::string_view relative) {
  std::string p = data_dir().path;
  p += '/';
  p.append(relative);
  return p;
}

}  // namespace ztslm
