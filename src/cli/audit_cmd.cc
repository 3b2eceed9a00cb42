// `ztslm audit verify|tail`: check an audit log's hash chain and signatures, follow a log.
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "audit/chain.h"
#include "audit/keys.h"
#include "audit/log_reader.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/utf8.h"

namespace ztslm::cli {
namespace {

struct VerifyArgs {
  std::string file;
  std::string pubkey;
  bool live = false;
  bool json = false;
  size_t max_line_bytes = audit::ParseLimits().max_line_bytes;
};

struct TailArgs {
  std::string file;
  bool follow = false;
  size_t last_n = 10;
  size_t max_line_bytes = audit::ParseLimits().max_line_bytes;
};

int verify(const VerifyArgs& a) {
  audit::VerifyOptions opt;
  opt.allow_open_tail = a.live;
  opt.limits.max_line_bytes = a.max_line_bytes;
  if (!a.pubkey.empty()) {
    auto key = audit::read_public_key(a.pubkey);
    if (!key.has_value()) {
      return fail(Status(StatusCode::kInvalidArgument, key.error().message()));
    }
    opt.pinned_pubkey = *key;
  }
  auto report = audit::verify_file(a.file, opt);
  if (!report.has_value()) return fail(report.error());
  const audit::VerifyReport& r = *report;
  if (a.json) {
    nlohmann::json out = {{"file", a.file},
                          {"ok", r.ok},
                          {"records", r.n_records},
                          {"checkpoints", r.n_checkpoints},
                          {"sessions", r.n_sessions},
                          {"recoveries", r.n_recoveries},
                          {"unsigned_tail", r.unsigned_tail},
                          {"closed", r.closed},
                          {"signer", r.signer_pubkey},
                          {"pinned", opt.pinned_pubkey.has_value()}};
    if (!r.ok) {
      out["bad_line"] = r.bad_line;
      out["reason"] = r.reason;
    }
    std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return r.ok ? 0 : 1;
  }
  const std::string name = printable(a.file, 200);
  if (!r.ok) {
    std::fprintf(stderr, "%s: line %llu: %s\n", name.c_str(),
                 static_cast<unsigned long long>(r.bad_line), r.reason.c_str());
    std::fprintf(stderr, "%s: FAILED after %llu good records\n", name.c_str(),
                 static_cast<unsigned long long>(r.n_records));
    return 1;
  }
  std::printf("%s: OK: %llu records, %llu checkpoints, %llu sessions (%llu recovered)\n",
              name.c_str(), static_cast<unsigned long long>(r.n_records),
              static_cast<unsigned long long>(r.n_checkpoints),
              static_cast<unsigned long long>(r.n_sessions),
              static_cast<unsigned long long>(r.n_recoveries));
  if (r.unsigned_tail > 0) {
    std::printf("%s: warning: the last %llu records are not covered by a signature yet\n",
                name.c_str(), static_cast<unsigned long long>(r.unsigned_tail));
  }
  if (opt.pinned_pubkey) {
    std::printf("%s: signed by the pinned key %s\n", name.c_str(), r.signer_pubkey.c_str());
  } else {
    std::printf("%s: warning: signed by %s, which the log names itself; pass --pubkey to pin it\n",
                name.c_str(), r.signer_pubkey.c_str());
  }
  return 0;
}

int tail(const TailArgs& a) {
  audit::TailOptions opt;
  opt.follow = a.follow;
  opt.last_n = a.last_n;
  opt.limits.max_line_bytes = a.max_line_bytes;
  const Status st = audit::tail_file(
      a.file, opt,
      [](std::string_view line) {
        std::fwrite(line.data(), 1, line.size(), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
      },
      [](uint64_t line_no, const Status& why) {
        std::fprintf(stderr, "ztslm: line %llu skipped: %s\n",
                     static_cast<unsigned long long>(line_no), why.message().c_str());
      });
  return st.ok() ? 0 : fail(st);
}

}  // namespace

void register_audit_commands(CLI::App& app) {
  CLI::App* audit = app.add_subcommand("audit", "audit log: verify the hash chain, follow the log");
  audit->require_subcommand(1);

  static VerifyArgs v;
  CLI::App* vc = audit->add_subcommand(
      "verify", "check every record's hash link and every checkpoint signature; exit 1 and name "
                "the first bad line on any defect");
  vc->add_option("file", v.file, "audit log file")->required();
  vc->add_option("--pubkey", v.pubkey,
                 "Ed25519 public key to pin: 64 hex characters or a file holding them "
                 "(audit-signing.pub in the state directory)");
  vc->add_flag("--live", v.live,
               "accept records after the last checkpoint (a log still being written)");
  vc->add_flag("--json", v.json, "print the report as JSON");
  vc->add_option("--max-line-bytes", v.max_line_bytes, "longest record accepted")
      ->capture_default_str();
  vc->callback([] { set_exit_code(verify(v)); });

  static TailArgs t;
  CLI::App* tc = audit->add_subcommand("tail", "print the last records, and new ones with -f");
  tc->add_option("file", t.file, "audit log file")->required();
  tc->add_flag("-f,--follow", t.follow, "keep printing records as they are appended");
  tc->add_option("-n,--lines", t.last_n, "how many of the last records to print first")
      ->capture_default_str();
  tc->add_option("--max-line-bytes", t.max_line_bytes, "longest record accepted")
      ->capture_default_str();
  tc->callback([] { set_exit_code(tail(t)); });
}

}  // namespace ztslm::cli
