// Package secrets is the one table of secret formats Kilometers knows: keys
// and tokens with a recognisable shape (AWS, GitHub, GitLab, Slack, Stripe,
// Google, OpenAI and Anthropic, npm, SendGrid, JWTs, PEM private keys,
// Kilometers' own keys).
//
// Analysis (shared/analysis) reports a message that holds one of them as a
// secret in its arguments or result, and redaction (shared/redact) replaces
// each of them before a payload leaves the machine. Both compile their
// matchers from Formats, so whatever analysis calls a secret is redacted:
// two tables drifted apart once (different token lengths), and a token that
// analysis flagged was shipped as it was.
//
// Assignments are the second table: literal values given to password-like
// names, which analysis calls passwords, and redaction replaces too.
// Redaction also replaces secrets by other contexts (Bearer credentials,
// passwords in URLs, values of secret-named keys and variables), which are
// its own rules and broader than anything analysis flags.
package secrets

// A Format is one secret format.
type Format struct {
	// Name says what the secret is, for tests and documentation.
	Name string
	// Expr matches the secret, whole (RE2 syntax, as regexp compiles it).
	// It is matched against text as written, case-sensitively.
	Expr string
	// Anchors are literals at least one of which every match contains
	// (each at least 3 bytes, none of them a JSON escape character):
	// matchers run Expr only on text that holds an anchor.
	Anchors []string
}

// Formats returns the table, in the order redaction applies it: the PEM
// block first, since it holds text that other formats could match piece by
// piece. The caller may keep and modify the slice.
func Formats() []Format {
	return []Format{
		{"PEM private key", `-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\z)`,
			[]string{"PRIVATE KEY"}},
		{"AWS access key id", `\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b`,
			[]string{"AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA"}},
		{"GitHub token", `\bgh[pousr]_[A-Za-z0-9]{30,}\b`, []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}},
		{"GitHub fine-grained token", `\bgithub_pat_[A-Za-z0-9_]{22,}`, []string{"github_pat_"}},
		{"GitLab token", `\bglpat-[A-Za-z0-9_\-]{20,}`, []string{"glpat-"}},
		{"Slack token", `\bxox[abposr]-[A-Za-z0-9-]{10,}`, []string{"xox"}},
		{"Slack webhook", `https://hooks\.slack\.com/services/[A-Za-z0-9/]+`, []string{"hooks.slack.com"}},
		{"Stripe key", `\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}`, []string{"_live_", "_test_"}},
		{"Google API key", `\bAIza[0-9A-Za-z_\-]{35}\b`, []string{"AIza"}},
		{"Google OAuth token", `\bya29\.[0-9A-Za-z_\-]{20,}`, []string{"ya29."}},
		{"OpenAI or Anthropic key", `\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{20,}`, []string{"sk-"}},
		{"npm token", `\bnpm_[A-Za-z0-9]{36}\b`, []string{"npm_"}},
		{"SendGrid key", `\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b`, []string{"SG."}},
		{"JWT", `\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}`, []string{"eyJ"}},
		{"Kilometers key", `\bkm_[A-Za-z0-9_\-]{20,}`, []string{"km_"}},
	}
}

// An Assignment is a rule for a password-like name given a literal value:
// "password": "hunter22" (JSON in a text), password = 'hunter22' (code),
// password: hunter22 (YAML), DB_PASSWORD=hunter22 (.env). Analysis matches
// it on ASCII-lowercased text and calls a value that is not a placeholder
// a password (password_in_result); redaction replaces the value wherever
// the rule matches, in any case, placeholder or not.
type Assignment struct {
	// Name says what the rule is for.
	Name string
	// Expr matches on lowercased text (RE2 syntax); its first group is
	// the value.
	Expr string
	// Unquoted is set when the value stands without quotes: there a short
	// word of letters is a setting ("passwd: compat" in nsswitch.conf,
	// "password: required"), not a literal, and analysis ignores it.
	Unquoted bool
	// Anchors are as in Format, in lower case.
	Anchors []string
}

// Assignments returns the assignment rules. A line may start with the
// JSON keys analysis writes before a value ("content: text:
// DB_PASSWORD=..."), so the first line of a result's text counts like the
// others. The caller may keep and modify the slice.
func Assignments() []Assignment {
	const names = `(?:password|passwd|secret|api_?key|access_?token|auth_?token|client_secret)`
	anchors := []string{"password", "passwd", "secret", "apikey", "api_key", "access_token", "accesstoken", "auth_token", "authtoken"}
	return []Assignment{
		{"quoted value", names + `["']?\s*[:=]\s*["']([^"'\s]{6,})["']`, false, anchors},
		{"key: value", `(?m)^(?:[a-z_]+: )*\s*["']?[a-z0-9_.-]*` + names + `["']?\s*:\s*([^\s"',;]{6,})\s*$`, true, anchors},
		{"NAME=value", `(?m)^(?:[a-z_]+: )*\s*(?:export\s+)?[a-z0-9_]*(?:password|passwd|secret|api_key|token)[a-z0-9_]*=([^\s"'$]{6,})\s*$`, true,
			[]string{"password", "passwd", "secret", "api_key", "token="}},
	}
}
