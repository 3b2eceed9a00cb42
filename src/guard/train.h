// Training and evaluation of the injection detector's learned tier (`ztslm guard train|eval`).
//
// Data: labelled lines of ../shared/corpus/injection-dev.jsonl, parsed by the caller. Only
// lines whose source licence permits training (MIT, Apache-2.0, BSD, CC-BY; not CC BY-SA, AGPL,
// ODC-BY-with-terms or unknown) and whose category is an injection/jailbreak or benign category
// (not harmful-request*) are trained on. A fixed hash of the line id puts 30 % of all lines into
// a held-out test split that is never trained on; evaluation reports on that split.
// Everything is deterministic from the seed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "guard/injection.h"

namespace ztslm::guard {

struct Example {
  std::string id;
  std::string text;
  bool is_attack = false;
  std::string category;
  std::string source;
};

// The licence of the repository named in `source` ("owner/repo@commit:path", or our generator
// with "<-<original source>"), or "" when unknown.
std::string source_licence(std::string_view source);
// True when that licence permits shipping a model trained on the line.
bool licence_allows_training(std::string_view source);
// harmful-request* lines are content moderation, not injection: never trained on, reported
// separately.
bool is_harmful_category(std::string_view category);
// The issue 5 goal group: injection-*, jailbreak-* and obfuscated-* categories.
bool in_goal_group(std::string_view category);
// True for the 30 % held-out test split (a hash of `id`).
bool in_test_split(std::string_view id);

struct TrainParams {
  uint64_t seed = 5;
  int epochs = 6;
  double learning_rate = 0.3;  // AdaGrad step
  double l2 = 1e-6;
  uint32_t n_buckets = 1u << 18;
  double target_fpr = 0.01;  // the shipped threshold: this FPR on out-of-fold training benign
  int threshold_folds = 3;
  // Give rules that never fired on benign training text a score floor. Off by default: on the
  // held-out split it lowered TPR at 1 % FPR (70.0 % vs 73.9 %), see docs/guard-injection-eval.md.
  bool rule_floors = false;
  uint32_t features = 0;  // kFeature* bits (injection.h)
  // Class weights: each class contributes half of the loss; within the attack class each
  // category may be weighted by (lines of the category)^-category_power (0: plain).
  double category_power = 0.5;
  // Weight of the indirect-injection categories' lines relative to the others (0 leaves them
  // out of training).
  double indirect_weight = 1.0;
  // Weight of benign document lines (e-mails wrapped in an assistant prompt: the benign twins of
  // indirect injections) relative to other benign lines, applied after class balancing.
  double benign_document_weight = 1.0;
  // Train on the inserted instruction of each indirect-injection line instead of the whole
  // document: the span that differs from the training line sharing the longest common prefix
  // and suffix with it (another copy of the same document). Lines without such a twin are left
  // out. The document text itself then never counts as attack evidence.
  bool indirect_spans = true;
  // After the first epoch, each line's gradient goes into its best-scoring candidate (view,
  // window or decoded payload), the one the detector's maximum picks.
  bool multiple_instance = false;
  // Step size of the curated rules' weights relative to the n-gram weights. Above 1 it lifts
  // benign look-alikes that match a rule (docs/guard-injection-eval.md).
  double rule_lr_scale = 1.0;
  // The same for the obfuscation signals (injection_signal_names()): they fire on few lines,
  // nearly all attacks, and need a large step to weigh enough (the CV winner).
  double signal_lr_scale = 10.0;
  // Obfuscated copies of plain training attacks: each trainable attack line (not already
  // obfuscated, not indirect) also trains as one copy, transformed by a generic obfuscation
  // picked by a hash of its id (zero-width characters inside words, Cyrillic homoglyphs,
  // leetspeak, letters spelled out with spaces), in category "augmented-obfuscation". Hiding
  // an instruction's words from filters is itself the attack; the copies teach the obfuscation
  // signals and the de-obfuscated views from training data only. Off: not better in CV.
  bool augment_obfuscation = false;
  // Direct injections (injection-* categories) that embed a benign training line (a benign
  // question followed by the injection, as in the deepset set) train without that line: the
  // benign question itself is not attack evidence, and its benign twin otherwise scores high.
  // Off: not better in CV (cross_validate_injection takes twins from the training folds only).
  bool benign_twins = false;
  // Weight of the augmented copies relative to their category weight (the copies are one
  // category of as many lines as the plain attacks, which would otherwise outweigh each real
  // category).
  double augment_weight = 1.0;
  uint32_t augment_kinds = 15;  // bit k: obfuscation kind k of obfuscate_for_training
  // The copies train the signal weights only (not the rules, the n-grams or the bias) and do
  // not count in the class balance.
  bool augment_rules_only = true;
};

// The obfuscated copy of `text` that augment_obfuscation trains on (kind = `variant` % 4).
std::string obfuscate_for_training(std::string_view text, uint64_t variant);

struct TrainSummary {
  size_t n_train = 0, n_train_attack = 0;
  size_t n_excluded_licence = 0, n_excluded_harmful = 0, n_test = 0;
  size_t n_augmented = 0;  // obfuscated copies (TrainParams::augment_obfuscation)
  std::vector<std::string> sources;  // distinct source repositories trained on
};

// Trains on the training split of `examples` (filters above). `summary` may be null.
Result<InjectionModel> train_injection_model(const std::vector<Example>& examples,
                                             const TrainParams& params, TrainSummary* summary);

// k-fold cross-validation inside the training split (folds by a second hash of the id; the
// held-out test split is never read). Lines of the training split that are never trained on
// (licence, harmful-request*) are scored by every fold's model as extra negatives/positives of
// their category. Returns a markdown summary: out-of-fold TPR at 1 % FPR for the goal group and
// all non-harmful attacks, AUC, and per-category rates at that threshold. `goal_tpr` receives
// the goal-group TPR when not null.
// `scores`, when not null, receives one line per training-split example: its out-of-fold
// score, label, category and id (tab-separated), for error analysis inside the training split.
Result<std::string> cross_validate_injection(const std::vector<Example>& examples,
                                             const TrainParams& params, int folds,
                                             double* goal_tpr, std::string* scores = nullptr);

// Metrics helpers.
double roc_auc(const std::vector<double>& pos, const std::vector<double>& neg);
// Score threshold at which at most `fpr` of `neg` score >= it (the smallest such value).
double threshold_at_fpr(std::vector<double> neg, double fpr);

// Evaluates `detector` on the test split of `examples` and returns a markdown report (per
// category TPR at 1 % FPR, AUC, precision/recall/FPR at the shipped threshold, latency).
Result<std::string> evaluate_injection(const InjectionDetector& detector,
                                       const std::vector<Example>& examples,
                                       std::string_view header);

}  // namespace ztslm::guard
