// Registration of the `ztslm` subcommands (one file per command group in cli/).
#pragma once

#include <CLI/CLI.hpp>

namespace ztslm::cli {

inline constexpr const char* kVersion = "0.1.0";

// Adds every subcommand to `app`. Each command's callback stores its exit code.
void register_commands(CLI::App& app);

void register_generate_command(CLI::App& app);
void register_bench_command(CLI::App& app);
void register_model_commands(CLI::App& app);       // model inspect|logits|synth
void register_serve_commands(CLI::App& app);       // serve
void register_worker_commands(CLI::App& app);      // worker (internal)
void register_keys_commands(CLI::App& app);        // keys create|list|revoke
void register_policy_commands(CLI::App& app);      // policy eval|test|check
void register_guard_commands(CLI::App& app);       // scan, guard train|eval
void register_audit_commands(CLI::App& app);       // audit verify|tail
void register_provenance_commands(CLI::App& app);  // model sign|verify
void register_paths_command(CLI::App& app);        // paths

// Exit code set by the command that ran (0 when none set one).
int last_exit_code();
void set_exit_code(int code);

}  // namespace ztslm::cli
