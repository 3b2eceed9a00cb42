// `--help` for every command: walks the command tree that the binary registers (cli/commands.h)
// and runs `ztslm <path> --help` through the real executable for each command path.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/run_ztslm.h"

namespace ztslm {
namespace {

struct Command {
  std::string path;  // "model synth"
  std::string description;
  std::vector<std::string> undocumented_options;
};

void collect(const CLI::App& app, const std::string& prefix, std::vector<Command>& out) {
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name().empty()) continue;  // option groups are not commands
    Command c;
    c.path = prefix.empty() ? sub->get_name() : prefix + " " + sub->get_name();
    c.description = sub->get_description();
    for (const CLI::Option* opt : sub->get_options()) {
      if (opt->get_description().empty()) c.undocumented_options.push_back(opt->get_name());
    }
    out.push_back(c);
    collect(*sub, c.path, out);
  }
}

std::vector<Command> all_commands() {
  CLI::App app{"ztslm"};
  cli::register_commands(app);
  std::vector<Command> out;
  collect(app, "", out);
  return out;
}

TEST(HelpTest, TheCommandTreeIsTheOneDocumented) {
  const std::vector<Command> cmds = all_commands();
  std::vector<std::string> paths;
  for (const Command& c : cmds) paths.push_back(c.path);
  // The commands DESIGN.md's CLI section lists are all there.
  for (const char* want : {"serve", "generate", "bench", "keys create", "keys list", "keys revoke", "policy eval",
                           "policy test", "model sign", "model verify", "model inspect", "model synth", "scan",
                           "audit verify", "audit tail", "worker", "paths"}) {
    EXPECT_NE(std::find(paths.begin(), paths.end(), want), paths.end()) << want;
  }
}

TEST(HelpTest, EveryCommandAndOptionHasADescription) {
  for (const Command& c : all_commands()) {
    EXPECT_FALSE(c.description.empty()) << "ztslm " << c.path << " has no description";
    for (const std::string& o : c.undocumented_options) {
      ADD_FAILURE() << "ztslm " << c.path << ": option " << o << " has no description";
    }
  }
}

TEST(HelpTest, EveryCommandPathPrintsItsHelpThroughTheBinary) {
  const std::vector<Command> cmds = all_commands();
  ASSERT_GT(cmds.size(), 15u);
  for (const Command& c : cmds) {
    const testing::ProcResult r = testing::run_ztslm(c.path + " --help");
    EXPECT_EQ(r.exit_code, 0) << "ztslm " << c.path << " --help: " << r.err;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << c.path;
    if (!c.description.empty()) {
      // CLI11 prints the description first; the first line of it is enough to recognise.
      const std::string first_line = c.description.substr(0, c.description.find('\n'));
      EXPECT_NE(r.out.find(first_line), std::string::npos) << "ztslm " << c.path << " --help:\n" << r.out;
    }
  }
  const testing::ProcResult top = testing::run_ztslm("--help");
  EXPECT_EQ(top.exit_code, 0);
  for (const Command& c : cmds) {
    if (c.path.find(' ') == std::string::npos) {
      EXPECT_NE(top.out.find(c.path), std::string::npos) << c.path;
    }
  }
}

}  // namespace
}  // namespace ztslm
