// Prompt-injection / jailbreak detector for one message part.
//
// Tier 1: curated rules, compiled once into a Hyperscan database, run over the analysis view
// (NFKC, case folded, confusable skeleton, invisibles removed), its ROT13, reversed and
// de-leeted forms, and every decoded payload (base64, hex, URL, tag characters, variation
// selectors). Tier 2: a logistic-regression model over hashed word uni/bi-grams and byte
// 3..5-grams of the analysis view, its windows, the decoded payloads, (when the text is
// recognised as leetspeak) the de-leeted view and (when letters are spelled out one by one)
// the view with those letters joined, plus one learned weight per rule and per obfuscation
// signal (injection_signal_names()). The score is the model's probability, maximised over
// those candidates; the reasons are the rules that fired, "model" when the learned part alone
// crosses the threshold on the analysis view, the decoded encodings and views
// ("decoded:leetspeak", "decoded:spaced_letters"), Unicode smuggling kinds, and the word
// obfuscation signals ("obfuscation:split_words", "obfuscation:invisible_in_words",
// "obfuscation:mixed_script_words").
//
// A rule that was precise on the training data also sets a floor under the score: the
// smoothed fraction of its training hits that were attacks, (attacks + 1) / (hits + 2).
//
// Model file (little-endian): "ZTIM" | u32 version=3 | u32 n_buckets (power of two, <= 2^22)
// | u32 n_rules | u32 feature_flags (version 3 only; only known bits) | f32 bias | f32 threshold
// | f32 scale | i16 weights[n_buckets] (times scale) | f32 rule_weights[n_rules]
// | f32 rule_floors[n_rules]. Version 2 files (no feature_flags: flags 0) are still read. The
// scale must be positive and keep every weight finite. The manifest next to it (JSON) names
// the training data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ztslm::guard {

// Where a message part came from: direct user input, or indirect (tool results, documents).
enum class PartSource : uint8_t { kUser, kSystem, kTool, kDocument };

// The curated rules (name of each rule, index = rule id).
std::span<const char* const> injection_rule_names();
// Obfuscation signals that the model weighs like rules (after the rules in a model's rule
// weights): each Unicode smuggling kind present, each payload encoding decoded, leetspeak
// (several words mixing letters with look-alike digits), words split over many short lines,
// invisible characters inside words (3 or more with a letter on each side), words mixing Latin
// with Greek or Cyrillic letters (2 or more) and letters spelled out with spaces (a run of 6 or
// more). New signals are only ever appended: a model file with fewer signal weights loads with
// the missing ones at 0.
std::span<const char* const> injection_signal_names();

// Hashed sparse features of one view: bucket indices (repeats allowed) and the common value
// 1/sqrt(n) of each occurrence.
struct FeatureVector {
  std::vector<uint32_t> buckets;
  float value = 0.0f;
};

// Feature-set bits of a model (stored in the file). 0 is the version 2 set: byte 3..5-grams
// and word 1..2-grams of the view, every occurrence counted.
inline constexpr uint32_t kFeatureWordTrigrams = 1u << 0;  // word 3-grams too
inline constexpr uint32_t kFeatureBinary = 1u << 1;        // each distinct feature counts once
inline constexpr uint32_t kFeatureSqueezed = 1u << 2;  // byte 4..5-grams of the view without
                                                       // spaces and punctuation (split words)
inline constexpr uint32_t kKnownFeatures = (1u << 3) - 1;

// Features of analysis-view text `view` into `n_buckets` (a power of two). At most
// `max_bytes` of the view are read.
FeatureVector extract_features(std::string_view view, uint32_t n_buckets, uint32_t features = 0,
                               size_t max_bytes = 64u << 10);

// Long views are also scored in windows, so that a short instruction inside a long document is
// not diluted: windows of kWindowBytes every kWindowStride bytes (cut at UTF-8 boundaries).
inline constexpr size_t kWindowBytes = 512;
inline constexpr size_t kWindowStride = 256;
inline constexpr size_t kMaxWindows = 64;
// The features of the whole view followed by those of each window (one entry for short views).
std::vector<FeatureVector> view_features(std::string_view view, uint32_t n_buckets,
                                         uint32_t features = 0);

struct InjectionModel {
  uint32_t n_buckets = 1u << 18;
  uint32_t features = 0;  // kFeature* bits
  float bias = 0.0f;
  float threshold = 0.5f;
  std::vector<float> weights;       // [n_buckets]
  // [n_rules]: the rules, then (optionally) the signals. A model with weights for the rules
  // only gives the signals weight 0.
  std::vector<float> rule_weights;
  std::vector<float> rule_floors;   // [n_rules], in [0, 1]

  // Linear score (logit) of one view's features plus rule hits.
  double logit(const FeatureVector& f, std::span<const uint8_t> rule_hits) const;
  // The highest floor among the rules that fired (0 when none).
  double floor(std::span<const uint8_t> rule_hits) const;

  // Serialises to the file format above (weights quantised to i16).
  std::vector<std::byte> serialize() const;
  // Parses a model file. kMalformed for a bad magic/version/size, kResourceExhausted when
  // n_buckets exceeds 2^22 or n_rules exceeds 4096.
  static Result<InjectionModel> parse(std::span<const std::byte> bytes);
};

struct InjectionResult {
  double score = 0.0;  // [0, 1]
  bool is_attack = false;
  std::vector<std::string> reasons;  // rule names, "model", "decoded:<encoding>", smuggling kinds
};

struct InjectionLimits {
  size_t max_text_bytes = 1u << 20;  // longer parts are scored on their first MiB
};

// Rule hits and views of one text, as used by both the detector and the trainer.
struct AnalysedText {
  std::string view;                          // the analysis view
  std::vector<std::string> payload_views;    // analysis views of decoded payloads
  std::vector<std::string> payload_kinds;    // encoding name of each payload view
  std::vector<uint8_t> rule_hits;            // [rules + signals], 1 when it fired on any view
  std::vector<std::string> smuggling;        // unicode finding kinds present
};

class InjectionDetector final {
 public:
  // Compiles the rules; the detector owns `model`. kInternal if the rules do not compile;
  // kInvalidArgument when the model's rule count differs from the rule table.
  static Result<std::unique_ptr<InjectionDetector>> create(InjectionModel model);
  ~InjectionDetector();
  InjectionDetector(const InjectionDetector&) = delete;
  InjectionDetector& operator=(const InjectionDetector&) = delete;

  // Views and rule hits of valid UTF-8 `text` (invalid UTF-8 is analysed after replacing bad
  // bytes; callers reject it earlier with check_input).
  Result<AnalysedText> analyse(std::string_view text) const;
  // Scores one message part. Indirect parts (kTool, kDocument) use the same model; callers
  // spotlight them per policy.
  Result<InjectionResult> score(std::string_view text, PartSource source = PartSource::kUser) const;
  // Probability for an already analysed text (the trainer's evaluation path).
  double probability(const AnalysedText& a) const;
  // The same, and the probability of the learned part alone on the analysis view (rules left
  // out) in `*model_only` when not null.
  double probability(const AnalysedText& a, double* model_only) const;

  const InjectionModel& model() const { return model_; }

 private:
  InjectionDetector() = default;
  struct Rules;
  std::unique_ptr<Rules> rules_;
  InjectionModel model_;
};

// Rule hits only (no model), for training: same views as InjectionDetector::analyse.
Result<AnalysedText> analyse_for_training(std::string_view text);

}  // namespace ztslm::guard
