// The data directory rule (core/data_dir.h) through the real binary: in the build tree, with
// $ZTSLM_DATA_DIR, and in a tree installed by `cmake --install` (the package layout).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/run_ztslm.h"

namespace ztslm {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs a shell command; returns its exit code and stdout.
int run(const std::string& cmd, std::string* out) {
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[65536];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(PathsTest, TheBuildTreeBinaryReadsTheSourceCheckout) {
  unsetenv("ZTSLM_DATA_DIR");
  const testing::ProcResult r = testing::run_ztslm("paths --state-dir /tmp/ztslm-paths-state");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(std::string("data_dir  ") + ZTSLM_SOURCE_DIR + " (source checkout)\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("config    embedded default\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("state_dir /tmp/ztslm-paths-state\n"), std::string::npos) << r.out;
  // The shipped guard model is found from any working directory.
  const testing::ProcResult scan = testing::run_ztslm("scan --json --input - </dev/null");
  ASSERT_EQ(scan.exit_code, 0) << scan.err;
  EXPECT_FALSE(nlohmann::json::parse(scan.out)["input"]["injection"]["rules_only"].get<bool>()) << scan.out;
}

TEST(PathsTest, TheEnvironmentOverridesTheDataDirectory) {
  const std::string dir = ::testing::TempDir() + "ztslm_data_" + std::to_string(getpid());
  fs::create_directories(dir);
  setenv("ZTSLM_DATA_DIR", (dir + "/").c_str(), 1);
  const testing::ProcResult r = testing::run_ztslm("paths --state-dir /tmp/s");
  unsetenv("ZTSLM_DATA_DIR");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("data_dir  " + dir + " (ZTSLM_DATA_DIR)\n"), std::string::npos) << r.out;
  fs::remove_all(dir);
}

TEST(PathsTest, AnInstalledTreeFindsItsDataNextToTheExecutable) {
  unsetenv("ZTSLM_DATA_DIR");
  const fs::path prefix =
      fs::weakly_canonical(::testing::TempDir() + "ztslm_install_" + std::to_string(getpid()));
  fs::remove_all(prefix);
  std::string log;
  ASSERT_EQ(run(std::string(ZTSLM_CMAKE_COMMAND) + " --install '" + ZTSLM_BUILD_DIR + "' --prefix '" +
                    prefix.string() + "' 2>&1",
                &log),
            0)
      << log;

  // The layout of packaging/CMakeLists.txt.
  const fs::path bin = prefix / "bin/ztslm";
  const fs::path data = prefix / "share/ztslm";
  ASSERT_TRUE(fs::exists(bin)) << log;
  EXPECT_EQ(read_file(prefix / "etc/ztslm/ztslm.yaml"),
            read_file(fs::path(ZTSLM_SOURCE_DIR) / "config/ztslm.yaml"));
  EXPECT_TRUE(fs::is_regular_file(data / "policy/default.rego"));
  EXPECT_TRUE(fs::is_regular_file(data / "models/guard/injection.ztim"));
  EXPECT_TRUE(fs::is_directory(data / "trust"));
  EXPECT_TRUE(fs::is_regular_file(prefix / "share/doc/ztslm/README.md"));
  // Debian's machine-readable copyright file, naming the project and what is compiled into it.
  const std::string copyright = read_file(prefix / "share/doc/ztslm/copyright");
  EXPECT_EQ(copyright.rfind("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n", 0), 0u)
      << copyright.substr(0, 200);
  for (const char* want : {"\nUpstream-Name: ztslm\n", "\nFiles: *\n", "\nLicense: BSD-3-clause\n",
                           "\nLicense: Expat\n", "\nLicense: BSL-1.0\n", "\nLicense: Unicode-DFS-2016\n"}) {
    EXPECT_NE(copyright.find(want), std::string::npos) << want;
  }
  // Debian's changelog, gzip -9n: no file name and no timestamp in the header (reproducible),
  // its newest entry naming the project version.
  const fs::path changelog = prefix / "share/doc/ztslm/changelog.Debian.gz";
  const std::string gz = read_file(changelog);
  ASSERT_GE(gz.size(), 18u);
  EXPECT_EQ(gz.substr(0, 3), std::string("\x1f\x8b\x08", 3));
  EXPECT_EQ(gz[3], '\0') << "gzip header flags (FNAME)";
  EXPECT_EQ(gz.substr(4, 4), std::string(4, '\0')) << "gzip header mtime";
  EXPECT_EQ(gz[8], '\x02') << "gzip -9";
  std::string text;
  ASSERT_EQ(run("gzip -dc '" + changelog.string() + "'", &text), 0);
  EXPECT_EQ(text.rfind("ztslm (" ZTSLM_PROJECT_VERSION ") unstable; urgency=", 0), 0u) << text;
  EXPECT_NE(text.find("\n -- ztslm maintainers <ztslm@localhost>  "), std::string::npos) << text;
  const std::string unit = read_file(prefix / "lib/systemd/system/ztslm.service");
  EXPECT_NE(unit.find("ExecStart=" + bin.string() + " serve --config " + (prefix / "etc/ztslm/ztslm.yaml").string() +
                      " --state-dir %S/ztslm\n"),
            std::string::npos)
      << unit;
  for (const char* line : {"ProtectSystem=strict\n", "NoNewPrivileges=yes\n", "CapabilityBoundingSet=\n",
                           "PrivateTmp=yes\n", "User=ztslm\n", "StateDirectory=ztslm\n"}) {
    EXPECT_NE(unit.find(line), std::string::npos) << line;
  }

  // The installed binary, run from elsewhere, reads its data from prefix/share/ztslm.
  std::string out;
  ASSERT_EQ(run("cd / && '" + bin.string() + "' paths --state-dir /tmp/s", &out), 0) << out;
  EXPECT_NE(out.find("data_dir  " + data.string() + " (next to the executable)\n"), std::string::npos) << out;
  out.clear();
  ASSERT_EQ(run("cd / && '" + bin.string() + "' scan --json --input - </dev/null", &out), 0) << out;
  EXPECT_FALSE(nlohmann::json::parse(out)["input"]["injection"]["rules_only"].get<bool>()) << out;
  out.clear();
  ASSERT_EQ(run("'" + bin.string() + "' serve --print-default-config", &out), 0);
  EXPECT_EQ(out, read_file(prefix / "etc/ztslm/ztslm.yaml"));
  out.clear();
  EXPECT_EQ(run("'" + bin.string() + "' policy test '" + (data / "policy").string() + "' 2>&1", &out), 0) << out;
  fs::remove_all(prefix);
}

}  // namespace
}  // namespace ztslm
