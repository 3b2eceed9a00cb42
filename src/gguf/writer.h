// GGUF writer (for tests, tools and `ztslm model synth`): builds a v3 file from metadata and
// tensors, with offsets, padding and `general.alignment` computed here, so the container always
// re-parses. Metadata is written as given (keys and tokenizer values are not validated here, so
// tests can build semantically invalid files on purpose).
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
  // `alignment` must be a non-zero power of two (checked when writing). When it is not 32, or
  // the metadata holds a different `general.alignment`, that key is set to `alignment`.
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

  // The whole file in memory (lazy tensors are filled into it).
  std::vector<std::byte> serialize() const;
  // Writes the file to `path` (via a temporary file in the same folder, fsynced and renamed into
  // place, so no partial file is left on error). I/O errors map errno to a StatusCode.
  Status write_file(const std::string& path) const;

 private:
  // Header bytes up to the data section; `infos` receives the tensor infos with offsets.
  std::vector<std::byte> serialize_header(std::vector<TensorInfo>* infos) const;

  struct Pending {
    TensorInfo info;
    std::vector<std::byte> bytes;
    std::function<void(std::span<std::byte>)> fill;
  };
  uint32_t alignment_;
  Metadata metadata_;
  std::vector<Pending> tensors_;
};

// Serialises a parsed file to its canonical form (same version, metadata in file order, tensors
// and bytes; offsets recomputed with `file.alignment`, zero padding, no trailing bytes). Parsing
// the result gives a File equal to `file`. Each tensor's `data` must hold `n_bytes` bytes.
std::vector<std::byte> serialize(const File& file);

}  // namespace ztslm::gguf
