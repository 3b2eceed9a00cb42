// `ztslm serve` runs only trusted models: the real binary, real signature bundles made with
// `ztslm model sign` and the ECDSA key fixtures of ../shared, a real TLS client. A refused model
// leaves no listener and nothing in the state directory; a served one names its digest in every
// model route response, in /v1/models, in the policy input and in every audit record.
#include <fcntl.h>
#include <poll.h>
#include <strings.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/run_ztslm.h"
#include "provenance/crypto.h"
#include "provenance/encoding.h"
#include "sandbox/lockdown.h"
#include "server/e2e_util.h"
#include "test_util.h"

namespace ztslm {
namespace {

namespace fs = std::filesystem;
using ::ztslm::server::bearer;
using ::ztslm::server::curl_request;
using ::ztslm::server::HttpResp;
using ::ztslm::testing::run_ztslm;
using ::ztslm::testing::shell_quote;
using ::ztslm::testing::testdata_path;
using nlohmann::json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// `ztslm serve` as a child process. start() returns once it listens (true) or has exited
// (false); stdout and stderr are collected through pipes.
class ServeProcess {
 public:
  ~ServeProcess() { stop(); }

  // `cwd`: the working directory of the process ("" = this one's).
  bool start(const std::vector<std::string>& args, const std::string& cwd = "") {
    std::string bin = ZTSLM_BINARY;
    std::vector<std::string> copy = args;
    std::vector<char*> argv = {bin.data()};
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) return false;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out_pipe[1], 1);
      ::dup2(err_pipe[1], 2);
      if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    out_fd_ = out_pipe[0];
    err_fd_ = err_pipe[0];
    // The listen line comes after the model load; 120 s bounds a hung server, not a timing.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
      if (port_from_stdout() != 0) return true;
      if (!pump(1000)) break;  // both pipes closed: the process ended
    }
    wait_exit();
    return false;
  }

  // SIGTERM, then wait; returns the exit code (or -1).
  int stop() {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, SIGTERM);
    return wait_exit();
  }

  uint16_t port() const { return port_from_stdout(); }
  std::string admin_key() const {
    const std::string tag = "admin API key (shown once, store it now): ";
    const size_t at = out_.find(tag);
    if (at == std::string::npos) return "";
    const size_t end = out_.find('\n', at);
    return out_.substr(at + tag.size(), end - at - tag.size());
  }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }
  int exit_code() const { return exit_code_; }

 private:
  uint16_t port_from_stdout() const {
    const size_t at = out_.find("ztslm serve: https://");
    if (at == std::string::npos || out_.find('\n', at) == std::string::npos) return 0;
    const size_t colon = out_.find(':', at + 21);
    return static_cast<uint16_t>(std::stoi(out_.substr(colon + 1)));
  }

  // Reads what is available within `timeout_ms`; false once both pipes are at end of file.
  bool pump(int timeout_ms) {
    pollfd p[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    if (out_fd_ < 0 && err_fd_ < 0) return false;
    if (::poll(p, 2, timeout_ms) <= 0) return true;
    char buf[4096];
    int* fds[2] = {&out_fd_, &err_fd_};
    std::string* dst[2] = {&out_, &err_};
    for (int i = 0; i < 2; ++i) {
      if (*fds[i] < 0 || (p[i].revents & (POLLIN | POLLHUP)) == 0) continue;
      const ssize_t n = ::read(*fds[i], buf, sizeof buf);
      if (n > 0) {
        dst[i]->append(buf, static_cast<size_t>(n));
      } else {
        ::close(*fds[i]);
        *fds[i] = -1;
      }
    }
    return out_fd_ >= 0 || err_fd_ >= 0;
  }

  int wait_exit() {
    if (pid_ <= 0) return exit_code_;
    while (pump(1000)) {
    }
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return exit_code_;
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_;
  std::string err_;
  int exit_code_ = -1;
};

class ServeTrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ZTSLM_REQUIRE_SHARED();
    dir_ = fs::path(::testing::TempDir()) / ("ztslm_serve_trust_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    keys_ = testdata_path("model-signing/generated/keys");
    model_ = (dir_ / "m.gguf").string();
    fs::copy_file(testdata_path("models/tiny-llama-spm-Q8_0.gguf"), model_);
    state_ = (dir_ / "state").string();
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Signs the model with the fixture key `key` ("p256-signing-key" is publisher acme's,
  // "p256-wrong-key" publisher other's).
  void sign(const std::string& key) {
    const auto r = run_ztslm("model sign --key " + shell_quote(keys_ + "/" + key + ".pem") + " " + shell_quote(model_));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // A config trusting acme (and `other` when asked), with `model_extra` lines under model:.
  std::string config(const std::string& model_extra, bool trust_other = false,
                     const std::string& policy = "") const {
    std::string y = "listen: {port: 0}\nstate_dir: " + state_ + "\n";
    y += "model:\n  path: " + model_ + "\n  id: qwen2-0.5b-instruct\n  n_ctx: 64\n  threads: 1\n" + model_extra;
    // The engine in one sandboxed worker, which maps the verified memfd.
    y += "worker:\n  count: 1\n  threads: 1\n  allow_degraded_lockdown: ";
    y += sandbox::landlock_abi_version() == 0 ? "true\n" : "false\n";
    y += "trust:\n  publishers:\n    - {name: acme, public_key_file: " + keys_ + "/p256-signing-key-pub.pem}\n";
    if (trust_other) y += "    - {name: other, public_key_file: " + keys_ + "/p256-wrong-key-pub.pem}\n";
    if (!policy.empty()) y += "policy: {path: " + policy + "}\n";
    const std::string path = (dir_ / ("cfg" + std::to_string(n_configs_++) + ".yaml")).string();
    write_file(path, y);
    return path;
  }

  // Starts serve with `cfg` expecting a refusal: a non-zero exit, `reason` on stderr, no
  // listener, and nothing created in the state directory.
  void expect_refused(const std::string& cfg, const std::string& reason, int exit_code = 1) {
    ServeProcess p;
    EXPECT_FALSE(p.start({"serve", "--config", cfg})) << "served a model that must be refused\n" << p.out();
    EXPECT_EQ(p.exit_code(), exit_code) << p.err();
    EXPECT_NE(p.err().find(reason), std::string::npos) << "stderr: " << p.err();
    EXPECT_EQ(p.out().find("https://"), std::string::npos) << p.out();
    EXPECT_EQ(p.out().find("admin API key"), std::string::npos);
    EXPECT_FALSE(fs::exists(state_)) << "a refused start created " << state_;
  }

  std::string sha256_of_model() const {
    const std::string bytes = read_file(model_);
    return "sha256:" + provenance::hex_encode(provenance::sha256(std::as_bytes(std::span(bytes))));
  }

  // The audit log's lines as JSON objects.
  std::vector<json> audit_lines() const {
    std::vector<json> out;
    std::istringstream in(read_file(state_ + "/audit.log"));
    std::string line;
    while (std::getline(in, line)) out.push_back(json::parse(line, nullptr, false));
    return out;
  }

  fs::path dir_;
  std::string keys_;
  std::string model_;
  std::string state_;
  mutable int n_configs_ = 0;
};

std::string header_value(const std::string& headers, const std::string& name) {
  std::istringstream in(headers);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > name.size() + 1 && strncasecmp(line.c_str(), name.c_str(), name.size()) == 0 &&
        line[name.size()] == ':') {
      std::string v = line.substr(name.size() + 1);
      while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
      while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
      return v;
    }
  }
  return "";
}

const std::string kChat =
    json({{"model", "qwen2-0.5b-instruct"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}},
          {"max_tokens", 3}, {"temperature", 0}})
        .dump();

TEST_F(ServeTrustTest, RefusesAnUnsignedModel) { expect_refused(config(""), "missing signature"); }

TEST_F(ServeTrustTest, RefusesAModelChangedAfterSigning) {
  sign("p256-signing-key");
  {
    std::fstream f(model_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(4096);
    const char c = static_cast<char>(f.get());
    f.seekp(4096);
    f.put(static_cast<char>(c ^ 0x01));
  }
  expect_refused(config(""), "digest mismatch");
}

TEST_F(ServeTrustTest, RefusesATruncatedModel) {
  sign("p256-signing-key");
  fs::resize_file(model_, fs::file_size(model_) - 1);
  expect_refused(config(""), "digest mismatch");
}

TEST_F(ServeTrustTest, RefusesAModelReSignedByAnUntrustedKey) {
  sign("p256-signing-key");
  sign("p256-wrong-key");  // overwrites m.gguf.sig
  expect_refused(config(""), "untrusted key");
}

TEST_F(ServeTrustTest, RefusesATrustedSignerThatIsNotThePinnedPublisher) {
  sign("p256-wrong-key");  // publisher "other" is trusted, but the model is pinned to acme
  expect_refused(config("  publisher: acme\n", /*trust_other=*/true), "not the pinned publisher");
  // Without the pin the same signature is accepted.
  ServeProcess p;
  ASSERT_TRUE(p.start({"serve", "--config", config("", /*trust_other=*/true)})) << p.err();
  EXPECT_EQ(p.stop(), 0);
}

TEST_F(ServeTrustTest, RefusesASignatureThatDoesNotVerify) {
  // acme's valid signature over other bytes, spliced into the model's bundle.
  sign("p256-signing-key");
  json bundle = json::parse(read_file(model_ + ".sig"));
  const std::string other = (dir_ / "other.gguf").string();
  write_file(other, "some other bytes");
  const auto r = run_ztslm("model sign --key " + shell_quote(keys_ + "/p256-signing-key.pem") + " " + shell_quote(other));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json foreign = json::parse(read_file(other + ".sig"));
  bundle["dsseEnvelope"]["signatures"][0]["sig"] = foreign["dsseEnvelope"]["signatures"][0]["sig"];
  write_file(model_ + ".sig", bundle.dump());
  expect_refused(config(""), "invalid signature");
}

TEST_F(ServeTrustTest, TrustConfigErrorsExitWith2) {
  sign("p256-signing-key");
  expect_refused(config("  publisher: nobody\n"), "model.publisher", 2);
  const std::string bad = (dir_ / "bad.yaml").string();
  write_file(bad, "model: {path: " + model_ + "}\ntrust:\n  publishers:\n    - {name: x, public_key_file: " +
                      (dir_ / "missing.pem").string() + "}\nstate_dir: " + state_ + "\n");
  expect_refused(bad, "trust publisher x", 2);
}

TEST_F(ServeTrustTest, SignedModelServesWithItsDigestEverywhere) {
  sign("p256-signing-key");
  const std::string digest = sha256_of_model();
  ServeProcess p;
  ASSERT_TRUE(p.start({"serve", "--config", config("")})) << p.err();
  EXPECT_EQ(p.err().find("WARNING"), std::string::npos) << p.err();
  const std::string ca = state_ + "/tls/ca.pem";
  const std::string key = p.admin_key();
  ASSERT_FALSE(key.empty()) << p.out();

  const HttpResp models = curl_request(p.port(), ca, "GET", "/v1/models", "", {bearer(key)});
  ASSERT_EQ(models.status, 200) << models.body;
  EXPECT_EQ(header_value(models.headers, "X-Model-Digest"), digest);
  const json m = models.j()["data"][0];
  EXPECT_EQ(m["id"], "qwen2-0.5b-instruct");
  EXPECT_EQ(m["ztslm"]["digest"], digest);
  EXPECT_EQ(m["ztslm"]["signer"], "acme");
  EXPECT_EQ(m["ztslm"]["verified"], true);

  const HttpResp chat = curl_request(p.port(), ca, "POST", "/v1/chat/completions", kChat, {bearer(key)});
  ASSERT_EQ(chat.status, 200) << chat.body;
  EXPECT_EQ(header_value(chat.headers, "X-Model-Digest"), digest);
  json streaming = json::parse(kChat);
  streaming["stream"] = true;
  const HttpResp stream = curl_request(p.port(), ca, "POST", "/v1/chat/completions", streaming.dump(), {bearer(key)});
  ASSERT_EQ(stream.status, 200) << stream.body;
  EXPECT_EQ(header_value(stream.headers, "X-Model-Digest"), digest);
  // Unauthenticated callers learn nothing about the model.
  const HttpResp anon = curl_request(p.port(), ca, "GET", "/v1/models");
  EXPECT_EQ(anon.status, 401);
  EXPECT_EQ(header_value(anon.headers, "X-Model-Digest"), "");
  ASSERT_EQ(p.stop(), 0) << p.err();

  // The load event, then every request record (the 401 and the worker's start included) carries
  // digest and signer.
  bool load_event = false;
  int n_requests = 0;
  for (const json& line : audit_lines()) {
    ASSERT_TRUE(line.is_object());
    if (line["type"] == "event" && line["body"].dump().find("model.verified") != std::string::npos) {
      load_event = line["body"].dump().find(digest) != std::string::npos;
    }
    if (line["type"] == "request") {
      if (line["body"]["route"] != "worker") ++n_requests;
      EXPECT_EQ(line["body"]["model"]["digest"], digest) << line.dump();
      EXPECT_EQ(line["body"]["model"]["signer"], "acme") << line.dump();
    }
  }
  EXPECT_TRUE(load_event);
  EXPECT_EQ(n_requests, 4);
}

// A config file naming the model, the publisher key and the state directory relative to itself
// serves from any working directory (systemd starts services in /).
TEST_F(ServeTrustTest, RelativePathsInTheConfigResolveAgainstItsDirectory) {
  sign("p256-signing-key");
  fs::copy_file(keys_ + "/p256-signing-key-pub.pem", dir_ / "k.pem");
  std::string y = "listen: {port: 0}\nstate_dir: state\n";
  y += "model:\n  path: m.gguf\n  id: qwen2-0.5b-instruct\n  n_ctx: 64\n  threads: 1\n";
  y += "worker:\n  count: 1\n  threads: 1\n  allow_degraded_lockdown: ";
  y += sandbox::landlock_abi_version() == 0 ? "true\n" : "false\n";
  y += "trust:\n  publishers:\n    - {name: acme, public_key_file: k.pem}\n";
  write_file((dir_ / "relative.yaml").string(), y);
  const fs::path elsewhere = dir_ / "elsewhere";
  fs::create_directories(elsewhere);

  ServeProcess p;
  ASSERT_TRUE(p.start({"serve", "--config", (dir_ / "relative.yaml").string()}, elsewhere.string())) << p.err();
  EXPECT_NE(p.out().find("state " + state_), std::string::npos) << p.out();
  const HttpResp models = curl_request(p.port(), state_ + "/tls/ca.pem", "GET", "/v1/models", "", {bearer(p.admin_key())});
  ASSERT_EQ(models.status, 200) << models.body;
  EXPECT_EQ(models.j()["data"][0]["ztslm"]["signer"], "acme");
  EXPECT_EQ(models.j()["data"][0]["ztslm"]["digest"], sha256_of_model());
  ASSERT_EQ(p.stop(), 0) << p.err();
  EXPECT_TRUE(fs::is_empty(elsewhere)) << "serve wrote into its working directory";

  // Command-line paths keep resolving against the working directory: --model m.gguf from
  // `elsewhere` names a file that is not there.
  ServeProcess q;
  EXPECT_FALSE(q.start({"serve", "--config", (dir_ / "relative.yaml").string(), "--model", "m.gguf"},
                       elsewhere.string()));
  EXPECT_NE(q.exit_code(), 0);
  EXPECT_NE(q.err().find("model m.gguf refused"), std::string::npos) << q.err();
}

TEST_F(ServeTrustTest, AllowUnsignedServesLoudlyAsUnverified) {
  ServeProcess p;
  ASSERT_TRUE(p.start({"serve", "--config", config("  allow_unsigned: true\n")})) << p.err();
  EXPECT_NE(p.err().find("WARNING: model.allow_unsigned is set"), std::string::npos) << p.err();
  const std::string ca = state_ + "/tls/ca.pem";
  const HttpResp models = curl_request(p.port(), ca, "GET", "/v1/models", "", {bearer(p.admin_key())});
  ASSERT_EQ(models.status, 200) << models.body;
  const json m = models.j()["data"][0];
  EXPECT_EQ(m["ztslm"]["verified"], false);
  EXPECT_EQ(m["ztslm"]["signer"], "unverified");
  EXPECT_EQ(m["ztslm"]["digest"], sha256_of_model());
  EXPECT_EQ(header_value(models.headers, "X-Model-Digest"), sha256_of_model());
  ASSERT_EQ(p.stop(), 0) << p.err();
  bool event = false;
  for (const json& line : audit_lines()) {
    if (line["type"] == "event" && line["body"].dump().find("model.unverified") != std::string::npos) event = true;
  }
  EXPECT_TRUE(event) << read_file(state_ + "/audit.log");
}

// A policy that admits only a model signed by acme, with a digest: the provenance reaches the
// policy input of the real gateway. (policy/default.rego admits an unverified model when the
// operator set model.allow_unsigned; unit tests in tests/server cover its verified rule.)
constexpr const char* kProvenancePolicy = R"(package ztslm.authz
import rego.v1
default allow := false
allow if {
  "user" in input.principal.roles
  input.model.verified == true
  input.model.signer == "acme"
  startswith(input.model.digest, "sha256:")
}
reasons contains "model provenance is not verified" if not input.model.verified == true
)";

TEST_F(ServeTrustTest, PolicyDecidesOnTheProvenance) {
  sign("p256-signing-key");
  const std::string policy_dir = (dir_ / "policy").string();
  fs::create_directories(policy_dir);
  write_file(policy_dir + "/authz.rego", kProvenancePolicy);
  const std::string shipped = std::string(ZTSLM_SOURCE_DIR) + "/policy/default.rego";
  struct Case {
    const char* name;
    bool verified;
    std::string policy;
    long status;
  } cases[] = {
      {"shipped default, verified", true, shipped, 200},
      {"provenance policy, verified", true, policy_dir, 200},
      {"provenance policy, unverified", false, policy_dir, 403},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    fs::remove_all(state_);
    fs::create_directories(state_);
    // A principal with role user only.
    const auto created = run_ztslm("keys create --db " + shell_quote(state_ + "/keys.db") + " --tenant t1 --role user");
    ASSERT_EQ(created.exit_code, 0) << created.err;
    std::string user_key = created.out;
    while (!user_key.empty() && user_key.back() == '\n') user_key.pop_back();
    ServeProcess p;
    const std::string extra = c.verified ? "" : "  allow_unsigned: true\n";
    ASSERT_TRUE(p.start({"serve", "--config", config(extra, false, c.policy)})) << p.err();
    const HttpResp chat =
        curl_request(p.port(), state_ + "/tls/ca.pem", "POST", "/v1/chat/completions", kChat, {bearer(user_key)});
    EXPECT_EQ(chat.status, c.status) << chat.body;
    ASSERT_EQ(p.stop(), 0) << p.err();
    bool denied_for_provenance = false;
    for (const json& line : audit_lines()) {
      if (line["type"] == "request" && line["body"].dump().find("model provenance is not verified") != std::string::npos) {
        denied_for_provenance = true;
      }
    }
    EXPECT_EQ(denied_for_provenance, c.status == 403);
  }
}

}  // namespace
}  // namespace ztslm
