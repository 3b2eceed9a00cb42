#include "policy/parser.h"

#include <charconv>
#include <cstdlib>

#include "core/utf8.h"

namespace ztslm::policy {
namespace {

enum class Tok : uint8_t {
  kEof, kIdent, kNumber, kString, kLBrace, kRBrace, kLBrack, kRBrack, kLParen, kRParen, kDot,
  kComma, kSemi, kColon, kAssign, kUnify, kEq, kNeq, kLt, kLte, kGt, kGte, kPlus, kMinus, kStar,
  kSlash, kPercent, kBar, kAmp,
};

struct Token {
  Tok kind = Tok::kEof;
  Location loc;
  bool nl_before = false;
  std::string text;   // ident name, string value, number text
  size_t offset = 0;
};

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  // Returns false with `err` set on a lexical error.
  bool next(Token* out, std::string* err) {
    bool nl = false;
    for (;;) {
      if (pos_ >= s_.size()) break;
      const char c = s_[pos_];
      if (c == '\n') {
        nl = true;
        advance();
      } else if (c == ' ' || c == '\t' || c == '\r') {
        advance();
      } else if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') advance();
      } else {
        break;
      }
    }
    Token t;
    t.nl_before = nl;
    t.loc = {line_, col_};
    err_loc_ = t.loc;
    t.offset = pos_;
    if (pos_ >= s_.size()) {
      t.kind = Tok::kEof;
      *out = std::move(t);
      return true;
    }
    const char c = s_[pos_];
    auto peek1 = [&]() { return pos_ + 1 < s_.size() ? s_[pos_ + 1] : '\0'; };
    auto single = [&](Tok k) {
      t.kind = k;
      advance();
    };
    auto two = [&](Tok k) {
      t.kind = k;
      advance();
      advance();
    };
    if (is_ident_start(c)) {
      const size_t start = pos_;
      while (pos_ < s_.size() && is_ident_char(s_[pos_])) advance();
      t.kind = Tok::kIdent;
      t.text = std::string(s_.substr(start, pos_ - start));
    } else if (c >= '0' && c <= '9') {
      const size_t start = pos_;
      while (pos_ < s_.size() && is_digit(s_[pos_])) advance();
      if (pos_ + 1 < s_.size() && s_[pos_] == '.' && is_digit(s_[pos_ + 1])) {
        advance();
        while (pos_ < s_.size() && is_digit(s_[pos_])) advance();
      }
      if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
        size_t p = pos_ + 1;
        if (p < s_.size() && (s_[p] == '+' || s_[p] == '-')) ++p;
        if (p < s_.size() && is_digit(s_[p])) {
          while (pos_ < p) advance();
          while (pos_ < s_.size() && is_digit(s_[pos_])) advance();
        }
      }
      if (pos_ < s_.size() && is_ident_start(s_[pos_])) {
        *err = "invalid number";
        return false;
      }
      t.kind = Tok::kNumber;
      t.text = std::string(s_.substr(start, pos_ - start));
    } else if (c == '"') {
      advance();
      t.kind = Tok::kString;
      for (;;) {
        if (pos_ >= s_.size() || s_[pos_] == '\n') {
          *err = "non-terminated string";
          return false;
        }
        const char d = s_[pos_];
        if (d == '"') {
          advance();
          break;
        }
        if (d != '\\') {
          t.text.push_back(d);
          advance();
          continue;
        }
        advance();
        const char e = pos_ < s_.size() ? s_[pos_] : '\0';
        advance();
        switch (e) {
          case '"': t.text.push_back('"'); break;
          case '\\': t.text.push_back('\\'); break;
          case '/': t.text.push_back('/'); break;
          case 'b': t.text.push_back('\b'); break;
          case 'f': t.text.push_back('\f'); break;
          case 'n': t.text.push_back('\n'); break;
          case 'r': t.text.push_back('\r'); break;
          case 't': t.text.push_back('\t'); break;
          case 'u': {
            uint32_t cp = 0;
            if (!hex4(&cp)) {
              *err = "invalid \\u escape in string";
              return false;
            }
            if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(pos_, 2) == "\\u") {
              advance();
              advance();
              uint32_t lo = 0;
              if (!hex4(&lo)) {
                *err = "invalid \\u escape in string";
                return false;
              }
              cp = (lo >= 0xDC00 && lo < 0xE000) ? 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                                                 : 0xFFFD;
            } else if (cp >= 0xD800 && cp < 0xE000) {
              cp = 0xFFFD;
            }
            append_utf8(t.text, static_cast<char32_t>(cp));
            break;
          }
          default: *err = "invalid escape in string"; return false;
        }
      }
    } else if (c == '`') {
      advance();
      t.kind = Tok::kString;
      const size_t start = pos_;
      while (pos_ < s_.size() && s_[pos_] != '`') advance();
      if (pos_ >= s_.size()) {
        *err = "non-terminated raw string";
        return false;
      }
      t.text = std::string(s_.substr(start, pos_ - start));
      advance();
    } else {
      switch (c) {
        case '{': single(Tok::kLBrace); break;
        case '}': single(Tok::kRBrace); break;
        case '[': single(Tok::kLBrack); break;
        case ']': single(Tok::kRBrack); break;
        case '(': single(Tok::kLParen); break;
        case ')': single(Tok::kRParen); break;
        case '.': single(Tok::kDot); break;
        case ',': single(Tok::kComma); break;
        case ';': single(Tok::kSemi); break;
        case ':':
          if (peek1() == '=') two(Tok::kAssign);
          else single(Tok::kColon);
          break;
        case '=':
          if (peek1() == '=') two(Tok::kEq);
          else single(Tok::kUnify);
          break;
        case '!':
          if (peek1() == '=') {
            two(Tok::kNeq);
          } else {
            *err = "unexpected character '!'";
            return false;
          }
          break;
        case '<':
          if (peek1() == '=') two(Tok::kLte);
          else single(Tok::kLt);
          break;
        case '>':
          if (peek1() == '=') two(Tok::kGte);
          else single(Tok::kGt);
          break;
        case '+': single(Tok::kPlus); break;
        case '-': single(Tok::kMinus); break;
        case '*': single(Tok::kStar); break;
        case '/': single(Tok::kSlash); break;
        case '%': single(Tok::kPercent); break;
        case '|': single(Tok::kBar); break;
        case '&': single(Tok::kAmp); break;
        default:
          *err = "unexpected character " + printable(s_.substr(pos_, 1), 8);
          return false;
      }
    }
    *out = std::move(t);
    return true;
  }

  Location loc() const { return {line_, col_}; }
  // Where the token that failed to lex started.
  Location err_loc() const { return err_loc_; }

 private:
  static bool is_ident_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  }
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }
  static bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c); }
  void advance() {
    if (pos_ < s_.size()) {
      if (s_[pos_] == '\n') {
        ++line_;
        col_ = 1;
      } else {
        ++col_;
      }
      ++pos_;
    }
  }
  bool hex4(uint32_t* cp) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      if (pos_ >= s_.size()) return false;
      const char h = s_[pos_];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<uint32_t>(h - 'A' + 10);
      else return false;
      advance();
    }
    *cp = v;
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  uint32_t line_ = 1;
  uint32_t col_ = 1;
  Location err_loc_;
};

bool is_keyword(const std::string& s) {
  return s == "as" || s == "default" || s == "else" || s == "every" || s == "if" ||
         s == "import" || s == "in" || s == "not" || s == "package" || s == "some" ||
         s == "with" || s == "contains";
}

TermPtr make_term(TermKind k, Location loc) {
  auto t = std::make_shared<Term>();
  t->kind = k;
  t->loc = loc;
  return t;
}
TermPtr make_scalar(Value v, Location loc) {
  auto t = make_term(TermKind::kScalar, loc);
  t->value = std::move(v);
  return t;
}
TermPtr make_call(std::string name, std::vector<TermPtr> args, Location loc) {
  auto t = make_term(TermKind::kCall, loc);
  t->name = std::move(name);
  t->items = std::move(args);
  return t;
}
TermPtr make_op(std::string name, std::vector<TermPtr> args, Location loc) {
  auto t = make_call(std::move(name), std::move(args), loc);
  t->is_operator = true;
  return t;
}

class Parser {
 public:
  Parser(std::string_view text, std::string_view file, RegoVersion version,
         const ParseLimits& limits)
      : lex_(text), file_(file), version_(version), limits_(limits), text_size_(text.size()) {}

  Result<Module> module() {
    if (text_size_ > limits_.max_source_bytes) {
      return Status::resource_exhausted("{}: module of {} bytes exceeds limit {}", file_,
                                        text_size_, limits_.max_source_bytes);
    }
    if (!start()) return status_;
    Module m;
    m.file = file_;
    if (!is_ident("package")) {
      error("expected package declaration");
      return status_;
    }
    advance();
    std::vector<std::string> pkg;
    if (!dotted_path(&pkg)) return status_;
    if (!pkg.empty() && pkg[0] == "data") pkg.erase(pkg.begin());
    m.package = pkg;
    bool seen_rego_v1 = false, seen_future = false;
    while (is_ident("import")) {
      Import imp;
      imp.loc = tok_.loc;
      advance();
      if (!dotted_path(&imp.path)) return status_;
      if (is_ident("as")) {
        advance();
        if (tok_.kind != Tok::kIdent) {
          error("expected alias name");
          return status_;
        }
        imp.alias = tok_.text;
        advance();
      }

      const std::string& root = imp.path[0];
      if (root == "rego" || root == "future") {
        if (root == "rego" && !(imp.path.size() == 2 && imp.path[1] == "v1")) {
          error_at(imp.loc, "invalid import, must be `rego.v1`");
          return status_;
        }
        if (root == "rego") {
          if (seen_rego_v1 || seen_future) {
            error_at(imp.loc, "this import shadows previous import of rego.v1 or future keywords");
            return status_;
          }
          seen_rego_v1 = true;
          version_ = RegoVersion::kV1;
        } else {
          if (seen_rego_v1) {
            error_at(imp.loc, "this import shadows previous import of rego.v1");
            return status_;
          }
          seen_future = true;
        }
        continue;
      }
      if (root != "data" && root != "input") {
        error_at(imp.loc, "invalid import " + root + ", must begin with input or data");
        return status_;
      }
      if (imp.alias.empty()) imp.alias = imp.path.back();
      m.imports.push_back(std::move(imp));
    }
    while (tok_.kind != Tok::kEof) {
      if (!rule(m)) return status_;
    }
    m.v1 = version_ == RegoVersion::kV1;
    return m;
  }

  Result<Body> query() {
    if (text_size_ > limits_.max_source_bytes) {
      return Status::resource_exhausted("query of {} bytes exceeds limit {}", text_size_,
                                        limits_.max_source_bytes);
    }
    if (!start()) return status_;
    Body b;
    if (!body_until(Tok::kEof, &b)) return status_;
    if (b.exprs.empty()) {
      error("empty query");
      return status_;
    }
    return b;
  }

  Result<TermPtr> single_term() {
    if (!start()) return status_;
    TermPtr t = expr_term();
    if (!t) return status_;
    if (tok_.kind != Tok::kEof) {
      error("unexpected token after term");
      return status_;
    }
    return t;
  }

 private:
  // ---- token helpers ----
  bool start() {
    std::string err;
    if (!lex_.next(&tok_, &err)) {
      error_at(lex_.err_loc(), err);
      return false;
    }
    return peek_next();
  }
  bool peek_next() {
    std::string err;
    if (!lex_.next(&next_, &err)) {
      // Defer the lexical error until the token is reached.
      lex_err_ = err;
      lex_err_loc_ = lex_.err_loc();
      next_.kind = Tok::kEof;
    }
    return true;
  }
  void advance() {
    if (!lex_err_.empty() && next_.kind == Tok::kEof) {
      error_at(lex_err_loc_, lex_err_);
      tok_ = Token();
      tok_.kind = Tok::kEof;
      failed_ = true;
      return;
    }
    tok_ = std::move(next_);
    if (tok_.kind != Tok::kEof) peek_next();
    else next_ = tok_;
  }
  bool is_ident(std::string_view s) const { return tok_.kind == Tok::kIdent && tok_.text == s; }
  bool accept(Tok k) {
    if (tok_.kind != k) return false;
    advance();
    return true;
  }
  // Records the first error; usable as `return (error(...), false)`.
  struct Err {
    operator bool() const { return false; }  // NOLINT(google-explicit-constructor)
  };
  Err error_at(Location loc, const std::string& what) {
    if (status_.ok()) {
      status_ = Status::malformed("{}:{}:{}: rego_parse_error: {}", file_, loc.line, loc.col, what);
    }
    failed_ = true;
    return Err{};
  }
  Err error(const std::string& what) {
    if (tok_.kind == Tok::kEof && !lex_err_.empty()) return error_at(lex_err_loc_, lex_err_);

    return error_at(tok_.loc, what + (tok_.kind == Tok::kEof ? " (unexpected eof)" : ""));
  }
  bool expect(Tok k, const char* what) {
    if (failed_) return false;
    if (tok_.kind != k) {
      error(std::string("expected ") + what);
      return false;
    }
    advance();
    return true;
  }
  // A continuation token (operator, "[", "(", ".") may not start a new line inside a body.
  bool same_line() const { return !tok_.nl_before || nl_ignore_ > 0; }
  // Infix operators other than "-" may continue an expression on the next line.
  bool infix_continues() const { return tok_.kind != Tok::kMinus || same_line(); }

  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p_(p) { ++p_->depth_; }
    ~DepthGuard() { --p_->depth_; }
    bool ok() {
      if (p_->depth_ > p_->limits_.max_depth) {
        p_->error("nesting exceeds limit " + std::to_string(p_->limits_.max_depth));
        return false;
      }
      return true;
    }
    Parser* p_;
  };

  bool dotted_path(std::vector<std::string>* out) {
    if (tok_.kind != Tok::kIdent) return (error("expected name"), false);
    out->push_back(tok_.text);
    advance();
    for (;;) {
      if (tok_.kind == Tok::kDot && !tok_.nl_before) {
        advance();
        if (tok_.kind != Tok::kIdent) return (error("expected name after ."), false);
        out->push_back(tok_.text);
        advance();
      } else if (tok_.kind == Tok::kLBrack && !tok_.nl_before) {
        advance();
        if (tok_.kind != Tok::kString) return (error("expected string in path"), false);
        out->push_back(tok_.text);
        advance();
        if (!expect(Tok::kRBrack, "]")) return false;
      } else {
        return true;
      }
    }
  }

  // ---- rules ----
  bool rule(Module& m) {
    auto r = std::make_shared<Rule>();
    r->file = file_;
    r->loc = tok_.loc;
    if (is_ident("default")) {
      r->is_default = true;
      advance();
    }
    if (tok_.kind != Tok::kIdent || is_keyword(tok_.text)) {
      error("expected rule head");
      return false;
    }
    if ((tok_.text == "data" || tok_.text == "input") && version_ == RegoVersion::kV1) {
      error(tok_.text + " cannot be shadowed by a rule");
      return false;
    }
    // Head reference: name { "." name | "[" term "]" }.
    std::vector<TermPtr> parts;
    parts.push_back(make_scalar(Value::string(tok_.text), tok_.loc));
    advance();
    for (;;) {
      if (tok_.kind == Tok::kDot && !tok_.nl_before) {
        advance();
        if (tok_.kind != Tok::kIdent) return (error("expected name after ."), false);
        parts.push_back(make_scalar(Value::string(tok_.text), tok_.loc));
        advance();
      } else if (tok_.kind == Tok::kLBrack && !tok_.nl_before) {
        advance();
        ++nl_ignore_;
        TermPtr t = expr_term();
        --nl_ignore_;
        if (!t || !expect(Tok::kRBrack, "]")) return false;
        parts.push_back(t);
      } else {
        break;
      }
    }
    bool is_function = false;
    if (tok_.kind == Tok::kLParen && !tok_.nl_before) {
      is_function = true;
      advance();
      ++nl_ignore_;
      if (tok_.kind != Tok::kRParen) {
        for (;;) {
          TermPtr a = expr_term();
          if (!a) return false;
          r->args.push_back(a);
          if (accept(Tok::kComma)) continue;
          break;
        }
      }
      --nl_ignore_;
      if (!expect(Tok::kRParen, ")")) return false;
    }
    bool is_contains = false;
    if (is_ident("contains") && !tok_.nl_before) {
      advance();
      is_contains = true;
      r->keys.push_back(expr_term());
      if (!r->keys.back()) return false;
    } else if ((tok_.kind == Tok::kAssign || tok_.kind == Tok::kUnify) && !tok_.nl_before) {
      r->assign_op = tok_.kind == Tok::kAssign;
      advance();
      r->value = expr_term();
      if (!r->value) return false;
    }
    // Path: leading string parts.
    size_t n_const = 0;
    while (n_const < parts.size() && parts[n_const]->kind == TermKind::kScalar &&
           parts[n_const]->value.is_string()) {
      ++n_const;
    }
    r->path = m.package;
    for (size_t i = 0; i < n_const; ++i) r->path.push_back(parts[i]->value.as_string());
    std::vector<TermPtr> dyn(parts.begin() + static_cast<std::ptrdiff_t>(n_const), parts.end());
    if (is_function) {
      if (!dyn.empty() || is_contains) return (error_at(r->loc, "invalid function head"), false);
      r->kind = RuleKind::kFunction;
    } else if (is_contains) {
      if (!dyn.empty()) return (error_at(r->loc, "contains head with variable path"), false);
      r->kind = RuleKind::kPartialSet;
    } else if (dyn.empty()) {
      r->kind = RuleKind::kComplete;
    } else if (!r->value && dyn.size() == 1 && n_const == 1 && version_ == RegoVersion::kV0) {
      // v0 `p[x] { ... }`: a partial set.
      r->kind = RuleKind::kPartialSet;
      r->keys = dyn;
    } else {
      r->kind = RuleKind::kPartialObject;
      r->keys = dyn;
    }
    if (r->is_default) {
      if (r->kind != RuleKind::kComplete && r->kind != RuleKind::kFunction) {
        return (error_at(r->loc, "default rules must have a complete head"), false);
      }
      if (!r->value) {
        return (error_at(r->loc, "default rule must have a value"), false);
      }
    }
    // v0 `x.a { ... }`: a partial set at x containing "a".
    if (version_ == RegoVersion::kV0 && r->kind == RuleKind::kComplete && !r->value &&
        !is_function && parts.size() == 2 && n_const == 2 && tok_.kind == Tok::kLBrace) {
      r->kind = RuleKind::kPartialSet;
      r->keys.push_back(parts[1]);
      r->path.pop_back();
    }
    if (r->is_default && r->value && !default_value_ok(*r->value)) {
      return (error_at(r->value->loc, "invalid default value: must be a constant term"), false);
    }
    // Body.
    bool has_body = false;
    if (!rule_body(r.get(), &has_body)) return false;
    if (!has_body && !r->value && !r->is_default && r->kind != RuleKind::kPartialSet) {
      return (error_at(r->loc, "rule must have a body or assignment"), false);
    }
    if (!has_body && r->kind == RuleKind::kPartialSet && r->keys.empty()) {
      return (error_at(r->loc, "rule must have a body"), false);
    }
    if (r->is_default && has_body) return (error_at(r->loc, "default rule cannot have a body"), false);
    // Else chain.
    while (is_ident("else")) {
      if (r->kind != RuleKind::kComplete && r->kind != RuleKind::kFunction) {
        return (error("else keyword cannot be used on multi-value rules"), false);
      }
      auto e = std::make_shared<Rule>();
      e->loc = tok_.loc;
      e->file = file_;
      e->kind = r->kind;
      e->path = r->path;
      advance();
      if ((tok_.kind == Tok::kAssign || tok_.kind == Tok::kUnify) && !tok_.nl_before) {
        advance();
        e->value = expr_term();
        if (!e->value) return false;
      }
      bool eb = false;
      if (!rule_body(e.get(), &eb)) return false;
      r->else_chain.push_back(e);
    }
    if (failed_) return false;
    // `head { a } { b }`: further bodies define the same head again.
    std::vector<std::shared_ptr<Rule>> extra;
    while (has_body && tok_.kind == Tok::kLBrace && !tok_.nl_before) {
      auto alt = std::make_shared<Rule>(*r);
      alt->body = Body();
      alt->else_chain.clear();
      alt->loc = tok_.loc;
      if (!braced_body(&alt->body)) return false;
      extra.push_back(alt);
    }
    m.rules.push_back(std::move(r));
    for (auto& x : extra) m.rules.push_back(std::move(x));
    return true;
  }

  static bool default_value_ok(const Term& t) {
    switch (t.kind) {
      case TermKind::kScalar: return true;
      case TermKind::kArray:
      case TermKind::kSet:
      case TermKind::kObject:
        for (const auto& x : t.items) {
          if (!default_value_ok(*x)) return false;
        }
        return true;
      case TermKind::kArrayCompr:
      case TermKind::kSetCompr:
      case TermKind::kObjectCompr: return true;
      default: return false;
    }
  }

  bool rule_body(Rule* r, bool* has_body) {
    *has_body = false;
    if (is_ident("if")) {
      advance();
      *has_body = true;
      if (tok_.kind == Tok::kLBrace) {
        // `if {` starts a body; a set/object literal as the only literal would be odd here.
        return braced_body(&r->body);
      }
      Expr e;
      if (!literal(&e)) return false;
      r->body.exprs.push_back(std::move(e));
      return true;
    }
    if (tok_.kind == Tok::kLBrace) {
      if (version_ == RegoVersion::kV1) {
        error("`if` keyword is required before rule body");
        return false;
      }
      *has_body = true;
      return braced_body(&r->body);
    }
    return true;
  }

  bool braced_body(Body* b) {
    if (!expect(Tok::kLBrace, "{")) return false;
    const int saved = nl_ignore_;
    nl_ignore_ = 0;
    const bool ok = body_until(Tok::kRBrace, b);
    nl_ignore_ = saved;
    if (!ok) return false;
    if (b->exprs.empty()) return (error("found empty body"), false);
    return expect(Tok::kRBrace, "}");
  }

  bool body_until(Tok end, Body* b) {
    DepthGuard g(this);
    if (!g.ok()) return false;
    for (;;) {
      while (accept(Tok::kSemi)) {
      }
      if (failed_) return false;
      if (tok_.kind == end || tok_.kind == Tok::kEof) break;
      Expr e;
      if (!literal(&e)) return false;
      b->exprs.push_back(std::move(e));
      if (tok_.kind == Tok::kSemi || tok_.kind == end) continue;
      if (!tok_.nl_before) {
        error("unexpected token in body");
        return false;
      }
    }
    if (failed_) return false;
    return true;
  }

  bool literal(Expr* e) {
    DepthGuard g(this);
    if (!g.ok()) return false;
    e->loc = tok_.loc;
    if (is_ident("some")) {
      advance();
      std::vector<TermPtr> terms;
      const int saved = nl_ignore_;
      for (;;) {
        TermPtr t = relation_term();  // stops before "in"
        if (!t) return false;
        terms.push_back(t);
        if (tok_.kind == Tok::kComma) {
          advance();
          continue;
        }
        break;
      }
      nl_ignore_ = saved;
      if (is_ident("in")) {
        advance();
        if (terms.size() > 2) return (error("too many terms before in"), false);
        e->kind = ExprKind::kSomeIn;
        if (terms.size() == 2) e->key = terms[0];
        e->val = terms.back();
        e->domain = relation_term();
        if (!e->domain) return false;
      } else {
        e->kind = ExprKind::kSome;
        for (const TermPtr& t : terms) {
          if (t->kind != TermKind::kVar) return (error_at(t->loc, "expected var in some"), false);
        }
        e->some_vars = std::move(terms);
      }
      return with_mods(e);
    }
    if (is_ident("every")) {
      advance();
      e->kind = ExprKind::kEvery;
      std::vector<TermPtr> vars;
      for (;;) {
        if (tok_.kind != Tok::kIdent || is_keyword(tok_.text)) return (error("expected var"), false);
        auto v = make_term(TermKind::kVar, tok_.loc);
        v->name = tok_.text;
        vars.push_back(v);
        advance();
        if (accept(Tok::kComma)) continue;
        break;
      }
      if (vars.size() > 2) return (error("too many vars in every"), false);
      if (!is_ident("in")) return (error("expected in"), false);
      advance();
      if (vars.size() == 2) e->key = vars[0];
      e->val = vars.back();
      e->domain = relation_term();
      if (!e->domain) return false;
      e->body = std::make_shared<Body>();
      if (!braced_body(e->body.get())) return false;
      return with_mods(e);
    }
    if (is_ident("not")) {
      advance();
      e->negated = true;
    }
    TermPtr lhs = member_term();
    if (!lhs) return false;
    if (tok_.kind == Tok::kComma && same_line()) {
      // `k, v in xs`
      advance();
      TermPtr v = relation_term();
      if (!v) return false;
      if (!is_ident("in")) return (error("expected in"), false);
      advance();
      TermPtr dom = relation_term();
      if (!dom) return false;
      e->kind = ExprKind::kTerm;
      e->a = make_op("internal.member_3", {lhs, v, dom}, lhs->loc);
      return with_mods(e);
    }
    if ((tok_.kind == Tok::kAssign || tok_.kind == Tok::kUnify) && same_line()) {
      e->kind = tok_.kind == Tok::kAssign ? ExprKind::kAssign : ExprKind::kUnify;
      advance();
      e->a = lhs;
      e->b = member_term();
      if (!e->b) return false;
      return with_mods(e);
    }
    e->kind = ExprKind::kTerm;
    e->a = lhs;
    return with_mods(e);
  }

  bool with_mods(Expr* e) {
    while (is_ident("with")) {
      advance();
      WithMod w;
      w.target = postfix_term();
      if (!w.target) return false;
      if (!is_ident("as")) return (error("expected as"), false);
      advance();
      w.value = member_term();
      if (!w.value) return false;
      e->withs.push_back(std::move(w));
    }
    return !failed_;
  }

  // ---- expressions ----
  // A full expression usable as a term (no `=`/`:=`).
  TermPtr expr_term() { return member_term(); }

  TermPtr member_term() {
    TermPtr lhs = relation_term();
    while (lhs && is_ident("in") && same_line()) {
      const Location loc = tok_.loc;
      advance();
      TermPtr rhs = relation_term();
      if (!rhs) return nullptr;
      lhs = make_op("internal.member_2", {lhs, rhs}, loc);
    }
    return lhs;
  }

  TermPtr relation_term() {
    TermPtr lhs = or_term();
    for (;;) {
      if (!lhs) return lhs;
      const char* op = nullptr;
      switch (tok_.kind) {
        case Tok::kEq: op = "equal"; break;
        case Tok::kNeq: op = "neq"; break;
        case Tok::kLt: op = "lt"; break;
        case Tok::kLte: op = "lte"; break;
        case Tok::kGt: op = "gt"; break;
        case Tok::kGte: op = "gte"; break;
        default: return lhs;
      }
      const Location loc = tok_.loc;
      advance();
      TermPtr rhs = or_term();
      if (!rhs) return nullptr;
      lhs = make_op(op, {lhs, rhs}, loc);
    }
  }

  TermPtr or_term() {
    TermPtr lhs = and_term();
    while (lhs && tok_.kind == Tok::kBar && !no_bar_) {
      const Location loc = tok_.loc;
      advance();
      TermPtr rhs = and_term();
      if (!rhs) return nullptr;
      lhs = make_op("or", {lhs, rhs}, loc);
    }
    return lhs;
  }

  TermPtr and_term() {
    TermPtr lhs = arith_term();
    while (lhs && tok_.kind == Tok::kAmp) {
      const Location loc = tok_.loc;
      advance();
      TermPtr rhs = arith_term();
      if (!rhs) return nullptr;
      lhs = make_op("and", {lhs, rhs}, loc);
    }
    return lhs;
  }

  TermPtr arith_term() {
    TermPtr lhs = factor_term();
    while (lhs && (tok_.kind == Tok::kPlus || tok_.kind == Tok::kMinus) && infix_continues()) {
      const char* op = tok_.kind == Tok::kPlus ? "plus" : "minus";
      const Location loc = tok_.loc;
      advance();
      TermPtr rhs = factor_term();
      if (!rhs) return nullptr;
      lhs = make_op(op, {lhs, rhs}, loc);
    }
    return lhs;
  }

  TermPtr factor_term() {
    TermPtr lhs = unary_term();
    while (lhs &&
           (tok_.kind == Tok::kStar || tok_.kind == Tok::kSlash || tok_.kind == Tok::kPercent)) {
      const char* op = tok_.kind == Tok::kStar ? "mul" : (tok_.kind == Tok::kSlash ? "div" : "rem");
      const Location loc = tok_.loc;
      advance();
      TermPtr rhs = unary_term();
      if (!rhs) return nullptr;
      lhs = make_op(op, {lhs, rhs}, loc);
    }
    return lhs;
  }

  TermPtr unary_term() {
    if (tok_.kind == Tok::kMinus) {
      const Location loc = tok_.loc;
      advance();
      if (tok_.kind == Tok::kNumber) {
        TermPtr n = postfix_term();
        if (!n) return nullptr;
        if (n->kind == TermKind::kScalar && n->value.is_number()) {
          const Value& v = n->value;
          n->value = v.is_int() && v.as_int() != INT64_MIN ? Value::integer(-v.as_int())
                                                           : Value::number(-v.as_double());
          n->loc = loc;
          return n;
        }
        return make_op("minus", {make_scalar(Value::integer(0), loc), n}, loc);
      }
      // Rego's grammar has negative number literals, not a negation operator.
      error_at(loc, "unary - can only be used with numeric literals");
      return nullptr;
    }
    return postfix_term();
  }

  TermPtr postfix_term() {
    DepthGuard g(this);
    if (!g.ok()) return nullptr;
    TermPtr t = primary_term();
    if (!t) return nullptr;
    std::vector<TermPtr> ops;
    auto flush = [&]() {
      if (ops.empty()) return;
      auto r = make_term(TermKind::kRef, t->loc);
      r->items.push_back(t);
      for (auto& o : ops) r->items.push_back(o);
      ops.clear();
      t = r;
    };
    for (;;) {
      if (tok_.nl_before && nl_ignore_ == 0) break;
      if (tok_.kind == Tok::kDot) {
        advance();
        if (tok_.kind != Tok::kIdent) return (error("expected name after ."), nullptr);
        ops.push_back(make_scalar(Value::string(tok_.text), tok_.loc));
        advance();
      } else if (tok_.kind == Tok::kLBrack) {
        advance();
        ++nl_ignore_;
        const bool saved_bar = no_bar_;
        no_bar_ = false;
        TermPtr k = expr_term();
        no_bar_ = saved_bar;
        --nl_ignore_;
        if (!k || !expect(Tok::kRBrack, "]")) return nullptr;
        ops.push_back(k);
      } else if (tok_.kind == Tok::kLParen) {
        // Call: the operator must be a dotted name.
        std::string name;
        if (t->kind != TermKind::kVar) return (error("invalid call target"), nullptr);
        name = t->name;
        for (const TermPtr& o : ops) {
          if (o->kind != TermKind::kScalar || !o->value.is_string()) {
            return (error("invalid call target"), nullptr);
          }
          name += "." + o->value.as_string();
        }
        const Location loc = t->loc;
        ops.clear();
        advance();
        ++nl_ignore_;
        const bool saved_bar = no_bar_;
        no_bar_ = false;
        std::vector<TermPtr> args;
        if (tok_.kind != Tok::kRParen) {
          for (;;) {
            TermPtr a = expr_term();
            if (!a) return nullptr;
            args.push_back(a);
            if (accept(Tok::kComma)) continue;
            break;
          }
        }
        no_bar_ = saved_bar;
        --nl_ignore_;
        if (!expect(Tok::kRParen, ")")) return nullptr;
        if (name == "set" && args.empty()) {
          t = make_scalar(Value::empty_set(), loc);
        } else {
          t = make_call(std::move(name), std::move(args), loc);
        }
      } else {
        break;
      }
    }
    flush();
    return t;
  }

  TermPtr primary_term() {
    const Location loc = tok_.loc;
    switch (tok_.kind) {
      case Tok::kNumber: {
        const std::string& s = tok_.text;
        Value v;
        int64_t i = 0;
        auto r = std::from_chars(s.data(), s.data() + s.size(), i);
        if (r.ec == std::errc() && r.ptr == s.data() + s.size()) {
          v = Value::integer(i);
        } else {
          v = Value::number(std::strtod(s.c_str(), nullptr));
        }
        advance();
        return make_scalar(std::move(v), loc);
      }
      case Tok::kString: {
        Value v = Value::string(tok_.text);
        advance();
        return make_scalar(std::move(v), loc);
      }
      case Tok::kIdent: {
        if (tok_.text == "true" || tok_.text == "false") {
          Value v = Value::boolean(tok_.text == "true");
          advance();
          return make_scalar(std::move(v), loc);
        }
        if (tok_.text == "null") {
          advance();
          return make_scalar(Value::null(), loc);
        }
        if (is_keyword(tok_.text) &&
            !(tok_.text == "contains" && next_.kind == Tok::kLParen)) {
          return (error("unexpected keyword " + tok_.text), nullptr);
        }
        auto v = make_term(TermKind::kVar, loc);
        v->name = tok_.text;
        v->is_wildcard = tok_.text == "_";
        advance();
        return v;
      }
      case Tok::kLParen: {
        advance();
        ++nl_ignore_;
        const bool saved_bar = no_bar_;
        no_bar_ = false;
        TermPtr t = expr_term();
        no_bar_ = saved_bar;
        --nl_ignore_;
        if (!t || !expect(Tok::kRParen, ")")) return nullptr;
        return t;
      }
      case Tok::kLBrack: return array_literal();
      case Tok::kLBrace: return brace_literal();
      default: break;
    }
    error("unexpected token");
    return nullptr;
  }

  // Parses the body of a comprehension up to `end` (newlines significant again).
  bool compr_body(Tok end, std::shared_ptr<Body>* out) {
    *out = std::make_shared<Body>();
    const int saved = nl_ignore_;
    const bool saved_bar = no_bar_;
    nl_ignore_ = 0;
    no_bar_ = false;
    const bool ok = body_until(end, out->get());
    nl_ignore_ = saved;
    no_bar_ = saved_bar;
    if (!ok) return false;
    if ((*out)->exprs.empty()) return (error("empty comprehension body"), false);
    return true;
  }

  TermPtr head_expr() {
    const bool saved = no_bar_;
    no_bar_ = true;
    TermPtr t = expr_term();
    no_bar_ = saved;
    return t;
  }

  struct SavedState {
    Lexer lex;
    Token tok, next;
    std::string lex_err;
    Location lex_err_loc;
    Status status;
    bool failed;
    int nl_ignore;
    bool no_bar;
    size_t depth;
  };
  SavedState save() const {
    return {lex_, tok_, next_, lex_err_, lex_err_loc_, status_, failed_, nl_ignore_, no_bar_, depth_};
  }
  void restore(const SavedState& st) {
    lex_ = st.lex;
    tok_ = st.tok;
    next_ = st.next;
    lex_err_ = st.lex_err;
    lex_err_loc_ = st.lex_err_loc;
    status_ = st.status;
    failed_ = st.failed;
    nl_ignore_ = st.nl_ignore;
    no_bar_ = st.no_bar;
    depth_ = st.depth;
  }

  TermPtr array_literal() {
    const Location loc = tok_.loc;
    advance();
    ++nl_ignore_;
    auto t = make_term(TermKind::kArray, loc);
    if (tok_.kind == Tok::kRBrack) {
      --nl_ignore_;
      advance();
      return t;
    }
    const SavedState before_head = save();
    TermPtr first = head_expr();
    if (!first) return nullptr;
    if (tok_.kind == Tok::kBar) {
      advance();
      auto c = make_term(TermKind::kArrayCompr, loc);
      c->head = first;
      if (compr_body(Tok::kRBrack, &c->body) && tok_.kind == Tok::kRBrack) {
        --nl_ignore_;
        advance();
        return c;
      }
      // Not a comprehension: `[a | b, c]` is an array whose first element is `a | b`.
      restore(before_head);
      const bool saved = no_bar_;
      no_bar_ = false;
      first = expr_term();
      no_bar_ = saved;
      if (!first) return nullptr;
    }
    t->items.push_back(first);
    const bool saved_bar = no_bar_;
    no_bar_ = false;
    while (accept(Tok::kComma)) {
      if (tok_.kind == Tok::kRBrack) break;
      TermPtr x = expr_term();
      if (!x) return nullptr;
      t->items.push_back(x);
    }
    no_bar_ = saved_bar;
    --nl_ignore_;
    if (!expect(Tok::kRBrack, "]")) return nullptr;
    return t;
  }

  TermPtr brace_literal() {
    const Location loc = tok_.loc;
    advance();
    ++nl_ignore_;
    if (tok_.kind == Tok::kRBrace) {
      --nl_ignore_;
      advance();
      return make_scalar(Value::empty_object(), loc);
    }
    TermPtr first = head_expr();
    if (!first) return nullptr;
    if (tok_.kind == Tok::kColon) {
      advance();
      TermPtr val = head_expr();
      if (!val) return nullptr;
      if (tok_.kind == Tok::kBar) {
        advance();
        auto c = make_term(TermKind::kObjectCompr, loc);
        c->head = first;
        c->head2 = val;
        if (!compr_body(Tok::kRBrace, &c->body)) return nullptr;
        --nl_ignore_;
        if (!expect(Tok::kRBrace, "}")) return nullptr;
        return c;
      }
      auto t = make_term(TermKind::kObject, loc);
      t->items.push_back(first);
      t->items.push_back(val);
      const bool saved_bar = no_bar_;
      no_bar_ = false;
      while (accept(Tok::kComma)) {
        if (tok_.kind == Tok::kRBrace) break;
        TermPtr k = expr_term();
        if (!k || !expect(Tok::kColon, ":")) return nullptr;
        TermPtr v = expr_term();
        if (!v) return nullptr;
        t->items.push_back(k);
        t->items.push_back(v);
      }
      no_bar_ = saved_bar;
      --nl_ignore_;
      if (!expect(Tok::kRBrace, "}")) return nullptr;
      return t;
    }
    if (tok_.kind == Tok::kBar) {
      advance();
      auto c = make_term(TermKind::kSetCompr, loc);
      c->head = first;
      if (!compr_body(Tok::kRBrace, &c->body)) return nullptr;
      --nl_ignore_;
      if (!expect(Tok::kRBrace, "}")) return nullptr;
      return c;
    }
    auto t = make_term(TermKind::kSet, loc);
    t->items.push_back(first);
    const bool saved_bar = no_bar_;
    no_bar_ = false;
    while (accept(Tok::kComma)) {
      if (tok_.kind == Tok::kRBrace) break;
      TermPtr x = expr_term();
      if (!x) return nullptr;
      t->items.push_back(x);
    }
    no_bar_ = saved_bar;
    --nl_ignore_;
    if (!expect(Tok::kRBrace, "}")) return nullptr;
    return t;
  }

  Lexer lex_;
  std::string file_;
  RegoVersion version_;
  ParseLimits limits_;
  size_t text_size_;
  Token tok_, next_;
  std::string lex_err_;
  Location lex_err_loc_;
  Status status_;
  bool failed_ = false;
  int nl_ignore_ = 0;
  bool no_bar_ = false;
  size_t depth_ = 0;
};

}  // namespace

Result<Module> parse_module(std::string_view text, std::string_view file, RegoVersion version,
                            const ParseLimits& limits) {
  Parser p(text, file, version, limits);
  return p.module();
}

Result<Body> parse_query(std::string_view text, const ParseLimits& limits) {
  Parser p(text, "query", RegoVersion::kV1, limits);
  return p.query();
}

Result<TermPtr> parse_term(std::string_view text, const ParseLimits& limits) {
  Parser p(text, "term", RegoVersion::kV1, limits);
  return p.single_term();
}

}  // namespace ztslm::policy
