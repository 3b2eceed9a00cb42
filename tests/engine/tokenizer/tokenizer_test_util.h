// Shared helpers of the tokenizer tests: loading the vocab files of ../shared.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "engine/tokenizer/vocab.h"
#include "engine/tokenizer/tiny_vocabs.h"
#include "gguf/gguf.h"
#include "test_util.h"

namespace ztslm::engine::tokenizer::testing {

// Loads the Vocab of a GGUF file under ../shared/testdata (`rel`, e.g. "vocab/ggml-vocab-gpt-2.gguf").
// Cached: every vocab is built once per test binary.
inline const Vocab& load_vocab(const std::string& rel) {
  static std::map<std::string, std::unique_ptr<Vocab>> cache;
  auto it = cache.find(rel);
  if (it != cache.end()) return *it->second;
  auto file = MappedFile::open(ztslm::testing::testdata_path(rel));
  EXPECT_TRUE(file.has_value()) << rel << ": " << file.error().to_string();
  auto parsed = gguf::parse(file->bytes());
  EXPECT_TRUE(parsed.has_value()) << rel << ": " << parsed.error().to_string();
  auto vocab = Vocab::from_metadata(parsed->metadata);
  EXPECT_TRUE(vocab.has_value()) << rel << ": " << vocab.error().to_string();
  auto& slot = cache[rel];
  slot = std::make_unique<Vocab>(std::move(vocab).value());
  return *slot;
}

}  // namespace ztslm::engine::tokenizer::testing
