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
// The table holds only what is a secret by its shape alone. Redaction also
// replaces secrets by their context (Bearer credentials, passwords in
// URLs, values of secret-named keys and variables), which are its own rules.
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
