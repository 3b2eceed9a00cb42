// Fuzz target for the audit log reader and verifier (audit/chain.h, audit/canonical.h).
// Properties:
//  1. verify_bytes() and check_single_record() never crash on any input;
//  2. a log framed by ChainWriter from input-derived records (arbitrary bytes in every string)
//     verifies, with the pinned key;
//  3. flipping any single bit of that log is detected: canonical form leaves no ignorable byte.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "audit/chain.h"
#include "audit/keys.h"
#include "core/check.h"

namespace {

using namespace ztslm::audit;

const Signer& fuzz_signer() {
  static const Signer signer = [] {
    std::array<uint8_t, kKeyBytes> seed;
    seed.fill(0x5a);
    return Signer::from_seed(SecretKey(seed)).value();
  }();
  return signer;
}

std::string build_log(std::string_view in) {
  const Signer& signer = fuzz_signer();
  ChainWriter w;
  std::string out;
  int64_t ts = 1;
  w.start_session();
  w.append("open", canonical_dump(Json{{"pubkey", signer.public_key_hex()}}), ts, &out);
  const size_t n_records = in.empty() ? 1 : static_cast<uint8_t>(in[0]) % 6 + 1;
  const size_t every = in.size() < 2 ? 3 : static_cast<uint8_t>(in[1]) % 4 + 1;
  const size_t slice = in.size() / n_records + 1;
  for (size_t i = 0; i < n_records; ++i) {
    const std::string_view part = in.substr(std::min(in.size(), i * slice)).substr(0, slice);
    Json body = {{"principal", std::string(part)},
                 {"tokens", static_cast<uint64_t>(part.size())},
                 {"reasons", Json::array({std::string(part.substr(0, 3))})}};
    w.append(i % 2 == 0 ? "request" : "admin", canonical_dump(body), ++ts, &out);
    if (w.records_since_checkpoint() >= every) {
      ZTSLM_CHECK(w.append_checkpoint(signer, "count", false, ++ts, &out).has_value());
    }
  }
  ZTSLM_CHECK(w.append_checkpoint(signer, "close", true, ++ts, &out).has_value());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  VerifyOptions small;
  small.limits.max_line_bytes = 1 << 16;
  (void)verify_bytes(in, small);
  VerifyOptions live = small;
  live.allow_open_tail = true;
  (void)verify_bytes(in, live);
  RecordParser parser(small.limits);
  (void)check_single_record(in.substr(0, in.find('\n')), parser);

  const std::string log = build_log(in);
  VerifyOptions pinned;
  pinned.pinned_pubkey = fuzz_signer().public_key_hex();
  const VerifyReport ok = verify_bytes(log, pinned);
  ZTSLM_CHECK(ok.ok && ok.closed);

  uint32_t pick = 2166136261u;  // FNV-1a of the input chooses the bit to flip
  for (uint8_t b : in) pick = (pick ^ b) * 16777619u;
  std::string flipped = log;
  const size_t pos = pick % flipped.size();
  flipped[pos] = static_cast<char>(static_cast<uint8_t>(flipped[pos]) ^ (1u << (pick >> 29)));
  ZTSLM_CHECK(!verify_bytes(flipped, pinned).ok);
  return 0;
}
