// Runs the real `ztslm` binary (ZTSLM_BINARY) in a child process for the CLI end-to-end tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ztslm::testing {

struct ProcResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `ztslm ARGS` through the shell; stdout and stderr are captured separately.
inline ProcResult run_ztslm(const std::string& args) {
  static int counter = 0;
  const std::string err_path = ::testing::TempDir() + "ztslm_stderr_" + std::to_string(getpid()) +
                               "_" + std::to_string(counter++);
  const std::string cmd = std::string(ZTSLM_BINARY) + " " + args + " 2>" + err_path;
  ProcResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[65536];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_path);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  std::filesystem::remove(err_path);
  return r;
}

// Single-quotes `s` for the shell (paths from the test environment; no quotes inside).
inline std::string shell_quote(const std::string& s) { return "'" + s + "'"; }

}  // namespace ztslm::testing
