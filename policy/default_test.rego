# Tests for policy/default.rego (run with `ztslm policy test policy/`; a reload whose tests
# fail keeps the policy in force).
package ztslm.authz

import rego.v1

base_input := {
	"principal": {"id": "alice", "tenant": "acme", "roles": ["user"], "method": "api_key", "attributes": {}},
	"route": "/v1/chat/completions",
	"request": {"model": "qwen2-0.5b-instruct", "max_tokens": 256, "stream": false},
	"model": {"name": "qwen2-0.5b-instruct", "digest": "sha256:00", "signer": "ztslm-release", "verified": true},
	"session": {"id": "s1", "tenant": "acme"},
	"client": {"address": "10.0.0.7"},
	"time": 1700000000000000000,
	"guard": {"injection_score": 0.05, "reasons": [], "counts": {}, "findings": [], "indirect": false, "parts": []},
}

test_user_allowed_own_model if {
	allow with input as base_input
}

test_obligations_for_user if {
	o := obligations with input as base_input
	o.max_tokens == 512
	o.quota_class == "default"
	o.guard_profile == "strict"
	o.redact.email == "redact"
	o.redact.private_key == "block"
	o.injection_threshold == 0.8
}

test_tenant_isolation_denies_other_tenant_session if {
	not allow with input as object.union(base_input, {"session": {"tenant": "globex"}})
	reasons["session belongs to another tenant"] with input as object.union(base_input, {"session": {"tenant": "globex"}})
}

test_missing_tenant_denied if {
	not allow with input as object.union(base_input, {"principal": {"tenant": null}})
}

test_unknown_role_cannot_generate if {
	req := object.union(base_input, {"principal": {"roles": ["reader"]}})
	not allow with input as req
	reasons["no role of the principal grants this model"] with input as req
}

test_analyst_elevated if {
	req := object.union(base_input, {"principal": {"roles": ["analyst"]}, "request": {"model": "phi-3-mini", "max_tokens": 2000}})
	allow with input as req
	obligations.max_tokens == 2048 with input as req
	obligations.quota_class == "elevated" with input as req
}

test_admin_any_model if {
	req := object.union(base_input, {"principal": {"roles": ["admin"]}, "request": {"model": "anything-verified"}})
	allow with input as req
	obligations.guard_profile == "standard" with input as req
}

test_per_role_max_tokens if {
	not allow with input as object.union(base_input, {"request": {"max_tokens": 513}})
	allow with input as object.union(base_input, {"request": {"max_tokens": 512}})
}

test_unverified_model_denied if {
	not allow with input as object.union(base_input, {"model": {"verified": false}})
	not allow with input as object.union(base_input, {"model": {"verified": false, "allow_unsigned": false}})
	reasons["model provenance is not verified"] with input as object.union(base_input, {"model": {"verified": false}})
}

test_unverified_model_allowed_only_when_the_operator_allows_unsigned if {
	allow with input as object.union(base_input, {"model": {"verified": false, "allow_unsigned": true}})
	# Only the boolean true counts.
	not allow with input as object.union(base_input, {"model": {"verified": false, "allow_unsigned": "true"}})
}

test_actions_by_role if {
	models := object.union(base_input, {"action": "models", "route": "/v1/models", "request": {}})
	allow with input as models
	not allow with input as object.union(models, {"principal": {"roles": ["reader"]}})
	metrics := object.union(base_input, {"action": "metrics", "route": "/metrics", "request": {}})
	not allow with input as metrics
	reasons["no role of the principal allows metrics"] with input as metrics
	allow with input as object.union(metrics, {"principal": {"roles": ["admin"]}})
	sessions := object.union(base_input, {"action": "sessions", "route": "/v1/sessions", "request": {}})
	allow with input as sessions
	not allow with input as object.union(sessions, {"principal": {"tenant": ""}})
	# Actions other than generation do not depend on the model's provenance.
	allow with input as object.union(models, {"model": {"verified": false}})
}

test_generate_action_is_a_generation if {
	gen := object.union(base_input, {"action": "generate"})
	allow with input as gen
	not allow with input as object.union(gen, {"model": {"verified": false}})
	not allow with input as object.union(gen, {"request": {"max_tokens": 9000}})
}

test_high_injection_score_denied if {
	req := object.union(base_input, {"guard": {"injection_score": 0.93}})
	not allow with input as req
	reasons["input guard: prompt injection suspected"] with input as req
}

test_high_severity_secret_finding_denied if {
	req := object.union(base_input, {"guard": {"findings": [{"type": "private_key", "severity": "high"}]}})
	not allow with input as req
}

test_pasted_aws_secret_key_denied_and_card_allowed if {
	key := object.union(base_input, {"guard": {"findings": [{"type": "aws_secret_access_key", "count": 1, "severity": "high"}]}})
	not allow with input as key
	reasons["input guard: high-severity aws_secret_access_key finding"] with input as key
	card := object.union(base_input, {"guard": {"findings": [{"type": "credit_card", "count": 1, "severity": "medium"}]}})
	allow with input as card
}

test_tag_character_smuggling_denied if {
	req := object.union(base_input, {"guard": {
		"injection_score": 0.3,
		"counts": {"tag_character": 1},
		"findings": [{"type": "tag_character", "count": 1, "severity": "high"}],
	}})
	not allow with input as req
	reasons["input guard: high-severity tag_character finding"] with input as req
}

test_low_severity_input_finding_allowed if {
	req := object.union(base_input, {"guard": {"findings": [{"type": "invisible", "count": 2, "severity": "low"}]}})
	allow with input as req
}

test_injection_below_threshold_allowed if {
	allow with input as object.union(base_input, {"guard": {"injection_score": 0.79}})
}

test_redactable_finding_allowed if {
	req := object.union(base_input, {"guard": {"findings": [{"type": "email", "severity": "high"}]}})
	allow with input as req
}

test_no_input_denied if {
	not allow
}
