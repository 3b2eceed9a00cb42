// Registration of the `ztslm` subcommands (one file per command group in cli/).
#pragma once

#include <CLI/CLI.hpp>

namespace ztslm::cli {

inline constexpr const char* kVersion = "0.1.0";

// Adds every subcommand to `app`. Each command's callback stores its exit code.
void register_commands(CLI::App& app);

void register_generate_command(CLI::App& app);
void register_bench_command(CLI::App& app);
void register_model_commands(CLI::App& app);

// Exit code set by the command that ran (0 when none set one).
int last_exit_code();
void set_exit_code(int code);

}  // namespace ztslm::cli
