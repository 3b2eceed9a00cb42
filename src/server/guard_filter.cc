#include "server/guard_filter.h"

namespace ztslm::server {
namespace {

class RedactingFilter final : public OutputFilter {
 public:
  explicit RedactingFilter(const guard::RedactionPolicy& p) : redactor_(p) {}

  std::string on_chunk(std::string_view text, bool& stop) override {
    auto out = redactor_.push(text);
    // SECURITY: a redactor failure stops the stream rather than letting text through unchecked.
    if (!out.has_value() || redactor_.blocked()) stop = true;
    return out.has_value() ? std::move(out).value() : std::string();
  }
  std::string finish() override {
    auto out = redactor_.finish();
    return out.has_value() && !redactor_.blocked() ? std::move(out).value() : std::string();
  }
  std::map<std::string, uint32_t> findings() const override {
    std::map<std::string, uint32_t> m;
    for (const auto& f : redactor_.findings()) ++m[std::string(guard::dlp_type_name(f.type))];
    return m;
  }

 private:
  guard::StreamRedactor redactor_;
};

}  // namespace

std::unique_ptr<OutputFilter> RedactingFilterFactory::create() {
  return std::make_unique<RedactingFilter>(policy_);
}

}  // namespace ztslm::server
