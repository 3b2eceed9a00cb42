// Parser, evaluator, budget and decision-point behaviour (the conformance suites live in
// conformance_test.cc).
#include <atomic>
#include <thread>

#include "policy/decision.h"
#include "policy/json.h"
#include "policy/parser.h"
#include "policy/policy.h"
#include "policy/regex.h"
#include "test_util.h"

namespace ztslm::policy {
namespace {

using ::ztslm::testing::repo_data_path;

Value json(std::string_view s) {
  auto v = parse_json(s);
  EXPECT_TRUE(v.has_value()) << v.error().to_string();
  return v.has_value() ? *v : Value();
}

std::shared_ptr<const Policy> compile_ok(const std::string& text, Value data = Value()) {
  auto p = Policy::compile({{"test.rego", text}}, data);
  EXPECT_TRUE(p.has_value()) << p.error().to_string();
  return p.has_value() ? *p : nullptr;
}

Value eval(const Policy& p, std::string_view path, Value input = Value()) {
  EvalOptions o;
  o.input = input;
  auto v = p.eval_path(path, o);
  EXPECT_TRUE(v.has_value()) << v.error().to_string();
  return v.has_value() ? *v : Value();
}

class StepClock final : public Clock {
 public:
  explicit StepClock(int64_t step) : step_(step) {}
  int64_t now_ns() const override { return t_.fetch_add(step_) + step_; }

 private:
  int64_t step_;
  mutable std::atomic<int64_t> t_{1'000'000'000'000'000'000};
};

TEST(ParserTest, SyntaxErrorsCarryFileLineColumn) {
  struct Case {
    const char* text;
    const char* where;
  };
  const Case cases[] = {
      {"package a\np if {\n  x := \n}\n", "m.rego:4:1:"},
      {"package a\np := \"unterminated\n", "m.rego:2:6:"},  // where the string starts
      {"package a\np if { 1 ! 2 }\n", "m.rego:2:10:"},
      {"p := 1\n", "m.rego:1:1:"},
      {"package a\np { true }\n", "m.rego:2:3:"},  // v1 needs `if`
  };
  for (const Case& c : cases) {
    auto m = parse_module(c.text, "m.rego");
    ASSERT_FALSE(m.has_value()) << c.text;
    EXPECT_EQ(m.error().code(), StatusCode::kMalformed);
    EXPECT_NE(m.error().message().find(c.where), std::string::npos) << m.error().message();
    EXPECT_NE(m.error().message().find("rego_parse_error"), std::string::npos);
  }
}

TEST(ParserTest, NestingBeyondLimitIsRefusedNotRecursedInto) {
  std::string deep = "package a\np := ";
  for (int i = 0; i < 5000; ++i) deep += "[";
  auto m = parse_module(deep, "deep.rego");
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.error().message().find("nesting exceeds limit"), std::string::npos);
}

TEST(ParserTest, V0SyntaxOnlyWhenAsked) {
  const char* v0 = "package a\np[x] { x := 1 }\n";
  EXPECT_FALSE(parse_module(v0, "a.rego", RegoVersion::kV1).has_value());
  auto m = parse_module(v0, "a.rego", RegoVersion::kV0);
  ASSERT_TRUE(m.has_value()) << m.error().to_string();
  EXPECT_EQ(m->rules[0]->kind, RuleKind::kPartialSet);
}

TEST(EvalTest, RuleKindsDefaultsElseAndFunctions) {
  auto p = compile_ok(R"(package t
default allow := false
allow if input.user == "alice"
s contains x if some x in [1, 2, 2, 3]
o[k] := v if some k, v in {"a": 1, "b": 2}
grade := "A" if input.score >= 90
else := "B" if input.score >= 80
else := "C"
f(x) := x * 2
g(x) := "neg" if x < 0
else := "pos"
double := [f(1), f(2), g(-1), g(1)]
)");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(eval(*p, "data.t.allow", json(R"({"user": "alice"})")), Value::boolean(true));
  EXPECT_EQ(eval(*p, "data.t.allow", json(R"({"user": "bob"})")), Value::boolean(false));
  EXPECT_EQ(eval(*p, "data.t.s"), Value::set({Value::integer(1), Value::integer(2), Value::integer(3)}));
  EXPECT_EQ(eval(*p, "data.t.o"), json(R"({"a": 1, "b": 2})"));
  EXPECT_EQ(eval(*p, "data.t.grade", json(R"({"score": 85})")), Value::string("B"));
  EXPECT_EQ(eval(*p, "data.t.grade", json(R"({"score": 10})")), Value::string("C"));
  EXPECT_EQ(to_json(eval(*p, "data.t.double")), R"([2,4,"neg","pos"])");
}

TEST(EvalTest, UndefinedIsNotFalseAndConflictsAreErrors) {
  auto p = compile_ok(R"(package t
p if false
q := 1 if true
q := 2 if true
)");
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(eval(*p, "data.t.p").is_defined());
  EvalOptions o;
  auto r = p->eval_path("data.t.q", o);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("eval_conflict_error"), std::string::npos);
}

TEST(EvalTest, VirtualDocumentsAcrossPackagesAndWith) {
  auto lib = R"(package lib
admins := {"alice"}
is_admin(u) if u in admins
)";
  auto app = R"(package app
import data.lib
allow if lib.is_admin(input.user)
)";
  auto p = Policy::compile({{"lib.rego", lib}, {"app.rego", app}}, Value());
  ASSERT_TRUE(p.has_value()) << p.error().to_string();
  EXPECT_EQ(eval(**p, "data.app.allow", json(R"({"user": "alice"})")), Value::boolean(true));
  EvalOptions o;
  auto rows = (*p)->query(R"(x := data.app.allow with input.user as "bob" with data.lib.admins as {"bob"})", o);
  ASSERT_TRUE(rows.has_value()) << rows.error().to_string();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0][0].second, Value::boolean(true));
}

TEST(EvalTest, IntegersStayExactAndOrderIsOpas) {
  auto p = compile_ok(R"(package t
big := 9007199254740993 + 2
mixed := sort([{"a": 1}, {1}, [1], "s", 1, true, null])
)");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(to_json(eval(*p, "data.t.big")), "9007199254740995");
  EXPECT_EQ(to_rego(eval(*p, "data.t.mixed")), R"([null, true, 1, "s", [1], {"a": 1}, {1}])");
}

TEST(EvalTest, StepBudgetStopsRunawayPolicy) {
  auto p = compile_ok(R"(package t
n := numbers.range(1, 2000)
p := count([1 | n[_]; n[_]; n[_]])
)");
  ASSERT_NE(p, nullptr);
  EvalOptions o;
  o.limits.max_steps = 100'000;
  o.limits.max_time_ns = int64_t{600} * 1'000'000'000;  // only the step budget may stop it
  auto r = p->eval_path("data.t.p", o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.error().message().find("step budget"), std::string::npos);
}

TEST(EvalTest, TimeBudgetUsesInjectedClock) {
  auto p = compile_ok("package t\np := count([x | some x in numbers.range(1, input.n)])\n");
  ASSERT_NE(p, nullptr);
  StepClock clock(1'000'000);  // every read advances 1 ms
  EvalOptions o;
  o.input = json(R"({"n": 100000})");
  o.clock = &clock;
  o.limits.max_time_ns = 10'000'000;
  o.limits.time_check_interval = 16;
  auto r = p->eval_path("data.t.p", o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kDeadlineExceeded);
}

TEST(EvalTest, MemoryBudgetIsCheckedBeforeAllocating) {
  auto p = compile_ok("package t\np := count(numbers.range(1, 50000000))\n");
  ASSERT_NE(p, nullptr);
  EvalOptions o;
  o.limits.max_bytes = 1 << 20;
  auto r = p->eval_path("data.t.p", o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kResourceExhausted);
}

TEST(EvalTest, TimeNowComesFromTheClock) {
  auto p = compile_ok("package t\nnow := time.now_ns()\nday := time.weekday(now)\n");
  ASSERT_NE(p, nullptr);
  StepClock clock(0);
  EvalOptions o;
  o.clock = &clock;
  auto v = p->eval_path("data.t.now", o);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->as_int(), 1'000'000'000'000'000'000);
  EXPECT_EQ(*p->eval_path("data.t.day", o), Value::string("Sunday"));  // 2001-09-09
}

TEST(RegexTest, LinearTimeOnPathologicalPattern) {
  auto re = Regex::compile("(a+)+$");
  ASSERT_TRUE(re.has_value());
  const std::string text(20000, 'a');
  EXPECT_FALSE(re->search(text + "b"));  // backtracking engines take exponential time here
  EXPECT_TRUE(re->search(text));
  EXPECT_FALSE(Regex::compile("(unclosed").has_value());
}

TEST(DecisionTest, DefaultPolicyDecisions) {
  auto files = read_policy_files({std::string(ZTSLM_SOURCE_DIR) + "/policy"});
  ASSERT_TRUE(files.has_value()) << files.error().to_string();
  DecisionPoint pdp({});
  ASSERT_THAT(pdp.load(*files, Value()), IsOk());
  const Value ok = json(R"({"principal": {"id": "a", "tenant": "acme", "roles": ["analyst"]},
      "request": {"model": "phi-3-mini", "max_tokens": 100}, "model": {"verified": true},
      "session": {"tenant": "acme"}, "guard": {"injection_score": 0.1, "findings": []}})");
  Decision d = pdp.decide(ok);
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(d.obligations.get("max_tokens"), Value::integer(2048));
  EXPECT_EQ(d.obligations.get("quota_class"), Value::string("elevated"));

  const Value other_tenant = json(R"({"principal": {"id": "a", "tenant": "acme", "roles": ["analyst"]},
      "request": {"model": "phi-3-mini"}, "model": {"verified": true}, "session": {"tenant": "globex"}})");
  d = pdp.decide(other_tenant);
  EXPECT_FALSE(d.allow);
  EXPECT_NE(std::find(d.reasons.begin(), d.reasons.end(), "session belongs to another tenant"),
            d.reasons.end());
}

TEST(DecisionTest, BadReloadKeepsPolicyInForce) {
  DecisionPoint pdp({});
  ASSERT_THAT(pdp.load({{"a.rego", "package ztslm.authz\nallow := true\ntest_ok if allow\n"}}, Value()),
              IsOk());
  const auto first = pdp.current();
  // Does not parse.
  EXPECT_THAT(pdp.load({{"a.rego", "package ztslm.authz\nallow := \n"}}, Value()),
              StatusIs(StatusCode::kMalformed));
  // Parses but fails its own test.
  Status s = pdp.load({{"a.rego", "package ztslm.authz\nallow := false\ntest_allow if allow\n"}}, Value());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("test_allow"), std::string::npos);
  EXPECT_EQ(pdp.current(), first);
  EXPECT_EQ(pdp.generation(), 1u);
  EXPECT_TRUE(pdp.decide(Value::empty_object()).allow);
}

TEST(DecisionTest, BlownBudgetIsADenyWithReason) {
  DecisionPoint::Options o;
  o.limits.max_steps = 1000;
  o.require_tests_pass = false;
  DecisionPoint pdp(o);
  ASSERT_THAT(pdp.load({{"a.rego", "package ztslm.authz\nallow if count([x | some x in numbers.range(1, input.n)]) > 0\n"}},
                       Value()),
              IsOk());
  const Decision d = pdp.decide(json(R"({"n": 100000})"));
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(d.error.code(), StatusCode::kResourceExhausted);
  ASSERT_FALSE(d.reasons.empty());
  EXPECT_NE(d.reasons[0].find("step budget"), std::string::npos);
}

TEST(DecisionTest, ConcurrentDecisionsDuringReload) {
  DecisionPoint pdp({});
  ASSERT_THAT(pdp.load({{"a.rego", "package ztslm.authz\nallow := true\n"}}, Value()), IsOk());
  std::atomic<bool> stop{false};
  std::atomic<int> denies{0};
  std::thread reader([&] {
    while (!stop.load()) {
      if (!pdp.decide(Value::empty_object()).allow) denies.fetch_add(1);
    }
  });
  for (int i = 0; i < 50; ++i) {
    ASSERT_THAT(pdp.load({{"a.rego", "package ztslm.authz\nallow := true\nv := " + std::to_string(i) + "\n"}},
                         Value()),
                IsOk());
  }
  stop.store(true);
  reader.join();
  EXPECT_EQ(denies.load(), 0);
  EXPECT_EQ(pdp.generation(), 51u);
}

}  // namespace
}  // namespace ztslm::policy
