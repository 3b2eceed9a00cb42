// End-to-end tests of the `ztslm` binary: each runs the real executable in a child process and
// checks its output and exit status.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/run_ztslm.h"
#include "test_util.h"

namespace ztslm {
namespace {

using nlohmann::json;

using testing::ProcResult;

ProcResult ztslm(const std::string& args) { return testing::run_ztslm(args); }

std::string quote(const std::string& s) { return testing::shell_quote(s); }

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "ztslm_cli_" + std::to_string(getpid()) + "_" + name;
}

TEST(CliTest, VersionAndHelp) {
  const ProcResult v = ztslm("--version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("ztslm "), std::string::npos);
  for (const char* cmd : {"generate", "bench", "model inspect", "model logits", "model synth"}) {
    const ProcResult h = ztslm(std::string(cmd) + " --help");
    EXPECT_EQ(h.exit_code, 0) << cmd;
    EXPECT_NE(h.out.find("Usage"), std::string::npos) << cmd;
  }
  EXPECT_NE(ztslm("no-such-command").exit_code, 0);
}

TEST(CliTest, InspectPrintsMetadataAndTensorsButNoWeights) {
  ZTSLM_REQUIRE_SHARED();
  const std::string model = testing::testdata_path("models/tiny-qwen2-F32.gguf");
  const ProcResult r = ztslm("model inspect --json " + quote(model));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["metadata"]["general.architecture"], "qwen2");
  EXPECT_EQ(j["tensors"].size(), 26u);
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["length"], 151936);
  EXPECT_LT(r.out.size(), 64u * 1024);  // 45 MB of weights never reach the output
}

// `model logits` is the cross-check tool against other engines: it must reproduce llama.cpp's
// reference (top-20 at every position within 1e-4, identical greedy continuation).
TEST(CliTest, LogitsMatchTheLlamaCppReference) {
  ZTSLM_REQUIRE_SHARED();
  std::ifstream in(testing::testdata_path("reference/tiny-llama-spm-F32.json"));
  const json ref = json::parse(in);
  const json& prompt = ref["prompts"][0];
  std::string ids;
  for (const auto& t : prompt["tokens"]) ids += (ids.empty() ? "" : ",") + std::to_string(t.get<int>());
  const ProcResult r = ztslm("model logits -t 1 --greedy 32 -k 20 -m " +
                      quote(testing::testdata_path("models/tiny-llama-spm-F32.gguf")) + " --tokens " + ids);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json out = json::parse(r.out);
  ASSERT_EQ(out["top"].size(), prompt["top20"].size());
  for (size_t p = 0; p < out["top"].size(); ++p) {
    for (size_t k = 0; k < 20; ++k) {
      const auto& want = prompt["top20"][p][k];
      const auto& got = out["top"][p][k];
      EXPECT_EQ(got[0].get<int>(), want[0].get<int>()) << "position " << p << " rank " << k;
      EXPECT_NEAR(got[1].get<double>(), want[1].get<double>(), 1e-4);
    }
  }
  EXPECT_EQ(out["greedy"]["tokens"], prompt["greedy"]["tokens"]);
  EXPECT_EQ(out["greedy"]["text"], prompt["greedy"]["text"]);
}

TEST(CliTest, SynthBenchAndGenerateOnASyntheticModel) {
  const std::string path = temp_path("smol.gguf");
  const ProcResult s = ztslm("model synth --preset smollm2-135m --type Q8_0 --seed 5 -o " + quote(path));
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const ProcResult insp = ztslm("model inspect --json " + quote(path));
  ASSERT_EQ(insp.exit_code, 0) << insp.err;
  const json j = json::parse(insp.out);
  EXPECT_EQ(j["metadata"]["llama.block_count"], 30);
  EXPECT_EQ(j["metadata"]["llama.embedding_length"], 576);
  EXPECT_EQ(j["tensors"].size(), 2u + 30u * 9u);

  const ProcResult b = ztslm("bench --json -p 8 -n 4 -r 1 -t 1 -m " + quote(path));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const json bj = json::parse(b.out);
  ASSERT_EQ(bj["results"].size(), 1u);
  EXPECT_GT(bj["results"][0]["prefill_tok_s"].get<double>(), 0.0);
  EXPECT_GT(bj["results"][0]["decode_tok_s"].get<double>(), 0.0);
  EXPECT_GT(bj["peak_rss_bytes"].get<double>(), 0.0);

  // Greedy generation is deterministic; a seeded sampler too.
  const std::string gen = "generate -q -n 8 -t 1 -m " + quote(path) + " -p 'zero trust means'";
  const ProcResult g1 = ztslm(gen + " --temp 0");
  const ProcResult g2 = ztslm(gen + " --temp 0");
  ASSERT_EQ(g1.exit_code, 0) << g1.err;
  EXPECT_EQ(g1.out, g2.out);
  EXPECT_FALSE(g1.out.empty());
  const ProcResult s1 = ztslm(gen + " --seed 42");
  const ProcResult s2 = ztslm(gen + " --seed 42");
  EXPECT_EQ(s1.out, s2.out);
  // Chat: the synthetic vocabulary carries a ChatML template.
  const ProcResult c = ztslm(gen + " --chat --system 'be brief' --temp 0");
  EXPECT_EQ(c.exit_code, 0) << c.err;
  std::filesystem::remove(path);
}

TEST(CliTest, BadInputGivesAClearErrorAndExitCode) {
  const ProcResult missing = ztslm("model inspect /nonexistent/model.gguf");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("cannot open"), std::string::npos) << missing.err;

  // A truncated model file.
  const std::string path = temp_path("truncated.gguf");
  {
    std::ofstream out(path, std::ios::binary);
    out << "GGUF\x03";
  }
  const ProcResult trunc = ztslm("generate -p hi -m " + quote(path));
  EXPECT_EQ(trunc.exit_code, 1);
  EXPECT_NE(trunc.err.find("Malformed"), std::string::npos) << trunc.err;
  std::filesystem::remove(path);

  ZTSLM_REQUIRE_SHARED();
  const std::string model = quote(testing::testdata_path("models/tiny-llama-spm-Q8_0.gguf"));
  const ProcResult temp = ztslm("generate -p hi --temp -1 -m " + model);
  EXPECT_EQ(temp.exit_code, 2);
  EXPECT_NE(temp.err.find("temperature"), std::string::npos) << temp.err;
  const ProcResult ctx = ztslm("generate -c 8 -m " + model + " -p 'a prompt that is far longer than eight tokens'");
  EXPECT_NE(ctx.exit_code, 0);
  EXPECT_NE(ctx.err.find("does not fit"), std::string::npos) << ctx.err;
  const ProcResult bad_tok = ztslm("model logits --tokens 1,99999999 -m " + model);
  EXPECT_EQ(bad_tok.exit_code, 2);
  const ProcResult bad_type = ztslm("model synth --preset smollm2-135m --type Q3_K_XS -o " + quote(temp_path("x")));
  EXPECT_EQ(bad_type.exit_code, 2);
  EXPECT_FALSE(std::filesystem::exists(temp_path("x")));
}

}  // namespace
}  // namespace ztslm
