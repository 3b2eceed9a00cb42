// Readers for ../shared/corpus (JSON Lines) shared by the guard tests.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace ztslm::guard::testing {

inline std::string corpus_path(const std::string& name) {
  return ::ztslm::testing::shared_dir() + "/corpus/" + name;
}

// Every line of `name` as JSON; empty when the file is absent.
inline std::vector<nlohmann::json> read_jsonl(const std::string& name) {
  std::vector<nlohmann::json> out;
  std::ifstream in(corpus_path(name));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

// Byte offset of code point index `cp_index` in UTF-8 `s` (the corpus spans count code points).
inline size_t byte_offset(const std::string& s, size_t cp_index) {
  size_t cps = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (cps == cp_index) return i;
      ++cps;
    }
  }
  return s.size();
}

}  // namespace ztslm::guard::testing
