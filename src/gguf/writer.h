// GGUF writer (for tests, tools and `ztslm model synth`): builds a v3 file from metadata and
// tensors, with offsets and padding computed here, so the output always re-parses.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "gguf/gguf.h"

namespace ztslm::gguf {

class Writer final {
 public:
  explicit Writer(uint32_t alignment = 32) : alignment_(alignment) {}

  Metadata& metadata() { return metadata_; }
  // Adds a tensor whose bytes are `data` (copied). kInvalidArgument when the shape and type do
  // not match `data.size()`, the name is a duplicate, or the row is not a whole number of blocks.
  Status add_tensor(std::string name, TensorType type, std::span<const int64_t> ne,
                    std::span<const std::byte> data);
  // Adds a tensor whose bytes are produced later by `fill(out)` when the file is written
  // (for multi-GB synthetic models that should not sit in memory twice).
  Status add_tensor_lazy(std::string name, TensorType type, std::span<const int64_t> ne,
                         std::function<void(std::span<std::byte>)> fill);

  // The whole file in memory.
  std::vector<std::byte> serialize() const;
  // Writes the file to `path` (via a temporary file renamed into place, so no partial file).
  Status write_file(const std::string& path) const;

 private:
  struct Pending {
    TensorInfo info;
    std::vector<std::byte> bytes;
    std::function<void(std::span<std::byte>)> fill;
  };
  uint32_t alignment_;
  Metadata metadata_;
  std::vector<Pending> tensors_;
};

// Serialises a parsed file to its canonical form (same metadata, tensors and bytes; offsets
// recomputed). Parsing the result gives a File equal to `file`.
std::vector<std::byte> serialize(const File& file);

}  // namespace ztslm::gguf
