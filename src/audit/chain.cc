#include "audit/chain.h"

#include <array>
#include <cstring>
#include <utility>

#include "core/byte_reader.h"
#include "core/utf8.h"

namespace ztslm::audit {
namespace {

constexpr std::array<std::string_view, 7> kTypes = {"open",  "recovery", "request", "admin",
                                                    "anomaly", "event",  "checkpoint"};

bool is_hex64(const Json& v) {
  if (!v.is_string()) return false;
  const std::string& s = v.get_ref<const std::string&>();
  uint8_t buf[32];
  return from_hex(s, buf);
}

const Json* member(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

}  // namespace

std::string ChainWriter::frame(std::string_view type, std::string_view body_json, int64_t ts_us,
                               std::string* without_hash) {
  // The members in canonical (sorted) order; "hash" goes between "body" and "prev".
  std::string tail;
  tail.reserve(160);
  tail.append(",\"prev\":\"").append(head_.prev_hash).append("\",\"seq\":");
  tail.append(std::to_string(head_.next_seq)).append(",\"ts\":").append(std::to_string(ts_us));
  tail.append(",\"type\":\"").append(type).append("\",\"v\":1}");
  without_hash->clear();
  without_hash->reserve(9 + body_json.size() + tail.size());
  without_hash->append("{\"body\":").append(body_json).append(tail);
  return tail;
}

std::string ChainWriter::append(std::string_view type, std::string_view body_json, int64_t ts_us,
                                std::string* out) {
  std::string unhashed;
  const std::string tail = frame(type, body_json, ts_us, &unhashed);
  std::string hash = sha256_hex(unhashed);
  out->append("{\"body\":").append(body_json).append(",\"hash\":\"").append(hash).append("\"");
  out->append(tail).push_back('\n');
  head_.prev_hash = hash;
  ++head_.next_seq;
  ++since_checkpoint_;
  return hash;
}

Result<std::string> ChainWriter::append_checkpoint(const Signer& signer, std::string_view reason,
                                                   bool closing, int64_t ts_us, std::string* out) {
  Json body = {{"closing", closing},
               {"pubkey", signer.public_key_hex()},
               {"reason", std::string(reason)},
               {"records", since_checkpoint_}};
  std::string body_json = canonical_dump(body);
  std::string unsigned_line;
  (void)frame("checkpoint", body_json, ts_us, &unsigned_line);
  std::string message(kCheckpointDomain);
  message.append(unsigned_line);
  ZTSLM_ASSIGN_OR_RETURN(std::string sig, signer.sign_hex(message));
  // "sig" sorts after every other body member: insert it before the closing brace.
  body_json.pop_back();
  body_json.append(",\"sig\":\"").append(sig).append("\"}");
  std::string hash = append("checkpoint", body_json, ts_us, out);
  since_checkpoint_ = 0;
  return hash;
}

ChainVerifier::ChainVerifier(VerifyOptions options)
    : options_(std::move(options)), parser_(options_.limits) {}

bool ChainVerifier::fail(std::string reason) {
  failed_ = true;
  report_.ok = false;
  report_.bad_line = report_.n_lines;
  report_.reason = std::move(reason);
  return false;
}

bool ChainVerifier::feed(std::string_view line) {
  if (failed_) return false;
  ++report_.n_lines;
  const Status st = check_record(line);
  if (!st.ok()) return fail(st.message());
  ++report_.n_records;
  return true;
}

namespace {

// Envelope and content hash of one record; fills `summary` and `unhashed` (the record without
// "hash", for the signature check).
Status check_envelope(const Json& rec, RecordSummary* summary, Json* unhashed) {
  static constexpr const char* kMembers[] = {"body", "hash", "prev", "seq", "ts", "type", "v"};
  if (rec.size() != std::size(kMembers)) {
    return Status::malformed("record has {} members, expected {}", rec.size(),
                             std::size(kMembers));
  }
  for (const char* m : kMembers) {
    if (member(rec, m) == nullptr) return Status::malformed("record lacks \"{}\"", m);
  }
  const Json& v = rec["v"];
  if (!v.is_number_integer() || v.get<int64_t>() != 1) {
    return Status::malformed("unsupported record version");
  }
  const Json& seq = rec["seq"];
  if (!seq.is_number_unsigned() && !(seq.is_number_integer() && seq.get<int64_t>() >= 0)) {
    return Status::malformed("seq is not a non-negative integer");
  }
  if (!rec["ts"].is_number_integer()) return Status::malformed("ts is not an integer");
  if (!rec["body"].is_object()) return Status::malformed("body is not an object");
  if (!is_hex64(rec["hash"]) || !is_hex64(rec["prev"])) {
    return Status::malformed("hash or prev is not 64 lowercase hex characters");
  }
  const Json& type_v = rec["type"];
  if (!type_v.is_string()) return Status::malformed("type is not a string");
  summary->type = type_v.get<std::string>();
  bool known = false;
  for (std::string_view t : kTypes) known = known || t == summary->type;
  if (!known) return Status::malformed("unknown record type {}", printable(summary->type, 32));
  summary->seq = seq.get<uint64_t>();
  summary->hash = rec["hash"].get<std::string>();
  // Content: any change to the record shows up here.
  *unhashed = rec;
  unhashed->erase("hash");
  if (sha256_hex(canonical_dump(*unhashed)) != summary->hash) {
    return Status::malformed("hash does not match the record's content (record modified)");
  }
  const Json* closing = member(rec["body"], "closing");
  summary->closing = summary->type == "checkpoint" && closing != nullptr &&
                     closing->is_boolean() && closing->get<bool>();
  return Status();
}

}  // namespace

Result<RecordSummary> check_single_record(std::string_view line, RecordParser& parser) {
  ZTSLM_ASSIGN_OR_RETURN(Json rec, parser.parse(line));
  RecordSummary summary;
  Json unhashed;
  ZTSLM_TRY(check_envelope(rec, &summary, &unhashed));
  return summary;
}

Status ChainVerifier::check_record(std::string_view line) {
  ZTSLM_ASSIGN_OR_RETURN(Json rec, parser_.parse(line));
  RecordSummary summary;
  Json unhashed;
  // Chain links first, so that a removed, reordered or inserted record is named as such.
  const Json* seq = member(rec, "seq");
  const Json* prev = member(rec, "prev");
  if (seq != nullptr && seq->is_number_integer() && seq->get<int64_t>() >= 0 &&
      seq->get<uint64_t>() != expect_.next_seq) {
    return Status::malformed("seq {} where {} was expected (record removed, reordered or "
                             "inserted)", seq->get<uint64_t>(), expect_.next_seq);
  }
  if (prev != nullptr && prev->is_string() && *prev != expect_.prev_hash) {
    return Status::malformed("prev does not match the hash of the previous record (record "
                             "removed, reordered, inserted or modified)");
  }
  ZTSLM_TRY(check_envelope(rec, &summary, &unhashed));
  if (summary.seq != expect_.next_seq || rec["prev"] != expect_.prev_hash) {
    return Status::malformed("record is not linked to its predecessor");
  }
  return check_session(rec, summary, unhashed);
}

Status ChainVerifier::check_session(const Json& rec, const RecordSummary& summary,
                                    Json& unhashed) {
  const std::string& type = summary.type;
  const std::string& hash = summary.hash;
  const Json& body = rec["body"];
  if (type == "open" || type == "recovery") {
    if (in_session_ && !session_closed_ && type == "open") {
      return Status::malformed("open record after a session that ended without a closing "
                               "checkpoint (expected a recovery record)");
    }
    if (in_session_ && session_closed_ && type == "recovery") {
      return Status::malformed("recovery record after a cleanly closed session");
    }
    const Json* pub = member(body, "pubkey");
    if (pub == nullptr || !is_hex64(*pub)) {
      return Status::malformed("{} record lacks a valid pubkey", type);
    }
    const std::string& pub_s = pub->get_ref<const std::string&>();
    if (options_.pinned_pubkey && pub_s != *options_.pinned_pubkey) {
      return Status::permission_denied("session key {}... is not the pinned public key",
                                       pub_s.substr(0, 16));
    }
    if (type == "recovery") {
      const Json* last = member(body, "last_good_hash");
      if (last == nullptr || !last->is_string() || *last != rec["prev"]) {
        return Status::malformed("recovery record's last_good_hash is not the previous hash");
      }
      ++report_.n_recoveries;
    }
    session_pubkey_ = pub_s;
    in_session_ = true;
    session_closed_ = false;
    since_checkpoint_ = 0;
    ++report_.n_sessions;
  } else {
    if (!in_session_) return Status::malformed("log does not start with an open record");
    if (session_closed_) {
      return Status::malformed("{} record after the closing checkpoint", type);
    }
    if (type == "checkpoint") {
      const Json* closing = member(body, "closing");
      const Json* pub = member(body, "pubkey");
      const Json* reason = member(body, "reason");
      const Json* records = member(body, "records");
      const Json* sig = member(body, "sig");
      if (body.size() != 5 || closing == nullptr || !closing->is_boolean() || pub == nullptr ||
          !pub->is_string() || reason == nullptr || !reason->is_string() || records == nullptr ||
          !records->is_number_integer() || sig == nullptr || !sig->is_string()) {
        return Status::malformed("checkpoint body is malformed");
      }
      if (*pub != session_pubkey_) {
        return Status::malformed("checkpoint key differs from the session's key");
      }
      if (records->get<int64_t>() < 0 || records->get<uint64_t>() != since_checkpoint_) {
        return Status::malformed("checkpoint counts {} records, {} were written since the last",
                                 records->get<int64_t>(), since_checkpoint_);
      }
      unhashed["body"].erase("sig");
      std::string message(kCheckpointDomain);
      message.append(canonical_dump(unhashed));
      if (!ed25519_verify(session_pubkey_, message, sig->get_ref<const std::string&>())) {
        return Status::permission_denied("checkpoint signature does not verify");
      }
      ++report_.n_checkpoints;
      report_.signer_pubkey = session_pubkey_;
      session_closed_ = closing->get<bool>();
      since_checkpoint_ = 0;
      expect_.prev_hash = hash;
      ++expect_.next_seq;
      report_.last_hash = hash;
      report_.unsigned_tail = 0;
      report_.closed = session_closed_;
      return Status();
    }
  }
  ++since_checkpoint_;
  expect_.prev_hash = hash;
  ++expect_.next_seq;
  report_.last_hash = hash;
  ++report_.unsigned_tail;
  report_.closed = false;
  return Status();
}

VerifyReport ChainVerifier::finish(size_t torn_tail_bytes) {
  if (failed_) return report_;
  if (torn_tail_bytes > 0) {
    ++report_.n_lines;
    fail(str_format("truncated tail: the last line has {} bytes and no newline",
                    torn_tail_bytes));
    return report_;
  }
  if (report_.n_records == 0) {
    ++report_.n_lines;
    fail("empty log");
    return report_;
  }
  if (!report_.closed && !options_.allow_open_tail) {
    ++report_.n_lines;
    fail(str_format("log ends without a closing checkpoint: {} records after the last signed "
                    "checkpoint (truncated tail, or a log still open: use --live)",
                    report_.unsigned_tail));
    return report_;
  }
  report_.ok = true;
  report_.bad_line = 0;
  return report_;
}

VerifyReport verify_bytes(std::string_view file, const VerifyOptions& options) {
  ChainVerifier verifier(options);
  ByteReader in(as_bytes(file));
  while (!in.empty()) {
    const std::string_view rest = in.as_string_view();
    const size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) return verifier.finish(rest.size());
    std::span<const std::byte> line;
    (void)in.read_bytes(nl, &line);
    (void)in.skip(1);
    if (!verifier.feed(std::string_view(reinterpret_cast<const char*>(line.data()), line.size()))) {
      break;
    }
  }
  return verifier.finish(0);
}

}  // namespace ztslm::audit
