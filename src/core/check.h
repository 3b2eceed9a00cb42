// ZTSLM_CHECK: always-on invariant check that aborts (never for attacker-influenced
// conditions: those are a Status). ZTSLM_DCHECK: the same in debug builds only.
#pragma once

namespace ztslm::check_internal {
[[noreturn]] void check_failed(const char* file, int line, const char* expr);
}  // namespace ztslm::check_internal

#define ZTSLM_CHECK(cond)                                                         \
  do {                                                                            \
    if (!(cond)) [[unlikely]] ::ztslm::check_internal::check_failed(__FILE__, __LINE__, #cond); \
  } while (0)

#ifdef NDEBUG
#define ZTSLM_DCHECK(cond) \
  do {                     \
    (void)sizeof(cond);    \
  } while (0)
#else
#define ZTSLM_DCHECK(cond) ZTSLM_CHECK(cond)
#endif
