#include "guard/train.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <map>
#include <memory>
#include <set>

namespace ztslm::guard {
namespace {

struct Licence {
  const char* repo;
  const char* licence;
  const char* path_excluded;  // a file of that repository with other terms, or nullptr
};

// Sources of ../shared/corpus (README.md). "unclear" and share-alike entries are listed so the
// exclusion is explicit.
constexpr Licence kLicences[] = {
    {"NVIDIA/garak", "Apache-2.0", nullptr},
    {"Giskard-AI/giskard", "Apache-2.0", nullptr},
    {"sherdencooper/GPTFuzz", "MIT", nullptr},
    {"sinanw/llm-security-prompt-injection", "MIT", nullptr},
    {"microsoft/BIPIA", "MIT", nullptr},
    {"DAMO-NLP-SG/multilingual-safety-for-LLMs", "MIT", nullptr},
    {"paul-rottger/exaggerated-safety", "CC-BY-4.0", nullptr},
    {"leolee99/InjecGuard", "MIT", "datasets/wildguard.json"},
    {"arnav-gudibande/koala-test-set", "Apache-2.0", nullptr},
    {"lm-sys/FastChat", "Apache-2.0", nullptr},
    {"yizhongw/self-instruct", "Apache-2.0", nullptr},
    {"openai/grade-school-math", "MIT", nullptr},
    {"google-deepmind/xquad", "CC-BY-SA-4.0", nullptr},
    {"trufflesecurity/trufflehog", "AGPL-3.0", nullptr},
};

bool permissive(std::string_view licence) {
  return licence == "MIT" || licence == "Apache-2.0" || licence == "BSD" ||
         licence == "CC-BY-4.0" || licence == "ztslm";
}

uint64_t hash64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

// splitmix64: a small deterministic generator (identical on every platform).
struct SplitMix {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

struct Prepared {
  FeatureVector f;
  std::vector<FeatureVector> windows;  // long texts: the window features (scoring only)
  std::vector<uint8_t> rules;
  float y = 0.0f;
  std::string category;
  bool rules_only = false;  // trains the rule and signal weights only (augmented copies)
};

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

InjectionModel fit(const std::vector<const Prepared*>& data, const TrainParams& p, uint64_t seed) {
  InjectionModel m;
  m.n_buckets = p.n_buckets;
  m.weights.assign(p.n_buckets, 0.0f);
  const size_t n_curated = injection_rule_names().size();
  const size_t n_rules = n_curated + injection_signal_names().size();
  m.rule_weights.assign(n_rules, 0.0f);
  std::vector<float> g2(p.n_buckets, 0.0f), g2_rules(n_rules, 0.0f);
  float g2_bias = 0.0f;
  // Balance the classes: each class contributes half of the loss; inside a class, a category
  // of c lines weighs c^-category_power per line.
  std::map<std::string, size_t> cat_lines;
  for (const Prepared* e : data) ++cat_lines[e->category];
  std::vector<double> weight(data.size(), 1.0);
  double sum_pos = 0.0, sum_neg = 0.0;
  for (size_t i = 0; i < data.size(); ++i) {
    weight[i] = std::pow(static_cast<double>(cat_lines[data[i]->category]), -p.category_power);
    if (data[i]->category.rfind("indirect-", 0) == 0) weight[i] *= p.indirect_weight;
    if (data[i]->category == "augmented-obfuscation") weight[i] *= p.augment_weight;
    // Copies that train the signals only do not take weight from the real lines.
    if (!data[i]->rules_only) (data[i]->y > 0.5f ? sum_pos : sum_neg) += weight[i];
  }
  for (size_t i = 0; i < data.size(); ++i) {
    const double class_sum = data[i]->y > 0.5f ? sum_pos : sum_neg;
    weight[i] *= class_sum > 0.0 ? 0.5 * static_cast<double>(data.size()) / class_sum : 1.0;
    if (data[i]->category.rfind("benign-document", 0) == 0) weight[i] *= p.benign_document_weight;
  }
  // Floors: smoothed attack fraction of each rule's hits.
  m.rule_floors.assign(n_rules, 0.0f);
  for (size_t r = 0; r < n_rules; ++r) {
    size_t hits = 0, attack = 0;
    for (const Prepared* e : data) {
      if (!e->rules[r]) continue;
      ++hits;
      attack += e->y > 0.5f ? 1 : 0;
    }
    // Only rules that never fired on benign training text, with enough support, get a floor.
    if (p.rule_floors && hits >= 20 && attack == hits) {
      m.rule_floors[r] = static_cast<float>((static_cast<double>(attack) + 1.0) / (static_cast<double>(hits) + 2.0));
    }
  }
  std::vector<size_t> order(data.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  SplitMix rng{seed};
  constexpr float kEps = 1e-8f;
  const float lr = static_cast<float>(p.learning_rate);
  for (int epoch = 0; epoch < p.epochs; ++epoch) {
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    for (const size_t idx : order) {
      const Prepared& e = *data[idx];
      // Multiple-instance step: the candidate the detector would score (the best of the view,
      // its windows and payload views) takes the gradient; benign lines (and attacks without
      // candidates) train on the whole view.
      const FeatureVector* x = &e.f;
      if (p.multiple_instance && epoch > 0) {
        double best = m.logit(e.f, {});
        for (const FeatureVector& w : e.windows) {
          const double z = m.logit(w, {});
          if (z > best) {
            best = z;
            x = &w;
          }
        }
      }
      const double prob = sigmoid(m.logit(*x, e.rules));
      const float g = static_cast<float>((prob - e.y) * weight[idx]);
      const float gv = g * x->value;
      // Augmented copies teach the obfuscation signals only: the curated rules fired on the
      // plain line already.
      for (size_t r = e.rules_only ? n_curated : 0; r < n_rules; ++r) {
        if (!e.rules[r]) continue;
        g2_rules[r] += g * g;
        const double scale = r < n_curated ? p.rule_lr_scale : p.signal_lr_scale;
        m.rule_weights[r] -= static_cast<float>(scale) * lr * g / (std::sqrt(g2_rules[r]) + kEps);
      }
      if (e.rules_only) continue;
      for (const uint32_t b : x->buckets) {
        const float grad = gv + static_cast<float>(p.l2) * m.weights[b];
        g2[b] += grad * grad;
        m.weights[b] -= lr * grad / (std::sqrt(g2[b]) + kEps);
      }
      g2_bias += g * g;
      m.bias -= lr * g / (std::sqrt(g2_bias) + kEps);
    }
  }
  return m;
}

// The detector's scoring: the maximum over the whole view and its windows.
double model_probability(const InjectionModel& m, const Prepared& e) {
  double best = m.logit(e.f, e.rules);
  for (const FeatureVector& w : e.windows) best = std::max(best, m.logit(w, e.rules));
  return std::max(sigmoid(best), m.floor(e.rules));
}

std::string pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %%", 100.0 * v);
  return buf;
}
std::string num(double v, int digits = 3) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

std::string source_licence(std::string_view source) {
  const std::string_view generated = "generated:corpus_gen.py";
  if (source.substr(0, generated.size()) == generated) {
    const size_t arrow = source.find("<-");
    if (arrow == std::string_view::npos) return "ztslm";  // our own generator's text
    return source_licence(source.substr(arrow + 2));
  }
  for (const Licence& l : kLicences) {
    const std::string_view repo = l.repo;
    if (source.substr(0, repo.size()) == repo && source.size() > repo.size() &&
        source[repo.size()] == '@') {
      if (l.path_excluded != nullptr && source.find(l.path_excluded) != std::string_view::npos) {
        return "ODC-BY-1.0+AI2-terms";
      }
      return l.licence;
    }
  }
  return "";
}

bool licence_allows_training(std::string_view source) { return permissive(source_licence(source)); }

bool is_harmful_category(std::string_view category) {
  return category.substr(0, 15) == "harmful-request";
}

bool in_goal_group(std::string_view category) {
  return category.substr(0, 10) == "injection-" || category.substr(0, 10) == "jailbreak-" ||
         category.substr(0, 11) == "obfuscated-";
}

bool in_test_split(std::string_view id) { return (hash64(id) >> 11) % 10 < 3; }

std::string obfuscate_for_training(std::string_view text, uint64_t variant) {
  SplitMix rng{hash64(text) ^ variant};
  const uint64_t kind = variant % 4;
  std::string out;
  out.reserve(text.size() * 3);
  auto alpha = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool next_alpha = i + 1 < text.size() && alpha(text[i + 1]);
    switch (kind) {
      case 0: {  // zero-width characters between the letters of words
        out.push_back(c);
        static constexpr const char* kZw[] = {"\xE2\x80\x8B", "\xE2\x80\x8C", "\xE2\x80\x8D",
                                              "\xE2\x81\xA0", "\xEF\xBB\xBF"};
        if (alpha(c) && next_alpha && rng.below(5) < 2) out += kZw[rng.below(5)];
        break;
      }
      case 1: {  // Cyrillic look-alikes for Latin letters
        static constexpr struct { char latin; const char* cyrillic; } kHomo[] = {
            {'a', "\xD0\xB0"}, {'c', "\xD1\x81"}, {'e', "\xD0\xB5"}, {'o', "\xD0\xBE"},
            {'p', "\xD1\x80"}, {'x', "\xD1\x85"}, {'y', "\xD1\x83"}, {'i', "\xD1\x96"},
            {'s', "\xD1\x95"}, {'A', "\xD0\x90"}, {'E', "\xD0\x95"}, {'O', "\xD0\x9E"},
            {'T', "\xD0\xA2"}, {'H', "\xD0\x9D"}, {'C', "\xD0\xA1"}, {'P', "\xD0\xA0"}};
        const char* sub = nullptr;
        for (const auto& h : kHomo) {
          if (h.latin == c) sub = h.cyrillic;
        }
        if (sub != nullptr && rng.below(3) < 2) out += sub;
        else out.push_back(c);
        break;
      }
      case 2: {  // leetspeak
        static constexpr struct { char letter, digit; } kLeet[] = {
            {'a', '4'}, {'e', '3'}, {'i', '1'}, {'o', '0'}, {'s', '5'}, {'t', '7'}, {'g', '9'}, {'b', '8'}, {'l', '1'}};
        const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        char sub = 0;
        for (const auto& l : kLeet) {
          if (l.letter == lower) sub = l.digit;
        }
        out.push_back(sub != 0 && rng.below(4) < 3 ? sub : c);
        break;
      }
      default:  // letters spelled out: "s a y  t h a t"
        out.push_back(c);
        if (alpha(c) && next_alpha) out.push_back(' ');
        break;
    }
  }
  return out;
}

namespace {

Result<Prepared> prepare(const Example& e, const TrainParams& params) {
  ZTSLM_ASSIGN_OR_RETURN(AnalysedText a, analyse_for_training(e.text));
  Prepared p;
  std::vector<FeatureVector> views = view_features(a.view, params.n_buckets, params.features);
  p.f = std::move(views[0]);
  p.windows.assign(std::make_move_iterator(views.begin() + 1), std::make_move_iterator(views.end()));
  // Decoded payloads are scoring candidates too, as in the detector.
  for (const std::string& v : a.payload_views) {
    for (FeatureVector& f : view_features(v, params.n_buckets, params.features)) {
      p.windows.push_back(std::move(f));
    }
  }
  p.rules = std::move(a.rule_hits);
  p.y = e.is_attack ? 1.0f : 0.0f;
  p.category = e.category;
  return p;
}

bool trainable(const Example& e) {
  return !is_harmful_category(e.category) && licence_allows_training(e.source);
}

bool is_indirect(std::string_view category) { return category.substr(0, 9) == "indirect-"; }

// The augmented copy of training line `e` (TrainParams::augment_obfuscation), if it gets one:
// plain attacks of at most 2 KiB.
bool augmentable(const Example& e) {
  return e.is_attack && !is_indirect(e.category) && e.category.rfind("obfuscated", 0) != 0 &&
         e.text.size() <= 2048;
}

Example augmented_copy(const Example& e, uint32_t kinds) {
  Example c = e;
  uint64_t v = hash64(e.id + "#augment");
  // Only the kinds in `kinds` (bit k: kind k).
  for (int step = 0; step < 4 && ((kinds >> (v % 4)) & 1u) == 0; ++step) ++v;
  c.text = obfuscate_for_training(e.text, v);
  c.category = "augmented-obfuscation";
  return c;
}

// Direct injections, which may embed a benign line (TrainParams::benign_twins).
bool has_benign_twin_candidate(const Example& e) {
  return e.is_attack && e.category.rfind("injection-", 0) == 0;
}

// `text` without the longest of `benign` (training-split benign lines of at least 12 bytes)
// that it contains, when at least 8 bytes remain; `text` itself otherwise.
std::string without_benign_twin(const std::string& text, const std::vector<const Example*>& benign) {
  const std::string* best = nullptr;
  for (const Example* b : benign) {
    if (b->text.size() + 8 > text.size() || (best != nullptr && b->text.size() <= best->size())) continue;
    if (text.find(b->text) != std::string::npos) best = &b->text;
  }
  if (best == nullptr) return text;
  std::string out = text;
  out.erase(out.find(*best), best->size());
  return out;
}
bool is_document(std::string_view category) {
  return is_indirect(category) || category.substr(0, 15) == "benign-document";
}

// The training-split examples, with each indirect-injection line replaced by its inserted span
// (params.indirect_spans; see train.h). Only training-split texts are compared.
std::vector<Example> training_view(const std::vector<Example>& examples, const TrainParams& params) {
  std::vector<Example> out;
  std::vector<const Example*> docs;
  std::vector<const Example*> benign;
  for (const Example& e : examples) {
    if (!in_test_split(e.id) && is_document(e.category)) docs.push_back(&e);
    if (!in_test_split(e.id) && !e.is_attack && e.text.size() >= 12) benign.push_back(&e);
  }
  for (const Example& e : examples) {
    if (in_test_split(e.id)) continue;
    if (params.benign_twins && has_benign_twin_candidate(e)) {
      Example c = e;
      c.text = without_benign_twin(e.text, benign);
      out.push_back(std::move(c));
      continue;
    }
    if (!params.indirect_spans || !is_indirect(e.category) || !e.is_attack) {
      out.push_back(e);
      continue;
    }
    const std::string_view a = e.text;
    size_t best = 0, best_p = 0, best_s = 0;
    for (const Example* d : docs) {
      if (d == &e) continue;
      const std::string_view b = d->text;
      size_t p = 0;
      while (p < a.size() && p < b.size() && a[p] == b[p]) ++p;
      size_t s = 0;
      while (s < a.size() - p && s < b.size() && a[a.size() - 1 - s] == b[b.size() - 1 - s]) ++s;
      if (p + s > best) {
        best = p + s;
        best_p = p;
        best_s = s;
      }
    }
    if (best * 2 < a.size()) continue;  // no twin: left out
    size_t from = best_p, to = a.size() - best_s;
    while (from > 0 && (static_cast<unsigned char>(a[from]) & 0xC0) == 0x80) --from;
    while (to < a.size() && (static_cast<unsigned char>(a[to]) & 0xC0) == 0x80) ++to;
    if (to <= from + 8) continue;
    Example span = e;
    span.text = std::string(a.substr(from, to - from));
    out.push_back(std::move(span));
  }
  return out;
}

}  // namespace

Result<InjectionModel> train_injection_model(const std::vector<Example>& examples,
                                             const TrainParams& params, TrainSummary* summary) {
  if (params.n_buckets == 0 || (params.n_buckets & (params.n_buckets - 1)) != 0 ||
      params.n_buckets > (1u << 22)) {
    return Status::invalid_argument("bucket count {} must be a power of two <= 2^22",
                                    params.n_buckets);
  }
  TrainSummary local;
  TrainSummary& s = summary ? *summary : local;
  std::vector<Prepared> prepared;
  std::set<std::string> sources;
  for (const Example& e : examples) s.n_test += in_test_split(e.id) ? 1 : 0;
  for (const Example& e : training_view(examples, params)) {
    if (is_harmful_category(e.category)) {
      ++s.n_excluded_harmful;
      continue;
    }
    if (!licence_allows_training(e.source)) {
      ++s.n_excluded_licence;
      continue;
    }
    ZTSLM_ASSIGN_OR_RETURN(Prepared p, prepare(e, params));
    prepared.push_back(std::move(p));
    s.n_train_attack += e.is_attack ? 1 : 0;
    if (params.augment_obfuscation && augmentable(e)) {
      ZTSLM_ASSIGN_OR_RETURN(Prepared aug, prepare(augmented_copy(e, params.augment_kinds), params));
      aug.rules_only = params.augment_rules_only;
      prepared.push_back(std::move(aug));
      ++s.n_augmented;
    }
    const std::string_view src = e.source;
    const size_t at = src.find('@');
    sources.insert(std::string(src.substr(0, at)));
  }
  s.n_train = prepared.size();
  s.sources.assign(sources.begin(), sources.end());
  if (prepared.size() < 10) return Status::invalid_argument("too few training lines ({})", prepared.size());
  // Out-of-fold benign scores pick the threshold for the target FPR.
  std::vector<double> oof_neg;
  const int folds = std::max(2, params.threshold_folds);
  for (int k = 0; k < folds; ++k) {
    std::vector<const Prepared*> fit_set, held;
    for (size_t i = 0; i < prepared.size(); ++i) {
      (static_cast<int>(i % static_cast<size_t>(folds)) == k ? held : fit_set).push_back(&prepared[i]);
    }
    const InjectionModel m = fit(fit_set, params, params.seed + static_cast<uint64_t>(k) + 1);
    for (const Prepared* e : held) {
      if (e->y < 0.5f) oof_neg.push_back(model_probability(m, *e));
    }
  }
  std::vector<const Prepared*> all;
  for (const Prepared& p : prepared) all.push_back(&p);
  InjectionModel model = fit(all, params, params.seed);
  model.features = params.features;
  model.threshold = static_cast<float>(std::clamp(threshold_at_fpr(oof_neg, params.target_fpr), 0.05, 0.99));
  return model;
}

Result<std::string> cross_validate_injection(const std::vector<Example>& examples,
                                             const TrainParams& params, int folds,
                                             double* goal_tpr, std::string* scores) {
  folds = std::max(2, folds);
  std::vector<Prepared> prepared;
  std::vector<int> fold_of;
  std::vector<bool> trained;
  std::vector<std::string> variant;  // generator transform of obfuscated lines
  // Benign twins are removed per fold below, with the benign lines of the training folds only
  // (a twin in the held-out fold must not clean its attack).
  TrainParams view_params = params;
  view_params.benign_twins = false;
  const std::vector<Example> train_split = training_view(examples, view_params);
  std::vector<const Example*> originals;
  // Out-of-fold scores are for the original lines; the model trains on training_view's lines.
  std::map<std::string, const Example*> replaced;
  for (const Example& e : train_split) replaced[e.id] = &e;
  std::vector<Prepared> fit_version;  // the line as trained on, when it differs
  std::vector<size_t> fit_index;      // index into fit_version, or SIZE_MAX
  std::vector<Prepared> augmented;    // augmented copies (fit only), with their origin's fold
  std::vector<int> augmented_fold;
  for (const Example& e : examples) {
    if (in_test_split(e.id)) continue;
    const size_t hash = e.source.find("#obfuscate-");
    variant.push_back(hash == std::string::npos
                          ? std::string()
                          : e.source.substr(hash + 11, e.source.find('<', hash) - hash - 11));
    ZTSLM_ASSIGN_OR_RETURN(Prepared p, prepare(e, params));
    prepared.push_back(std::move(p));
    originals.push_back(&e);
    fold_of.push_back(static_cast<int>((hash64(e.id + "#cv") >> 7) % static_cast<uint64_t>(folds)));
    const auto it = replaced.find(e.id);
    trained.push_back(trainable(e) && it != replaced.end());
    if (trained.back() && params.augment_obfuscation && augmentable(e)) {
      ZTSLM_ASSIGN_OR_RETURN(Prepared aug, prepare(augmented_copy(e, params.augment_kinds), params));
      aug.rules_only = params.augment_rules_only;
      augmented.push_back(std::move(aug));
      augmented_fold.push_back(fold_of.back());
    }
    fit_index.push_back(SIZE_MAX);
    if (it != replaced.end() && it->second->text != e.text) {
      ZTSLM_ASSIGN_OR_RETURN(Prepared span, prepare(*it->second, params));
      fit_index.back() = fit_version.size();
      fit_version.push_back(std::move(span));
    }
  }
  std::vector<double> oof(prepared.size(), 0.0);
  for (int k = 0; k < folds; ++k) {
    std::vector<const Prepared*> fit_set;
    std::vector<const Example*> fold_benign;
    for (size_t i = 0; i < prepared.size(); ++i) {
      const Example& e = *originals[i];
      if (fold_of[i] != k && !e.is_attack && e.text.size() >= 12) fold_benign.push_back(&e);
    }
    std::vector<std::unique_ptr<Prepared>> twinless;  // this fold's attacks without their twin
    for (size_t i = 0; i < prepared.size(); ++i) {
      if (!trained[i] || fold_of[i] == k) continue;
      const Example& e = *originals[i];
      if (params.benign_twins && has_benign_twin_candidate(e)) {
        const std::string text = without_benign_twin(e.text, fold_benign);
        if (text != e.text) {
          Example c = e;
          c.text = text;
          ZTSLM_ASSIGN_OR_RETURN(Prepared tp, prepare(c, params));
          twinless.push_back(std::make_unique<Prepared>(std::move(tp)));
          fit_set.push_back(twinless.back().get());
          continue;
        }
      }
      fit_set.push_back(fit_index[i] == SIZE_MAX ? &prepared[i] : &fit_version[fit_index[i]]);
    }
    for (size_t i = 0; i < augmented.size(); ++i) {
      if (augmented_fold[i] != k) fit_set.push_back(&augmented[i]);
    }
    const InjectionModel m = fit(fit_set, params, params.seed + static_cast<uint64_t>(k) + 1);
    for (size_t i = 0; i < prepared.size(); ++i) {
      if (fold_of[i] == k) oof[i] = model_probability(m, prepared[i]);
    }
  }
  std::vector<const Example*> kept;
  for (const Example& e : examples) {
    if (!in_test_split(e.id)) kept.push_back(&e);
  }
  if (scores != nullptr) {
    for (size_t i = 0; i < prepared.size(); ++i) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6f", oof[i]);
      *scores += std::string(buf) + "\t" + (prepared[i].y > 0.5f ? "attack" : "benign") + "\t" +
                 prepared[i].category + (variant[i].empty() ? "" : "/" + variant[i]) + "\t" + kept[i]->id +
                 (trained[i] ? "" : "\tuntrained") + "\n";
    }
  }
  std::vector<double> neg, goal, broad;
  std::map<std::string, std::vector<double>> by_cat;
  for (size_t i = 0; i < prepared.size(); ++i) {
    const Prepared& p = prepared[i];
    by_cat[p.category].push_back(oof[i]);
    if (!variant[i].empty()) by_cat[p.category + " / " + variant[i]].push_back(oof[i]);
    if (p.y < 0.5f) {
      neg.push_back(oof[i]);
    } else if (!is_harmful_category(p.category)) {
      broad.push_back(oof[i]);
      if (in_goal_group(p.category)) goal.push_back(oof[i]);
    }
  }
  const double t = threshold_at_fpr(neg, 0.01);
  auto frac_at = [t](const std::vector<double>& v) {
    size_t n = 0;
    for (const double x : v) n += x >= t ? 1 : 0;
    return v.empty() ? 0.0 : static_cast<double>(n) / static_cast<double>(v.size());
  };
  if (goal_tpr != nullptr) *goal_tpr = frac_at(goal);
  std::string out = "cross-validation (" + std::to_string(folds) + " folds inside the training split): goal " +
                    pct(frac_at(goal)) + " (" + std::to_string(goal.size()) + " lines), broad " +
                    pct(frac_at(broad)) + ", AUC goal " + num(roc_auc(goal, neg)) + ", threshold " +
                    num(t, 4) + "\n";
  for (const auto& [cat, v] : by_cat) out += "  " + cat + " " + std::to_string(v.size()) + " " + pct(frac_at(v)) + "\n";
  return out;
}

double roc_auc(const std::vector<double>& pos, const std::vector<double>& neg) {
  if (pos.empty() || neg.empty()) return 0.0;
  std::vector<std::pair<double, int>> all;
  for (const double v : pos) all.push_back({v, 1});
  for (const double v : neg) all.push_back({v, 0});
  std::sort(all.begin(), all.end());
  double rank_sum = 0.0;
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    while (j < all.size() && all[j].first == all[i].first) ++j;
    const double avg_rank = (static_cast<double>(i) + static_cast<double>(j) + 1.0) / 2.0;
    for (size_t k = i; k < j; ++k) {
      if (all[k].second) rank_sum += avg_rank;
    }
    i = j;
  }
  const double np = static_cast<double>(pos.size()), nn = static_cast<double>(neg.size());
  return (rank_sum - np * (np + 1.0) / 2.0) / (np * nn);
}

double threshold_at_fpr(std::vector<double> neg, double fpr) {
  if (neg.empty()) return 0.5;
  std::sort(neg.begin(), neg.end(), std::greater<>());
  const size_t allowed = static_cast<size_t>(std::floor(fpr * static_cast<double>(neg.size())));
  // Strictly above the (allowed+1)-th highest negative score.
  const double v = neg[std::min(allowed, neg.size() - 1)];
  return std::nextafter(v, 2.0);
}

Result<std::string> evaluate_injection(const InjectionDetector& detector,
                                       const std::vector<Example>& examples,
                                       std::string_view header) {
  struct Scored {
    const Example* e;
    double score;
  };
  std::vector<Scored> test;
  for (const Example& e : examples) {
    if (!in_test_split(e.id)) continue;
    ZTSLM_ASSIGN_OR_RETURN(AnalysedText a, detector.analyse(e.text));
    test.push_back({&e, detector.probability(a)});
  }
  std::vector<double> neg;
  for (const Scored& s : test) {
    if (!s.e->is_attack) neg.push_back(s.score);
  }
  const double t1 = threshold_at_fpr(neg, 0.01);
  const double shipped = detector.model().threshold;
  auto frac_at = [](const std::vector<double>& v, double t) {
    if (v.empty()) return 0.0;
    size_t n = 0;
    for (const double x : v) n += x >= t ? 1 : 0;
    return static_cast<double>(n) / static_cast<double>(v.size());
  };
  std::map<std::string, std::vector<double>> by_cat;
  for (const Scored& s : test) by_cat[s.e->category].push_back(s.score);
  std::string out(header);
  out += "\n## Held-out test split\n\n";
  out += "Lines: " + std::to_string(test.size()) + " (" + std::to_string(neg.size()) +
         " benign). Negatives for every TPR/AUC row: all benign test lines. Threshold at 1 % FPR on "
         "this split: " + num(t1, 4) + "; shipped threshold: " + num(shipped, 4) + ".\n\n";
  // Groups.
  std::vector<double> goal, inj, harm;
  for (const Scored& s : test) {
    if (!s.e->is_attack) continue;
    (is_harmful_category(s.e->category) ? harm : inj).push_back(s.score);
    if (in_goal_group(s.e->category)) goal.push_back(s.score);
  }
  out += "| group | lines | TPR @ 1 % FPR | AUC | precision @ shipped | recall @ shipped |\n";
  out += "|---|---:|---:|---:|---:|---:|\n";
  auto group_row = [&](const std::string& name, const std::vector<double>& pos) {
    const double rec = frac_at(pos, shipped);
    const double fp = frac_at(neg, shipped) * static_cast<double>(neg.size());
    const double tp = rec * static_cast<double>(pos.size());
    const double prec = tp + fp > 0 ? tp / (tp + fp) : 0.0;
    out += "| " + name + " | " + std::to_string(pos.size()) + " | " + pct(frac_at(pos, t1)) +
           " | " + num(roc_auc(pos, neg)) + " | " + pct(prec) + " | " + pct(rec) + " |\n";
  };
  group_row("injection + jailbreak + obfuscated (issue 5 goal group)", goal);
  group_row("injection + jailbreak + obfuscated + extraction + indirect", inj);
  group_row("harmful-request* (content moderation, reported separately)", harm);
  out += "\n### Attack categories\n\n| category | lines | TPR @ 1 % FPR | AUC | recall @ shipped |\n";
  out += "|---|---:|---:|---:|---:|\n";
  for (const auto& [cat, scores] : by_cat) {
    bool attack = false;
    for (const Scored& s : test) {
      if (s.e->category == cat) {
        attack = s.e->is_attack;
        break;
      }
    }
    if (!attack) continue;
    out += "| " + cat + " | " + std::to_string(scores.size()) + " | " + pct(frac_at(scores, t1)) +
           " | " + num(roc_auc(scores, neg)) + " | " + pct(frac_at(scores, shipped)) + " |\n";
  }
  out += "\n### Benign categories (false-positive rate)\n\n| category | lines | FPR @ shipped | FPR @ 1 %-FPR threshold |\n";
  out += "|---|---:|---:|---:|\n";
  for (const auto& [cat, scores] : by_cat) {
    bool attack = true;
    for (const Scored& s : test) {
      if (s.e->category == cat) {
        attack = s.e->is_attack;
        break;
      }
    }
    if (attack) continue;
    out += "| " + cat + " | " + std::to_string(scores.size()) + " | " + pct(frac_at(scores, shipped)) +
           " | " + pct(frac_at(scores, t1)) + " |\n";
  }
  // Latency: 4 KiB prompts built from test lines, one core.
  std::string big;
  std::vector<std::string> prompts;
  for (const Scored& s : test) {
    big += s.e->text;
    big += "\n";
    if (big.size() >= 4096) {
      size_t cut = 4096;
      while (cut > 0 && (static_cast<unsigned char>(big[cut]) & 0xC0) == 0x80) --cut;
      prompts.push_back(big.substr(0, cut));
      big.clear();
    }
    if (prompts.size() >= 300) break;
  }
  // Thread CPU time (what the goal measures: one core) and wall-clock time (includes waiting
  // for a core on a busy host).
  auto thread_cpu_us = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
  };
  std::vector<double> cpu, wall;
  for (int rep = 0; rep < 3; ++rep) {
    for (const std::string& p : prompts) {
      const auto w0 = std::chrono::steady_clock::now();
      const double c0 = thread_cpu_us();
      auto r = detector.score(p);
      const double c1 = thread_cpu_us();
      const auto w1 = std::chrono::steady_clock::now();
      if (!r.has_value()) return r.error();
      cpu.push_back(c1 - c0);
      wall.push_back(std::chrono::duration<double, std::micro>(w1 - w0).count());
    }
  }
  std::sort(cpu.begin(), cpu.end());
  std::sort(wall.begin(), wall.end());
  auto line = [&](const char* what, const std::vector<double>& us) {
    out += std::string("- ") + what + ": p50 " + num(us[us.size() / 2], 1) + " us, p99 " +
           num(us[std::min(us.size() - 1, us.size() * 99 / 100)], 1) + " us, max " +
           num(us.back(), 1) + " us\n";
  };
  if (!cpu.empty()) {
    out += "\n### Latency (4 KiB prompts from the test split, one thread, " +
           std::to_string(cpu.size()) + " calls)\n\n";
    line("thread CPU time", cpu);
    line("wall clock", wall);
  }
  return out;
}

}  // namespace ztslm::guard
