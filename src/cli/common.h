// Small helpers shared by the subcommands.
#pragma once

#include <cstdio>

#include "core/status.h"

namespace ztslm::cli {

// Prints "ztslm: <status>" to stderr and returns the exit code for it (2 for caller errors,
// 1 otherwise).
inline int fail(const Status& s) {
  std::fprintf(stderr, "ztslm: %s\n", s.to_string().c_str());
  return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace ztslm::cli
