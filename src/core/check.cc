#include "core/check.h"

#include <cstdio>
#include <cstdlib>

namespace ztslm::check_internal {

void check_failed(const char* file, int line, const char* expr) {
  std::fprintf(stderr, "ztslm: check failed at %s:%d: %s\n", file, line, expr);
  std::fflush(stderr);
  std::abort();
}

}  // namespace ztslm::check_internal
