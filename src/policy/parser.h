// Rego parser: module and query text to the AST of policy/ast.h.
//
// Grammar accepted (Rego v1, OPA >= 1.0; v0 heads and bodies when `version` is kV0):
//
//   module   := "package" ref { import } { rule }
//   import   := "import" ref [ "as" var ]
//   rule     := [ "default" ] head [ rule-body ] { "else" [ ( ":=" | "=" ) term ] [ rule-body ] }
//   head     := ref [ "(" term { "," term } ")" ] [ "contains" term | ( ":=" | "=" ) expr ]
//   rule-body:= "if" ( "{" body "}" | literal ) | "{" body "}"            (bare "{" is v0)
//   body     := literal { ( ";" | newline ) literal }
//   literal  := "some" var { "," var } | "some" term [ "," term ] "in" expr
//             | "every" var [ "," var ] "in" expr "{" body "}"
//             | [ "not" ] expr { "with" term "as" expr }
//   expr     := member [ ( ":=" | "=" ) member ] | term "," term "in" relation
//   member   := relation { "in" relation }
//   relation := or { ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) or }
//   or       := and { "|" and }        and := arith { "&" arith }
//   arith    := factor { ( "+" | "-" ) factor }     factor := unary { ( "*" | "/" | "%" ) unary }
//   unary    := "-" unary | postfix
//   postfix  := primary { "." var | "[" expr "]" | "(" [ expr { "," expr } ] ")" }
//   primary  := number | string | raw-string | true | false | null | var | "(" expr ")"
//             | "[" [ expr { "," expr } ] "]" | "[" expr "|" body "]"
//             | "{" [ expr ":" expr { "," ... } ] "}" | "{" expr { "," expr } "}"
//             | "{" expr "|" body "}" | "{" expr ":" expr "|" body "}" | "set(" ")"
//
// Binary operators, "[", "(" and "." do not continue an expression across a newline inside a
// body (outside brackets), which is how bodies separate literals without ";".
// Errors are kMalformed with "FILE:LINE:COL: rego_parse_error: <what>".
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "policy/ast.h"

namespace ztslm::policy {

enum class RegoVersion : uint8_t { kV0, kV1 };

struct ParseLimits {
  size_t max_source_bytes = 1u << 20;  // one module; policies are hand-written text
  size_t max_depth = 128;              // nesting of terms/bodies; bounds parser recursion
};

// Parses one module. `file` is used in error locations.
Result<Module> parse_module(std::string_view text, std::string_view file,
                            RegoVersion version = RegoVersion::kV1,
                            const ParseLimits& limits = ParseLimits());

// Parses a query (a body: literals separated by ";" or newlines).
Result<Body> parse_query(std::string_view text, const ParseLimits& limits = ParseLimits());

// Parses a single term (for `input_term` and --input-term): no variables may remain unresolved
// at evaluation, which the evaluator checks.
Result<TermPtr> parse_term(std::string_view text, const ParseLimits& limits = ParseLimits());

}  // namespace ztslm::policy
