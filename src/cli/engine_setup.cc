#include "cli/engine_setup.h"

#include <sched.h>
#include <sys/resource.h>

#include <chrono>
#include <thread>

#include "core/mapped_file.h"

namespace ztslm::cli {

namespace {

Result<LoadedModel> finish_load(LoadedModel out, const std::string& path, std::chrono::steady_clock::time_point t0) {
  auto vocab = engine::tokenizer::Vocab::from_metadata(out.model->gguf().metadata);
  if (!vocab.has_value()) return vocab.error().with_context(path);
  if (vocab->n_tokens() != out.model->n_vocab()) {
    return Status::malformed("{}: vocabulary has {} tokens but the model has {} logits", path,
                             vocab->n_tokens(), out.model->n_vocab());
  }
  out.vocab = std::make_shared<const engine::tokenizer::Vocab>(std::move(vocab).value());
  out.load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace

Result<LoadedModel> load_model(const std::string& path) {
  const auto t0 = std::chrono::steady_clock::now();
  LoadedModel out;
  ZTSLM_ASSIGN_OR_RETURN(out.model, engine::Model::open(path));
  return finish_load(std::move(out), path, t0);
}

Result<LoadedModel> load_model_fd(int fd, const std::string& name) {
  const auto t0 = std::chrono::steady_clock::now();
  auto file = MappedFile::from_fd(fd);
  if (!file.has_value()) return file.error().with_context(name);
  LoadedModel out;
  auto model = engine::Model::load(std::move(file).value());
  if (!model.has_value()) return model.error().with_context(name);
  out.model = std::move(model).value();
  return finish_load(std::move(out), name, t0);
}

int default_threads() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? static_cast<int>(hc) : 1;
}

size_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<size_t>(ru.ru_maxrss) * 1024;  // kilobytes on Linux
}

}  // namespace ztslm::cli
