# Default ztslm authorisation policy (the decision `data.ztslm.authz`).
#
# The gateway evaluates this document for every authenticated request with the `input`
# described in src/policy/README.md and enforces the result (it is compiled into the binary and
# in force whenever `policy.path` is empty):
#   allow        boolean; anything but `true` is a deny
#   reasons      set of strings explaining a deny (audited, never shown to the caller verbatim)
#   obligations  what the gateway must enforce on an allowed request:
#                  max_tokens     cap on generated tokens for the principal's role
#                  guard_profile  input-guard profile: "strict" sends the stripped view of
#                                 every part (no invisible characters), "standard" the original
#                  injection_threshold  the gateway also refuses input scoring at or above it
#                  redact         output finding type (guard/dlp.h names) -> "redact", "block"
#                                 or "flag" for the streaming redactor (unnamed types: redact)
#                  quota_class    quota bucket ("default", "elevated", "admin")
package ztslm.authz

import rego.v1

default allow := false

# Which models each role may use: "*" grants every model the gateway serves (whose provenance
# verified, see below); list model names instead to narrow a role.
role_models := {
	"admin": {"*"},
	"analyst": {"*"},
	"user": {"*"},
}

# What each role may do besides generating (`input.action`): list models, read metrics, open
# and close sessions, manage keys.
role_actions := {
	"admin": {"models", "metrics", "sessions", "keys"},
	"analyst": {"models", "sessions"},
	"user": {"models", "sessions"},
}

# Largest max_tokens a role may request; the cap is also an obligation.
role_max_tokens := {"admin": 8192, "analyst": 2048, "user": 512}

role_quota_class := {"admin": "admin", "analyst": "elevated", "user": "default"}

# Input-guard score at or above which a request is refused.
injection_threshold := 0.8

allow if {
	count(deny) == 0
}

# A request without an action (e.g. `ztslm policy eval` input) is judged as a generation.
generating if input.action == "generate"

generating if not input.action

deny contains sprintf("no role of the principal allows %v", [input.action]) if {
	not generating
	not action_allowed
}

action_allowed if {
	some role in input.principal.roles
	input.action in role_actions[role]
}

# Roles of the principal that grant the requested model.
granting_roles contains role if {
	some role in input.principal.roles
	model_granted(role, input.request.model)
}

model_granted(role, _) if "*" in role_models[role]

model_granted(role, model) if model in role_models[role]

deny contains "principal has no tenant" if not valid_tenant

valid_tenant if {
	is_string(input.principal.tenant)
	input.principal.tenant != ""
}

# Tenant isolation: a session belongs to one tenant.
deny contains "session belongs to another tenant" if {
	input.session.tenant
	input.session.tenant != input.principal.tenant
}

# Only a model whose signature verified may generate, unless the operator's config admits
# unsigned models (`model.allow_unsigned: true` becomes `input.model.allow_unsigned`).
deny contains "model provenance is not verified" if {
	generating
	not input.model.verified == true
	not input.model.allow_unsigned == true
}

deny contains "no role of the principal grants this model" if {
	generating
	count(granting_roles) == 0
}

deny contains msg if {
	generating
	input.request.max_tokens > max_tokens
	msg := sprintf("max_tokens %v exceeds the role cap %v", [input.request.max_tokens, max_tokens])
}

deny contains "input guard: prompt injection suspected" if {
	input.guard.injection_score >= injection_threshold
}

deny contains sprintf("input guard: high-severity %v finding", [f.type]) if {
	some f in input.guard.findings
	f.severity == "high"
	not f.type in redactable_types
}

# Largest cap among the roles that grant the model (0 when none does).
max_tokens := max([role_max_tokens[r] | some r in granting_roles]) if count(granting_roles) > 0

default max_tokens := 0

quota_class := "admin" if "admin" in granting_roles

else := "elevated" if "analyst" in granting_roles

else := "default"

guard_profile := "standard" if "admin" in input.principal.roles

else := "strict"

# Finding types the output redactor can mask instead of refusing the request.
redactable_types := {"email", "phone", "credit_card", "api_key"}

# Output redaction: personal data is masked; a private key in the output ends the response.
redact[t] := "redact" if some t in {"email", "phone", "credit_card", "iban", "us_ssn"}

redact["private_key"] := "block"

reasons := deny

obligations := {
	"max_tokens": max_tokens,
	"guard_profile": guard_profile,
	"injection_threshold": injection_threshold,
	"redact": redact,
	"quota_class": quota_class,
}
