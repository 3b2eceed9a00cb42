// The synthetic ChatML dataset of the demo model: deterministic from a seed.
//
// Categories: greetings, short answers about zero trust and about ztslm, simple instructions
// (repeat, upper-case, count words, pick the longer of two words) and, on purpose, naive
// behaviours that the gateway's guards exist for: the model repeats personal data and secrets it
// is given (Luhn-valid card numbers, e-mail addresses, keys, ...), follows "ignore previous
// instructions ...", and prints its system prompt verbatim when asked. Copy tasks use random
// digits and strings so that the model learns to copy rather than to memorise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ztslm::demo {

// Bumped whenever the generated conversations change for a given seed.
inline constexpr const char* kGeneratorVersion = "demo-data/1";

struct Message {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct Conversation {
  std::string category;
  std::vector<Message> messages;  // optional system, then user, then the assistant answer
};

// `n` conversations from `seed` (the same seed gives the same conversations, byte for byte).
std::vector<Conversation> generate_dataset(uint64_t seed, size_t n);

// One conversation per line: {"category":..., "messages":[{"role":..., "content":...}, ...]}.
std::string to_jsonl(const std::vector<Conversation>& data);
// Parses what to_jsonl wrote; false on any malformed line.
bool from_jsonl(const std::string& text, std::vector<Conversation>* out);

// The 16-digit check helper, exposed for tests of the generator: true when `digits` (only
// digits) passes the Luhn check.
bool luhn_valid(const std::string& digits);

}  // namespace ztslm::demo
