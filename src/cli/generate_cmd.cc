// `ztslm generate`: local generation (no server), streaming to the terminal.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/engine_setup.h"
#include "core/utf8.h"
#include "engine/chat/chat_template.h"
#include "engine/chat_prompt.h"
#include "engine/sampler/sampler.h"
#include "engine/sampler/stop_matcher.h"
#include "engine/session.h"
#include "engine/tokenizer/tokenizer.h"

namespace ztslm::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct GenerateArgs {
  std::string model;
  std::string prompt;
  std::string system;
  std::string messages_file;
  std::string chat_format;  // explicit format name; default: detected from the model
  bool chat = false;
  bool parse_special = false;
  bool quiet = false;
  int threads = 0;
  uint32_t n_ctx = 0;
  engine::SamplerParams sampling;
};

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Reads a JSON array of {"role", "content"} objects. The strings are kept in `storage`.
Result<std::vector<engine::ChatMessage>> read_messages(const std::string& path,
                                                       std::vector<std::string>& storage) {
  std::ifstream in(path);
  if (!in) return Status::not_found("cannot open {}", path);
  std::stringstream ss;
  ss << in.rdbuf();
  const nlohmann::json doc = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_array()) return Status::invalid_argument("{}: expected a JSON array of messages", path);
  storage.clear();
  storage.reserve(doc.size() * 2);
  for (const auto& m : doc) {
    if (!m.is_object() || !m.contains("role") || !m.contains("content") ||
        !m["role"].is_string() || !m["content"].is_string()) {
      return Status::invalid_argument("{}: each message needs string \"role\" and \"content\"", path);
    }
    storage.push_back(m["role"].get<std::string>());
    storage.push_back(m["content"].get<std::string>());
  }
  std::vector<engine::ChatMessage> out;
  for (size_t i = 0; i + 1 < storage.size(); i += 2) out.push_back({storage[i], storage[i + 1]});
  return out;
}

Result<std::vector<int32_t>> build_prompt(const GenerateArgs& a, const LoadedModel& lm, size_t max_tokens) {
  const engine::tokenizer::Vocab& vocab = *lm.vocab;
  if (!a.chat && a.messages_file.empty()) {
    if (!is_valid_utf8(a.prompt)) return Status::invalid_argument("prompt is not valid UTF-8");
    return engine::tokenizer::tokenize(vocab, a.prompt, /*add_special=*/true, a.parse_special, max_tokens);
  }
  std::vector<std::string> storage;
  std::vector<engine::ChatMessage> messages;
  if (!a.messages_file.empty()) {
    ZTSLM_ASSIGN_OR_RETURN(messages, read_messages(a.messages_file, storage));
  } else {
    if (!a.system.empty()) messages.push_back({"system", a.system});
    messages.push_back({"user", a.prompt});
  }
  for (const auto& m : messages) {
    if (!is_valid_utf8(m.content)) return Status::invalid_argument("message content is not valid UTF-8");
  }
  std::string template_or_name = a.chat_format;
  if (template_or_name.empty()) {
    auto t = lm.model->gguf().metadata.get_string("tokenizer.chat_template");
    if (!t.has_value()) {
      return Status::failed_precondition(
          "the model has no tokenizer.chat_template; name a format with --chat-format");
    }
    template_or_name = std::string(*t);
  }
  ZTSLM_ASSIGN_OR_RETURN(const engine::ChatFormat format, engine::detect_chat_format(template_or_name));
  engine::tokenizer::Tokenizer tok(vocab);
  return engine::tokenize_chat(tok, format, messages, /*add_generation_prompt=*/true, max_tokens);
}

int run_generate(const GenerateArgs& a) {
  auto lm = load_model(a.model);
  if (!lm.has_value()) return fail(lm.error());
  const engine::HParams& hp = lm->model->hparams();
  engine::ThreadPool pool(a.threads > 0 ? a.threads : default_threads());

  engine::SessionOptions so;
  so.n_ctx = a.n_ctx > 0 ? a.n_ctx : std::min<uint32_t>(hp.n_ctx_train, 4096);
  auto prompt = build_prompt(a, *lm, so.n_ctx);
  if (!prompt.has_value() && prompt.error().code() == StatusCode::kResourceExhausted) {
    return fail(Status::out_of_range("prompt does not fit the context of {} tokens (use -c)", so.n_ctx));
  }
  if (!prompt.has_value()) return fail(prompt.error());
  if (prompt->empty()) return fail(Status::invalid_argument("the prompt is empty"));
  if (prompt->size() + 1 > so.n_ctx) {
    return fail(Status::out_of_range("prompt of {} tokens does not fit the context of {}",
                                     prompt->size(), so.n_ctx));
  }
  auto session = engine::Session::create(lm->model, pool, so);
  if (!session.has_value()) return fail(session.error());
  auto sampler = engine::Sampler::create(a.sampling, static_cast<int32_t>(lm->model->n_vocab()));
  if (!sampler.has_value()) return fail(sampler.error());
  auto stop = engine::StopMatcher::create(a.sampling.stop);
  if (!stop.has_value()) return fail(stop.error());
  for (int32_t t : *prompt) sampler->accept(t);

  const auto t_prefill = Clock::now();
  auto logits = session->decode(*prompt, /*all_logits=*/false);
  if (!logits.has_value()) return fail(logits.error());
  const double prefill_ms = ms_since(t_prefill);

  engine::tokenizer::StreamingDetokenizer detok(*lm->vocab, /*unparse_special=*/false);
  const auto t_decode = Clock::now();
  uint32_t n_gen = 0;
  std::string finish = "length";
  while (n_gen < a.sampling.max_tokens) {
    auto tok = sampler->sample(*logits);
    if (!tok.has_value()) return fail(tok.error());
    sampler->accept(*tok);
    ++n_gen;
    if (lm->vocab->is_eog(*tok)) {
      finish = "stop";
      break;
    }
    const auto out = stop->feed(detok.push(*tok));
    std::fwrite(out.text.data(), 1, out.text.size(), stdout);
    std::fflush(stdout);
    if (out.stopped) {
      finish = "stop";
      break;
    }
    if (n_gen == a.sampling.max_tokens || session->n_past() >= so.n_ctx) break;
    const int32_t next = *tok;
    logits = session->decode(std::span<const int32_t>(&next, 1), false);
    if (!logits.has_value()) return fail(logits.error());
  }
  if (!stop->stopped()) {
    const std::string tail = stop->feed(detok.finish()).text + stop->finish();
    std::fwrite(tail.data(), 1, tail.size(), stdout);
  }
  std::fputc('\n', stdout);
  const double decode_ms = ms_since(t_decode);
  if (!a.quiet) {
    std::fprintf(stderr,
                 "\n[%s] prompt %zu tokens in %.1f ms (%.1f tok/s), generated %u tokens in %.1f ms "
                 "(%.1f tok/s), finish: %s, threads %d, isa %s, seed %u\n",
                 a.model.c_str(), prompt->size(), prefill_ms,
                 1000.0 * static_cast<double>(prompt->size()) / prefill_ms, n_gen, decode_ms,
                 n_gen > 1 ? 1000.0 * (n_gen - 1) / decode_ms : 0.0, finish.c_str(), pool.size(),
                 engine::isa_name(lm->model->isa()), sampler->seed());
  }
  return 0;
}

}  // namespace

void register_generate_command(CLI::App& app) {
  static GenerateArgs a;
  CLI::App* cmd = app.add_subcommand("generate", "generate text locally (no server), streaming to the terminal");
  cmd->add_option("-m,--model", a.model, "GGUF model file")->required();
  cmd->add_option("-p,--prompt", a.prompt, "prompt text (the user message with --chat)");
  cmd->add_flag("--chat", a.chat, "apply the model's chat template to --system and --prompt");
  cmd->add_option("--system", a.system, "system message (with --chat)");
  cmd->add_option("--messages", a.messages_file, "JSON file with an array of {role, content} messages");
  cmd->add_option("--chat-format", a.chat_format, "chat format name instead of the model's template (chatml, llama3, …)");
  cmd->add_flag("--parse-special", a.parse_special, "turn special-token text in a plain prompt into control tokens");
  cmd->add_option("-n,--max-tokens", a.sampling.max_tokens, "most tokens to generate")->capture_default_str();
  cmd->add_option("--temp", a.sampling.temperature, "temperature (0 = greedy)")->capture_default_str();
  cmd->add_option("--top-k", a.sampling.top_k, "top-k (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", a.sampling.top_p, "top-p (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", a.sampling.min_p, "min-p (0 = off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", a.sampling.repeat_penalty, "repetition penalty (1 = off)")->capture_default_str();
  cmd->add_option("--frequency-penalty", a.sampling.frequency_penalty, "frequency penalty")->capture_default_str();
  cmd->add_option("--presence-penalty", a.sampling.presence_penalty, "presence penalty")->capture_default_str();
  cmd->add_option("--seed", a.sampling.seed, "RNG seed (default: random)");
  cmd->add_option("--stop", a.sampling.stop, "stop string (repeatable)");
  cmd->add_option("-t,--threads", a.threads, "threads (default: all CPUs of this process)");
  cmd->add_option("-c,--ctx", a.n_ctx, "context size in tokens (default: min(train context, 4096))");
  cmd->add_flag("-q,--quiet", a.quiet, "no statistics on stderr");
  cmd->callback([] {
    if (a.prompt.empty() && a.messages_file.empty()) {
      set_exit_code(fail(Status::invalid_argument("give --prompt or --messages")));
      return;
    }
    set_exit_code(run_generate(a));
  });
}

}  // namespace ztslm::cli
