// Loading a model with its tokenizer for the local engine commands (generate, bench, logits).
#pragma once

#include <memory>
#include <string>

#include "core/result.h"
#include "engine/model.h"
#include "engine/tokenizer/vocab.h"

namespace ztslm::cli {

struct LoadedModel {
  std::shared_ptr<const engine::Model> model;
  std::shared_ptr<const engine::tokenizer::Vocab> vocab;
  double load_ms = 0;
};

// Maps and validates `path`, then builds its vocabulary. Errors name the file.
Result<LoadedModel> load_model(const std::string& path);

// Maps the file behind `fd` (a sealed memfd of a verified model; the caller keeps owning `fd`)
// and loads it as load_model does. `name` only labels errors; no path is opened.
Result<LoadedModel> load_model_fd(int fd, const std::string& name);

// Threads to use when the user gave none: the CPUs this process may run on.
int default_threads();

// Peak resident set size of this process in bytes.
size_t peak_rss_bytes();

}  // namespace ztslm::cli
