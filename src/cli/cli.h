// `ztslm` command-line entry point: parses arguments and dispatches to the subcommands.
#pragma once

namespace ztslm::cli {

// Runs the command line `argv`; returns the process exit code.
int run(int argc, char** argv);

}  // namespace ztslm::cli
