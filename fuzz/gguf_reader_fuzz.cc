// Fuzz target for gguf::parse. Property: any input that parses re-serialises to a canonical
// form that parses again to an equal File, and that canonical form is a fixed point.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/byte_reader.h"
#include "core/check.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"

namespace {

// Small bounds so the fuzzer explores structure rather than allocating.
ztslm::gguf::Limits fuzz_limits() {
  ztslm::gguf::Limits lim;
  lim.max_kv = 64;
  lim.max_tensors = 64;
  lim.max_key_bytes = 256;
  lim.max_string_bytes = 4096;
  lim.max_array_elems = 4096;
  lim.max_metadata_bytes = 1u << 20;
  lim.max_dim = int64_t{1} << 24;
  lim.max_tensor_bytes = uint64_t{1} << 24;
  return lim;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ztslm::gguf;
  static const Limits kFuzzLimits = fuzz_limits();
  auto first = parse(ztslm::as_bytes(data, size), kFuzzLimits);
  if (!first.has_value()) {
    ZTSLM_CHECK(!first.error().message().empty());
    return 0;
  }
  const std::vector<std::byte> canonical = serialize(*first);  // `again` views it
  auto again = parse(canonical, kFuzzLimits);
  ZTSLM_CHECK(again.has_value() && *again == *first);
  ZTSLM_CHECK(serialize(*again) == canonical);  // canonical form is a fixed point
  return 0;
}
