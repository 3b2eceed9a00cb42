#include "cli/cli.h"

#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"

namespace ztslm::cli {

int run(int argc, char** argv) {
  CLI::App app{"ztslm: a Zero Trust server for small language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("ztslm ") + kVersion);
  register_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  return last_exit_code();
}

}  // namespace ztslm::cli
