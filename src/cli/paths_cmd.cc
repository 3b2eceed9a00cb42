// `ztslm paths`: where this binary reads its data and keeps its state, and why (core/data_dir.h,
// server::resolve_state_dir). For operators checking an install and for the packaging tests.
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/data_dir.h"
#include "server/config/config.h"

namespace ztslm::cli {
namespace {

struct PathsArgs {
  std::string config;
  std::string state_dir;
};

int run_paths(const PathsArgs& a) {
  auto cfg = a.config.empty() ? server::default_config() : server::load_config_file(a.config);
  if (!cfg.has_value()) return fail(cfg.error());
  if (!a.state_dir.empty()) cfg->state_dir = a.state_dir;
  const DataDir data = data_dir();
  std::printf("data_dir  %s (%s)\n", data.path.c_str(), data.origin.c_str());
  std::printf("config    %s\n", a.config.empty() ? "embedded default" : a.config.c_str());
  auto state = server::resolve_state_dir(*cfg);
  if (!state.has_value()) return fail(state.error());
  std::printf("state_dir %s\n", state->c_str());
  return 0;
}

}  // namespace

void register_paths_command(CLI::App& app) {
  static PathsArgs a;
  CLI::App* cmd = app.add_subcommand(
      "paths", "print the data directory (policy, models, trust keys) and state directory in use");
  cmd->add_option("-c,--config", a.config, "YAML config file applied over the embedded default");
  cmd->add_option("--state-dir", a.state_dir, "state directory (overrides state_dir)");
  cmd->callback([] { set_exit_code(run_paths(a)); });
}

}  // namespace ztslm::cli
