#include "policy/regex.h"

#include <algorithm>

#include "core/utf8.h"

namespace ztslm::policy {

namespace {

enum class Op : uint8_t { kChar, kAny, kAnyNL, kClass, kSplit, kJmp, kSave, kMatch, kAssert };
enum class Assert : uint8_t { kBol, kEol, kBot, kEot, kWord, kNotWord };

struct Range {
  char32_t lo, hi;
};

struct Inst {
  Op op = Op::kMatch;
  char32_t c = 0;
  bool fold = false;      // case-insensitive char/class
  bool negate = false;    // class
  int x = 0, y = 0;       // split targets / jump target / save slot / class index
  Assert as = Assert::kBol;
};

// Parse tree.
enum class NodeKind : uint8_t { kEmpty, kChar, kAny, kClass, kCat, kAlt, kRepeat, kGroup, kAssert };
struct Node {
  NodeKind kind = NodeKind::kEmpty;
  char32_t c = 0;
  bool fold = false;
  bool dotnl = false;
  std::vector<Range> ranges;
  bool negate = false;
  std::vector<std::unique_ptr<Node>> kids;
  int min = 0, max = -1;  // repeat; max -1 = unbounded
  bool greedy = true;
  int group = -1;  // capture index, -1 non-capturing
  Assert as = Assert::kBol;
};

char32_t fold_char(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  return c;
}

bool is_word(char32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

void add_perl_class(char e, std::vector<Range>* r, bool* negate) {
  switch (e) {
    case 'D': *negate = true; [[fallthrough]];
    case 'd': r->push_back({'0', '9'}); break;
    case 'W': *negate = true; [[fallthrough]];
    case 'w':
      r->push_back({'0', '9'});
      r->push_back({'A', 'Z'});
      r->push_back({'a', 'z'});
      r->push_back({'_', '_'});
      break;
    case 'S': *negate = true; [[fallthrough]];
    case 's':
      r->push_back({'\t', '\n'});
      r->push_back({'\f', '\r'});
      r->push_back({' ', ' '});
      break;
    default: break;
  }
}

class ReParser {
 public:
  ReParser(std::string_view p, const RegexLimits& lim) : lim_(lim) {
    size_t i = 0;
    while (i < p.size()) {
      char32_t cp = 0;
      size_t len = 1;
      if (!decode_utf8(p, i, &cp, &len)) {
        bad_ = true;
        cp = 0xFFFD;
      }
      s_.push_back(cp);
      i += len;
    }
  }

  Result<std::unique_ptr<Node>> parse(int* n_groups) {
    if (bad_) return Status::invalid_argument("regex: pattern is not valid utf-8");
    auto n = alt(0);
    if (!err_.empty()) return Status::invalid_argument("regex: {}", err_);
    if (pos_ != s_.size()) return Status::invalid_argument("regex: unexpected )");
    *n_groups = groups_;
    return n;
  }

 private:
  bool more() const { return pos_ < s_.size(); }
  char32_t peek() const { return pos_ < s_.size() ? s_[pos_] : 0; }

  std::unique_ptr<Node> alt(int depth) {
    if (depth > 200) {
      err_ = "nesting too deep";
      return std::make_unique<Node>();
    }
    auto first = cat(depth);
    if (peek() != '|' || !more()) return first;
    auto a = std::make_unique<Node>();
    a->kind = NodeKind::kAlt;
    a->kids.push_back(std::move(first));
    while (more() && peek() == '|') {
      ++pos_;
      a->kids.push_back(cat(depth));
    }
    return a;
  }

  std::unique_ptr<Node> cat(int depth) {
    auto c = std::make_unique<Node>();
    c->kind = NodeKind::kCat;
    while (more() && peek() != '|' && peek() != ')' && err_.empty()) {
      auto atom_node = atom(depth);
      if (!err_.empty()) break;
      if (!atom_node) continue;  // flag group
      c->kids.push_back(repeat(std::move(atom_node)));
    }
    return c;
  }

  bool read_int(int* out) {
    if (!(peek() >= '0' && peek() <= '9')) return false;
    long v = 0;
    while (more() && peek() >= '0' && peek() <= '9') {
      v = v * 10 + (peek() - '0');
      if (v > 1000) {
        err_ = "bad repetition count";
        return false;
      }
      ++pos_;
    }
    *out = static_cast<int>(v);
    return true;
  }

  std::unique_ptr<Node> repeat(std::unique_ptr<Node> n) {
    for (;;) {
      if (!more()) return n;
      int mn = 0, mx = -1;
      const char32_t c = peek();
      if (c == '*') {
        ++pos_;
      } else if (c == '+') {
        mn = 1;
        ++pos_;
      } else if (c == '?') {
        mx = 1;
        ++pos_;
      } else if (c == '{') {
        const size_t save = pos_;
        ++pos_;
        if (!read_int(&mn)) {
          if (!err_.empty()) return n;
          pos_ = save;  // literal '{'
          return n;
        }
        if (peek() == ',') {
          ++pos_;
          if (peek() == '}') {
            mx = -1;
          } else if (!read_int(&mx)) {
            if (!err_.empty()) return n;
            pos_ = save;
            return n;
          }
        } else {
          mx = mn;
        }
        if (peek() != '}') {
          pos_ = save;
          return n;
        }
        ++pos_;
        if (mx >= 0 && mx < mn) {
          err_ = "invalid repeat count";
          return n;
        }
      } else {
        return n;
      }
      if (n->kind == NodeKind::kRepeat || n->kind == NodeKind::kEmpty) {
        if (n->kind == NodeKind::kRepeat) {
          err_ = "invalid nested repetition operator";
          return n;
        }
      }
      auto r = std::make_unique<Node>();
      r->kind = NodeKind::kRepeat;
      r->min = mn;
      r->max = mx;
      if (more() && peek() == '?') {
        r->greedy = false;
        ++pos_;
      }
      r->kids.push_back(std::move(n));
      n = std::move(r);
    }
  }

  bool escape_char(char32_t* out) {
    // After a backslash; returns a literal code point.
    const char32_t e = peek();
    ++pos_;
    switch (e) {
      case 'n': *out = '\n'; return true;
      case 't': *out = '\t'; return true;
      case 'r': *out = '\r'; return true;
      case 'f': *out = '\f'; return true;
      case 'v': *out = '\v'; return true;
      case 'a': *out = 7; return true;
      case '0': *out = 0; return true;
      case 'x': {
        char32_t v = 0;
        auto hex = [](char32_t h, char32_t* d) {
          if (h >= '0' && h <= '9') *d = h - '0';
          else if (h >= 'a' && h <= 'f') *d = h - 'a' + 10;
          else if (h >= 'A' && h <= 'F') *d = h - 'A' + 10;
          else return false;
          return true;
        };
        if (peek() == '{') {
          ++pos_;
          int n = 0;
          while (more() && peek() != '}') {
            char32_t d = 0;
            if (!hex(peek(), &d) || ++n > 6) return false;
            v = v * 16 + d;
            ++pos_;
          }
          if (!more()) return false;
          ++pos_;
        } else {
          for (int i = 0; i < 2; ++i) {
            char32_t d = 0;
            if (!hex(peek(), &d)) return false;
            v = v * 16 + d;
            ++pos_;
          }
        }
        if (v > 0x10FFFF) return false;
        *out = v;
        return true;
      }
      default:
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) {
          return false;
        }
        *out = e;
        return true;
    }
  }

  std::unique_ptr<Node> cls() {
    auto n = std::make_unique<Node>();
    n->kind = NodeKind::kClass;
    n->fold = fold_;
    if (peek() == '^') {
      n->negate = true;
      ++pos_;
    }
    bool first = true;
    while (more() && (peek() != ']' || first)) {
      first = false;
      char32_t lo = peek();
      ++pos_;
      if (lo == '[' && peek() == ':') {
        // [:alpha:] and friends.
        size_t end = pos_;
        while (end + 1 < s_.size() && !(s_[end] == ':' && s_[end + 1] == ']')) ++end;
        std::string name;
        for (size_t i = pos_ + 1; i < end; ++i) name.push_back(static_cast<char>(s_[i]));
        pos_ = end + 2;
        if (name == "alpha") {
          n->ranges.push_back({'a', 'z'});
          n->ranges.push_back({'A', 'Z'});
        } else if (name == "digit") {
          n->ranges.push_back({'0', '9'});
        } else if (name == "alnum") {
          n->ranges.push_back({'a', 'z'});
          n->ranges.push_back({'A', 'Z'});
          n->ranges.push_back({'0', '9'});
        } else if (name == "space") {
          n->ranges.push_back({'\t', '\r'});
          n->ranges.push_back({' ', ' '});
        } else if (name == "upper") {
          n->ranges.push_back({'A', 'Z'});
        } else if (name == "lower") {
          n->ranges.push_back({'a', 'z'});
        } else if (name == "punct") {
          n->ranges.push_back({'!', '/'});
          n->ranges.push_back({':', '@'});
          n->ranges.push_back({'[', '`'});
          n->ranges.push_back({'{', '~'});
        } else if (name == "xdigit") {
          n->ranges.push_back({'0', '9'});
          n->ranges.push_back({'a', 'f'});
          n->ranges.push_back({'A', 'F'});
        } else {
          err_ = "invalid character class range";
          return n;
        }
        continue;
      }
      if (lo == '\\') {
        const char32_t e = peek();
        if (e == 'd' || e == 'w' || e == 's') {
          ++pos_;
          bool neg = false;
          add_perl_class(static_cast<char>(e), &n->ranges, &neg);
          continue;
        }
        if (e == 'D' || e == 'W' || e == 'S') {
          // Negated perl class inside a class: add the complement ranges.
          ++pos_;
          std::vector<Range> r;
          bool neg = false;
          add_perl_class(static_cast<char>(e - 'A' + 'a'), &r, &neg);
          std::sort(r.begin(), r.end(), [](const Range& a, const Range& b) { return a.lo < b.lo; });
          char32_t next = 0;
          for (const Range& x : r) {
            if (x.lo > next) n->ranges.push_back({next, x.lo - 1});
            next = x.hi + 1;
          }
          n->ranges.push_back({next, 0x10FFFF});
          continue;
        }
        if (!escape_char(&lo)) {
          err_ = "invalid escape sequence";
          return n;
        }
      }
      char32_t hi = lo;
      if (peek() == '-' && pos_ + 1 < s_.size() && s_[pos_ + 1] != ']') {
        ++pos_;
        hi = peek();
        ++pos_;
        if (hi == '\\' && !escape_char(&hi)) {
          err_ = "invalid escape sequence";
          return n;
        }
        if (hi < lo) {
          err_ = "invalid character class range";
          return n;
        }
      }
      n->ranges.push_back({lo, hi});
    }
    if (!more()) {
      err_ = "missing closing ]";
      return n;
    }
    ++pos_;
    return n;
  }

  std::unique_ptr<Node> atom(int depth) {
    const char32_t c = peek();
    ++pos_;
    auto n = std::make_unique<Node>();
    switch (c) {
      case '(': {
        int group = -1;
        bool saved_fold = fold_, saved_dotnl = dotnl_, saved_multi = multiline_;
        if (peek() == '?') {
          ++pos_;
          if (peek() == 'P' || peek() == '<') {
            if (peek() == 'P') ++pos_;
            if (peek() != '<') {
              err_ = "invalid named capture";
              return n;
            }
            while (more() && peek() != '>') ++pos_;
            if (!more()) {
              err_ = "invalid named capture";
              return n;
            }
            ++pos_;
            group = ++groups_;
          } else {
            bool on = true;
            while (more() && peek() != ':' && peek() != ')') {
              const char32_t fl = peek();
              ++pos_;
              if (fl == '-') on = false;
              else if (fl == 'i') fold_ = on;
              else if (fl == 's') dotnl_ = on;
              else if (fl == 'm') multiline_ = on;
              else if (fl == 'U') {
              } else {
                err_ = "invalid or unsupported Perl syntax";
                return n;
              }
            }
            if (!more()) {
              err_ = "missing closing )";
              return n;
            }
            if (peek() == ')') {
              ++pos_;
              return nullptr;  // flags apply to the rest of the enclosing group
            }
            ++pos_;  // ':'
          }
        } else {
          group = ++groups_;
        }
        auto inner = alt(depth + 1);
        if (peek() != ')' || !more()) {
          err_ = "missing closing )";
          return n;
        }
        ++pos_;
        fold_ = saved_fold;
        dotnl_ = saved_dotnl;
        multiline_ = saved_multi;
        n->kind = NodeKind::kGroup;
        n->group = group;
        n->kids.push_back(std::move(inner));
        return n;
      }
      case ')':
        err_ = "unexpected )";
        return n;
      case '*':
      case '+':
      case '?':
        err_ = "missing argument to repetition operator";
        return n;
      case '.':
        n->kind = NodeKind::kAny;
        n->dotnl = dotnl_;
        return n;
      case '^':
        n->kind = NodeKind::kAssert;
        n->as = multiline_ ? Assert::kBol : Assert::kBot;
        return n;
      case '$':
        n->kind = NodeKind::kAssert;
        n->as = multiline_ ? Assert::kEol : Assert::kEot;
        return n;
      case '[': return cls();
      case '\\': {
        const char32_t e = peek();
        if (!more()) {
          err_ = "trailing backslash at end of expression";
          return n;
        }
        if (e == 'd' || e == 'w' || e == 's' || e == 'D' || e == 'W' || e == 'S') {
          ++pos_;
          n->kind = NodeKind::kClass;
          add_perl_class(static_cast<char>(e), &n->ranges, &n->negate);
          return n;
        }
        if (e == 'b' || e == 'B' || e == 'A' || e == 'z') {
          ++pos_;
          n->kind = NodeKind::kAssert;
          n->as = e == 'b' ? Assert::kWord
                           : (e == 'B' ? Assert::kNotWord : (e == 'A' ? Assert::kBot : Assert::kEot));
          return n;
        }
        char32_t lit = 0;
        if (!escape_char(&lit)) {
          err_ = "invalid escape sequence";
          return n;
        }
        n->kind = NodeKind::kChar;
        n->c = lit;
        n->fold = fold_;
        return n;
      }
      default:
        n->kind = NodeKind::kChar;
        n->c = c;
        n->fold = fold_;
        return n;
    }
  }

  std::vector<char32_t> s_;
  size_t pos_ = 0;
  RegexLimits lim_;
  bool bad_ = false;
  bool fold_ = false, dotnl_ = false, multiline_ = false;
  int groups_ = 0;
  std::string err_;
};

}  // namespace

struct Regex::Prog {
  std::vector<Inst> code;
  std::vector<std::vector<Range>> classes;
  int n_groups = 1;
};

namespace {

class Compiler {
 public:
  Compiler(Regex::Prog* p, size_t max) : p_(p), max_(max) {}
  bool emit(const Node& n) {
    if (p_->code.size() > max_) return false;
    switch (n.kind) {
      case NodeKind::kEmpty: return true;
      case NodeKind::kChar: {
        Inst i;
        i.op = Op::kChar;
        i.c = n.fold ? fold_char(n.c) : n.c;
        i.fold = n.fold;
        p_->code.push_back(i);
        return true;
      }
      case NodeKind::kAny: {
        Inst i;
        i.op = n.dotnl ? Op::kAnyNL : Op::kAny;
        p_->code.push_back(i);
        return true;
      }
      case NodeKind::kClass: {
        Inst i;
        i.op = Op::kClass;
        i.negate = n.negate;
        i.fold = n.fold;
        i.x = static_cast<int>(p_->classes.size());
        p_->classes.push_back(n.ranges);
        p_->code.push_back(i);
        return true;
      }
      case NodeKind::kAssert: {
        Inst i;
        i.op = Op::kAssert;
        i.as = n.as;
        p_->code.push_back(i);
        return true;
      }
      case NodeKind::kCat:
        for (const auto& k : n.kids) {
          if (!emit(*k)) return false;
        }
        return true;
      case NodeKind::kGroup: {
        if (n.group >= 0) {
          Inst s;
          s.op = Op::kSave;
          s.x = 2 * n.group;
          p_->code.push_back(s);
        }
        if (!emit(*n.kids[0])) return false;
        if (n.group >= 0) {
          Inst s;
          s.op = Op::kSave;
          s.x = 2 * n.group + 1;
          p_->code.push_back(s);
        }
        return true;
      }
      case NodeKind::kAlt: {
        std::vector<size_t> jumps;
        for (size_t k = 0; k < n.kids.size(); ++k) {
          if (k + 1 < n.kids.size()) {
            const size_t split = p_->code.size();
            p_->code.push_back(Inst{Op::kSplit});
            p_->code[split].x = static_cast<int>(split + 1);
            if (!emit(*n.kids[k])) return false;
            jumps.push_back(p_->code.size());
            p_->code.push_back(Inst{Op::kJmp});
            p_->code[split].y = static_cast<int>(p_->code.size());
          } else {
            if (!emit(*n.kids[k])) return false;
          }
        }
        for (size_t j : jumps) p_->code[j].x = static_cast<int>(p_->code.size());
        return true;
      }
      case NodeKind::kRepeat: {
        const Node& sub = *n.kids[0];
        for (int i = 0; i < n.min; ++i) {
          if (!emit(sub)) return false;
        }
        if (n.max < 0) {
          // L: split body, out; body; jmp L
          const size_t split = p_->code.size();
          p_->code.push_back(Inst{Op::kSplit});
          if (!emit(sub)) return false;
          Inst j;
          j.op = Op::kJmp;
          j.x = static_cast<int>(split);
          p_->code.push_back(j);
          const int body = static_cast<int>(split + 1), out = static_cast<int>(p_->code.size());
          p_->code[split].x = n.greedy ? body : out;
          p_->code[split].y = n.greedy ? out : body;
          return true;
        }
        std::vector<size_t> splits;
        for (int i = n.min; i < n.max; ++i) {
          splits.push_back(p_->code.size());
          p_->code.push_back(Inst{Op::kSplit});
          if (!emit(sub)) return false;
          if (p_->code.size() > max_) return false;
        }
        const int out = static_cast<int>(p_->code.size());
        for (size_t s : splits) {
          const int body = static_cast<int>(s + 1);
          p_->code[s].x = n.greedy ? body : out;
          p_->code[s].y = n.greedy ? out : body;
        }
        return true;
      }
    }
    return true;
  }

 private:
  Regex::Prog* p_;
  size_t max_;
};

bool class_match(const std::vector<Range>& ranges, char32_t c, bool fold) {
  auto in = [&](char32_t x) {
    for (const Range& r : ranges) {
      if (x >= r.lo && x <= r.hi) return true;
    }
    return false;
  };
  if (in(c)) return true;
  if (fold) {
    if (c >= 'a' && c <= 'z') return in(c - 32);
    if (c >= 'A' && c <= 'Z') return in(c + 32);
  }
  return false;
}

struct Thread {
  int pc;
  std::vector<long> caps;
};

class Vm {
 public:
  Vm(const Regex::Prog& p, std::string_view text) : p_(p), text_(text) {
    size_t i = 0;
    while (i < text.size()) {
      char32_t cp = 0;
      size_t len = 1;
      if (!decode_utf8(text, i, &cp, &len)) cp = 0xFFFD;
      cps_.push_back(cp);
      offs_.push_back(static_cast<long>(i));
      i += len;
    }
    offs_.push_back(static_cast<long>(text.size()));
  }

  bool run(size_t from_byte, std::vector<long>* out) {
    size_t start = 0;
    while (start < cps_.size() && static_cast<size_t>(offs_[start]) < from_byte) ++start;
    const size_t ncap = static_cast<size_t>(p_.n_groups) * 2;
    std::vector<Thread> clist, nlist;
    std::vector<uint32_t> mark(p_.code.size(), UINT32_MAX);
    bool matched = false;
    std::vector<long> best;
    for (size_t i = start; i <= cps_.size(); ++i) {
      if (!matched) {
        std::vector<long> caps(ncap, -1);
        add(clist, mark, 0, i, caps);
      }
      if (clist.empty()) break;
      nlist.clear();
      for (size_t t = 0; t < clist.size(); ++t) {
        const Thread& th = clist[t];
        const Inst& in = p_.code[static_cast<size_t>(th.pc)];
        if (in.op == Op::kMatch) {
          matched = true;
          best = th.caps;
          best[1] = offs_[i];
          break;  // lower-priority threads are cut
        }
        if (i == cps_.size()) continue;
        const char32_t c = cps_[i];
        bool ok = false;
        switch (in.op) {
          case Op::kChar: ok = (in.fold ? fold_char(c) : c) == in.c; break;
          case Op::kAny: ok = c != '\n'; break;
          case Op::kAnyNL: ok = true; break;
          case Op::kClass:
            ok = class_match(p_.classes[static_cast<size_t>(in.x)], c, in.fold) != in.negate;
            break;
          default: break;
        }
        if (ok) add(nlist, mark, th.pc + 1, i + 1, th.caps);
      }
      std::swap(clist, nlist);
      // Marks are generation-tagged by position; reset on wrap is unnecessary (distinct tags).
    }
    if (!matched) return false;
    *out = best;
    return true;
  }

 private:
  // Follows empty transitions from `pc` at code-point index `i`.
  void add(std::vector<Thread>& list, std::vector<uint32_t>& mark, int pc, size_t i,
           std::vector<long> caps) {
    // Each pc joins the list for position `i` once (the first, highest-priority thread wins).
    const auto tag = static_cast<uint32_t>(i);
    if (mark[static_cast<size_t>(pc)] == tag) return;
    mark[static_cast<size_t>(pc)] = tag;
    const Inst& in = p_.code[static_cast<size_t>(pc)];
    switch (in.op) {
      case Op::kJmp: add(list, mark, in.x, i, std::move(caps)); return;
      case Op::kSplit:
        add(list, mark, in.x, i, caps);
        add(list, mark, in.y, i, std::move(caps));
        return;
      case Op::kSave:
        if (static_cast<size_t>(in.x) < caps.size()) caps[static_cast<size_t>(in.x)] = offs_[i];
        add(list, mark, pc + 1, i, std::move(caps));
        return;
      case Op::kAssert: {
        bool ok = false;
        const char32_t prev = i > 0 ? cps_[i - 1] : 0;
        const char32_t next = i < cps_.size() ? cps_[i] : 0;
        switch (in.as) {
          case Assert::kBot: ok = i == 0; break;
          case Assert::kEot: ok = i == cps_.size(); break;
          case Assert::kBol: ok = i == 0 || prev == '\n'; break;
          case Assert::kEol: ok = i == cps_.size() || next == '\n'; break;
          case Assert::kWord:
          case Assert::kNotWord: {
            const bool a = i > 0 && is_word(prev);
            const bool b = i < cps_.size() && is_word(next);
            ok = (a != b) == (in.as == Assert::kWord);
            break;
          }
        }
        if (ok) add(list, mark, pc + 1, i, std::move(caps));
        return;
      }
      default: list.push_back(Thread{pc, std::move(caps)}); return;
    }
  }

  const Regex::Prog& p_;
  std::string_view text_;
  std::vector<char32_t> cps_;
  std::vector<long> offs_;
};

}  // namespace

Result<Regex> Regex::compile(std::string_view pattern, const RegexLimits& limits) {
  if (pattern.size() > limits.max_pattern_bytes) {
    return Status::invalid_argument("regex: pattern of {} bytes exceeds limit {}", pattern.size(),
                                    limits.max_pattern_bytes);
  }
  ReParser parser(pattern, limits);
  int n_groups = 0;
  ZTSLM_ASSIGN_OR_RETURN(std::unique_ptr<Node> tree, parser.parse(&n_groups));
  auto prog = std::make_shared<Prog>();
  prog->n_groups = n_groups + 1;
  Inst s0;
  s0.op = Op::kSave;
  s0.x = 0;
  prog->code.push_back(s0);
  Compiler c(prog.get(), limits.max_program);
  if (!c.emit(*tree) || prog->code.size() > limits.max_program) {
    return Status::invalid_argument("regex: program exceeds {} instructions", limits.max_program);
  }
  Inst m;
  m.op = Op::kMatch;
  prog->code.push_back(m);
  Regex r;
  r.prog_ = std::move(prog);
  return r;
}

bool Regex::search(std::string_view text) const {
  std::vector<long> g;
  return find(text, 0, &g);
}

bool Regex::find(std::string_view text, size_t from, std::vector<long>* groups) const {
  Vm vm(*prog_, text);
  return vm.run(from, groups);
}

size_t Regex::n_groups() const { return static_cast<size_t>(prog_->n_groups); }
size_t Regex::program_size() const { return prog_->code.size(); }

}  // namespace ztslm::policy
