#include "engine/tokenizer/tokenizer.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/utf8.h"
#include "engine/tokenizer/tokenizer_test_util.h"
#include "test_util.h"

namespace ztslm::engine::tokenizer {
namespace {

using testing::load_vocab;

// The vocabularies of the supported families (vocab/README.md).
const char* const kVocabNames[] = {"llama-spm", "phi-3", "llama-bpe", "qwen2", "gpt-2", "starcoder"};
constexpr size_t kMaxTokens = 1 << 20;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string hex(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : s) {
    out.push_back(kHex[(static_cast<uint8_t>(c) >> 4) & 15]);
    out.push_back(kHex[static_cast<uint8_t>(c) & 15]);
  }
  return out;
}

std::vector<TokenId> parse_ids(const std::string& line) {
  std::vector<TokenId> ids;
  std::istringstream in(line);
  int64_t id = 0;
  while (in >> id) ids.push_back(static_cast<TokenId>(id));
  return ids;
}

std::string join(const std::vector<TokenId>& ids) {
  std::string s;
  for (const TokenId id : ids) {
    s.push_back(' ');
    s.append(std::to_string(id));
  }
  return s;
}

// Every .inp/.out pair of vocab/ (46 strings per vocab, add_special = parse_special = false).
TEST(TokenizerTest, MatchesVocabInpOutPairs) {
  ZTSLM_REQUIRE_SHARED();
  for (const char* name : kVocabNames) {
    const std::string base = std::string("vocab/ggml-vocab-") + name + ".gguf";
    const Vocab& vocab = load_vocab(base);
    const std::string inp = read_file(ztslm::testing::testdata_path(base + ".inp"));
    const std::string out = read_file(ztslm::testing::testdata_path(base + ".out"));
    std::vector<std::string> cases;
    const std::string sep = "\n__ggml_vocab_test__\n";
    for (size_t pos = 0;;) {
      const size_t next = inp.find(sep, pos);
      if (next == std::string::npos) break;
      cases.push_back(inp.substr(pos, next - pos));
      pos = next + sep.size();
    }
    std::vector<std::string> lines;
    std::istringstream lin(out);
    for (std::string line; std::getline(lin, line);) lines.push_back(line);
    ASSERT_EQ(cases.size(), 46u) << name;
    ASSERT_EQ(lines.size(), cases.size()) << name;
    size_t pass = 0;
    Tokenizer tok(vocab);
    for (size_t i = 0; i < cases.size(); ++i) {
      auto ids = tok.encode(cases[i], false, false, kMaxTokens);
      ASSERT_TRUE(ids.has_value()) << name << " case " << i;
      const std::vector<TokenId> want = parse_ids(lines[i]);
      if (*ids == want) {
        ++pass;
      } else {
        ADD_FAILURE() << name << " case " << i << " '" << printable(cases[i], 80) << "'\n got"
                      << join(*ids) << "\nwant" << join(want);
      }
    }
    std::printf("[ vocab %-10s ] inp/out %zu/%zu identical\n", name, pass, cases.size());
  }
}

// tokenize.json: `plain`, `special` and `special_pieces_hex` for every supported vocab.
TEST(TokenizerTest, MatchesTokenizeJson) {
  ZTSLM_REQUIRE_SHARED();
  const auto doc =
      nlohmann::json::parse(read_file(ztslm::testing::testdata_path("reference/tokenize.json")));
  const auto& strings = doc.at("strings");
  for (const char* name : kVocabNames) {
    const auto& entry = doc.at("vocabs").at(name);
    const Vocab& vocab = load_vocab(entry.at("file").get<std::string>());
    EXPECT_EQ(vocab.n_tokens(), entry.at("n_tokens").get<size_t>()) << name;
    if (!entry.at("bos_token_id").is_null()) {
      EXPECT_EQ(vocab.bos(), entry.at("bos_token_id").get<TokenId>()) << name;
    }
    EXPECT_EQ(vocab.eos(), entry.at("eos_token_id").get<TokenId>()) << name;
    size_t pass_plain = 0, pass_special = 0, pass_pieces = 0;
    const auto& results = entry.at("results");
    ASSERT_EQ(results.size(), strings.size());
    for (size_t i = 0; i < strings.size(); ++i) {
      const std::string text = strings[i].get<std::string>();
      const auto want_plain = results[i].at("plain").get<std::vector<TokenId>>();
      const auto want_special = results[i].at("special").get<std::vector<TokenId>>();
      const auto want_hex = results[i].at("special_pieces_hex").get<std::vector<std::string>>();
      auto plain = tokenize(vocab, text, false, false, kMaxTokens);
      auto special = tokenize(vocab, text, true, true, kMaxTokens);
      ASSERT_TRUE(plain.has_value() && special.has_value()) << name << " " << i;
      if (*plain == want_plain) {
        ++pass_plain;
      } else {
        ADD_FAILURE() << name << " plain " << i << " '" << printable(text, 80) << "'\n got"
                      << join(*plain) << "\nwant" << join(want_plain);
      }
      if (*special == want_special) {
        ++pass_special;
      } else {
        ADD_FAILURE() << name << " special " << i << " '" << printable(text, 80) << "'\n got"
                      << join(*special) << "\nwant" << join(want_special);
      }
      std::vector<std::string> pieces;
      for (const TokenId id : want_special) pieces.push_back(hex(token_to_piece(vocab, id, 0, true)));
      if (pieces == want_hex) {
        ++pass_pieces;
      } else {
        ADD_FAILURE() << name << " pieces " << i;
      }
    }
    std::printf("[ vocab %-10s ] tokenize.json plain %zu/%zu special %zu/%zu pieces %zu/%zu\n",
                name, pass_plain, strings.size(), pass_special, strings.size(), pass_pieces,
                strings.size());
  }
}

// reference/*.json: greedy.text == detokenize(greedy.tokens, false, true) with invalid UTF-8
// replaced, and the streaming detokeniser emits the same text in well-formed chunks.
TEST(TokenizerTest, DetokenizesGreedyReferenceText) {
  ZTSLM_REQUIRE_SHARED();
  const std::string dir = ztslm::testing::testdata_path("reference");
  size_t n_files = 0, n_prompts = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string path = entry.path().string();
    if (entry.path().extension() != ".json" || entry.path().filename() == "tokenize.json") continue;
    const auto doc = nlohmann::json::parse(read_file(path));
    const Vocab& vocab = load_vocab("models/" + doc.at("model_file").get<std::string>());
    ++n_files;
    for (const auto& prompt : doc.at("prompts")) {
      const auto tokens = prompt.at("greedy").at("tokens").get<std::vector<TokenId>>();
      const std::string want = prompt.at("greedy").at("text").get<std::string>();
      const std::string got = utf8_replace_invalid(detokenize(vocab, tokens, false, true));
      EXPECT_EQ(got, want) << path << " " << prompt.at("name");
      StreamingDetokenizer stream(vocab, /*unparse_special=*/true);
      std::string streamed;
      for (const TokenId id : tokens) {
        const std::string chunk = stream.push(id);
        EXPECT_TRUE(is_valid_utf8(chunk)) << path;
        streamed += chunk;
      }
      const std::string tail = stream.finish();
      EXPECT_TRUE(is_valid_utf8(tail));
      streamed += tail;
      EXPECT_EQ(streamed, want) << path << " " << prompt.at("name");
      // The prompt tokens round-trip through tokenize as well (add_special, parse_special).
      auto ids = tokenize(vocab, prompt.at("text").get<std::string>(), true, true, kMaxTokens);
      ASSERT_TRUE(ids.has_value());
      EXPECT_EQ(*ids, prompt.at("tokens").get<std::vector<TokenId>>()) << path;
      ++n_prompts;
    }
  }
  EXPECT_EQ(n_files, 9u);
  std::printf("[ detokenize ] %zu model files, %zu greedy texts checked\n", n_files, n_prompts);
}

TEST(TokenizerTest, MaxTokensIsEnforced) {
  const auto md = testing::tiny_bpe_metadata();
  auto vocab = Vocab::from_metadata(md);
  ASSERT_TRUE(vocab.has_value());
  EXPECT_THAT(tokenize(*vocab, "a b c d e f", false, false, 3),
              StatusIs(StatusCode::kResourceExhausted));
  auto ok = tokenize(*vocab, "a b c", false, false, 5);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->size(), 5u);
}

TEST(TokenizerTest, TinyBpeMergesAndSpecials) {
  auto vocab = Vocab::from_metadata(testing::tiny_bpe_metadata());
  ASSERT_TRUE(vocab.has_value());
  const TokenId hello = vocab->find("hello");
  const TokenId world = vocab->find("\xC4\xA0world");
  const TokenId eot = vocab->find("<|endoftext|>");
  const TokenId tool = vocab->find("<tool>");
  ASSERT_NE(hello, kNoToken);
  ASSERT_NE(world, kNoToken);
  auto ids = tokenize(*vocab, "hello world", false, false, 100);
  ASSERT_TRUE(ids.has_value());
  EXPECT_EQ(*ids, (std::vector<TokenId>{hello, world}));
  // CONTROL text is plain unless parse_special; USER_DEFINED is always split out.
  auto plain = tokenize(*vocab, "<|endoftext|><tool>", false, false, 100);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->back(), tool);
  EXPECT_GT(plain->size(), 2u);
  auto special = tokenize(*vocab, "<|endoftext|><tool>", false, true, 100);
  ASSERT_TRUE(special.has_value());
  EXPECT_EQ(*special, (std::vector<TokenId>{eot, tool}));
  EXPECT_TRUE(vocab->is_eog(eot));
  EXPECT_FALSE(vocab->is_eog(hello));
  EXPECT_EQ(token_to_piece(*vocab, eot, 0, false), "");
  EXPECT_EQ(token_to_piece(*vocab, eot, 0, true), "<|endoftext|>");
  EXPECT_EQ(token_to_piece(*vocab, world, 0, false), " world");
  EXPECT_EQ(token_to_piece(*vocab, world, 1, false), "world");
  EXPECT_EQ(token_to_piece(*vocab, -1, 0, true), "");
  EXPECT_EQ(token_to_piece(*vocab, static_cast<TokenId>(vocab->n_tokens()), 0, true), "");
  // Invalid UTF-8 becomes U+FFFD before byte encoding, one per bad byte.
  auto bad = tokenize(*vocab, std::string("a\xFF\xC3"), false, false, 100);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(detokenize(*vocab, *bad, false, false), "a\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TokenizerTest, SpmByteFallbackAndPrefix) {
  auto vocab = Vocab::from_metadata(testing::tiny_spm_metadata());
  ASSERT_TRUE(vocab.has_value());
  auto ids = tokenize(*vocab, "hello", true, false, 100);
  ASSERT_TRUE(ids.has_value());
  EXPECT_EQ(*ids, (std::vector<TokenId>{1, vocab->find("\xE2\x96\x81hello")}));
  // "ü" (C3 BC) is no token: two byte tokens, never <unk>.
  auto bytes = tokenize(*vocab, "\xC3\xBC", false, false, 100);
  ASSERT_TRUE(bytes.has_value());
  EXPECT_EQ(*bytes, (std::vector<TokenId>{vocab->find("\xE2\x96\x81"), vocab->find("<0xC3>"),
                                          vocab->find("<0xBC>")}));
  EXPECT_EQ(detokenize(*vocab, *bytes, false, false), "\xC3\xBC");
  // The streaming detokeniser holds the first byte back until the character is complete.
  StreamingDetokenizer stream(*vocab, false);
  EXPECT_EQ(stream.push((*bytes)[0]), "");
  EXPECT_EQ(stream.push((*bytes)[1]), "");
  EXPECT_EQ(stream.push((*bytes)[2]), "\xC3\xBC");
  EXPECT_EQ(stream.finish(), "");
  // A dangling lead byte becomes U+FFFD at the end, an invalid byte at once.
  StreamingDetokenizer dangling(*vocab, false, false);
  EXPECT_EQ(dangling.push(vocab->find("<0xFF>")), "\xEF\xBF\xBD");
  EXPECT_EQ(dangling.push(vocab->find("<0xE2>")), "");
  EXPECT_EQ(dangling.push(vocab->find("<0x96>")), "");
  EXPECT_EQ(dangling.finish(), "\xEF\xBF\xBD");
}

// Random byte-token streams: every chunk is well-formed and the stream equals the batch result.
TEST(TokenizerTest, StreamingMatchesBatchOnRandomByteTokens) {
  auto vocab = Vocab::from_metadata(testing::tiny_spm_metadata());
  ASSERT_TRUE(vocab.has_value());
  std::mt19937 rng(1234);
  const uint8_t interesting[] = {0x41, 0x20, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98,
                                 0x80, 0xED, 0xA0, 0xC0, 0xFF, 0xE0, 0xF4, 0x90, 0xBF};
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<TokenId> ids;
    const int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", interesting[rng() % sizeof interesting]);
      ids.push_back(vocab->find(name));
    }
    const std::string want = utf8_replace_invalid(detokenize(*vocab, ids, false, false));
    StreamingDetokenizer stream(*vocab, false);
    std::string got;
    for (const TokenId id : ids) {
      const std::string chunk = stream.push(id);
      ASSERT_TRUE(is_valid_utf8(chunk));
      got += chunk;
    }
    got += stream.finish();
    ASSERT_EQ(got, want) << iter;
  }
}

// The streaming clean-up passes equal the batch passes of §5.6 on random texts made of the
// characters the rules look at.
TEST(TokenizerTest, StreamingCleanSpacesMatchesBatch) {
  auto vocab = Vocab::from_metadata(testing::tiny_bpe_metadata("gpt-2"));
  ASSERT_TRUE(vocab.has_value());
  ASSERT_TRUE(vocab->clean_spaces());
  const std::string alphabet = "  ''?.,!smrevtdlx";
  std::mt19937 rng(99);
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<TokenId> ids;
    const int n = static_cast<int>(rng() % 14);
    for (int i = 0; i < n; ++i) {
      const char c = alphabet[rng() % alphabet.size()];
      ids.push_back(vocab->bpe_byte_symbol(static_cast<uint8_t>(c)));
    }
    const std::string want = detokenize(*vocab, ids, false, false);
    StreamingDetokenizer stream(*vocab, false);
    std::string got;
    for (const TokenId id : ids) got += stream.push(id);
    got += stream.finish();
    std::string raw;
    for (const TokenId id : ids) raw += vocab->token_piece(id);
    ASSERT_EQ(got, want) << "'" << raw << "'";
  }
  const std::vector<TokenId> example = *tokenize(*vocab, "a ' b , c 's d 'll e 're", false, false, 100);
  EXPECT_EQ(detokenize(*vocab, example, false, false), "a'b, c's d 'll e're");
}

}  // namespace
}  // namespace ztslm::engine::tokenizer
