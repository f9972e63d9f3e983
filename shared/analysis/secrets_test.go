package analysis

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/redact"
	"github.com/kilometers-ai/kilometers/shared/secrets"
)

// tokenGen builds a secret of a format with a body of n generated
// characters (the part whose length the format bounds); canonical is a
// length real secrets have.
type tokenGen struct {
	canonical int
	make      func(rng *rand.Rand, n int) string
}

const (
	alnum     = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	upperNum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	urlSafe   = alnum + "_-"
	alnumUnd  = alnum + "_"
	slackBody = alnum + "-"
)

func randString(rng *rand.Rand, chars string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[rng.IntN(len(chars))]
	}
	return string(b)
}

func prefixed(prefixes []string, chars string) func(*rand.Rand, int) string {
	return func(rng *rand.Rand, n int) string {
		return prefixes[rng.IntN(len(prefixes))] + randString(rng, chars, n)
	}
}

// Fake secrets are built from parts so that scanners leave this file alone.
var tokenGens = map[string]tokenGen{
	"PEM private key": {40, func(rng *rand.Rand, n int) string {
		kind := []string{"", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "}[rng.IntN(5)]
		return "-----BEGIN " + kind + "PRIVATE" + " KEY-----\n" + randString(rng, alnum+"+/", n) + "\n-----END " + kind + "PRIVATE" + " KEY-----"
	}},
	"AWS access key id":         {16, prefixed([]string{"AK" + "IA", "AS" + "IA", "AI" + "DA", "AR" + "OA"}, upperNum)},
	"GitHub token":              {36, prefixed([]string{"gh" + "p_", "gh" + "o_", "gh" + "u_", "gh" + "s_", "gh" + "r_"}, alnum)},
	"GitHub fine-grained token": {82, prefixed([]string{"github" + "_pat_"}, alnumUnd)},
	"GitLab token":              {20, prefixed([]string{"gl" + "pat-"}, urlSafe)},
	"Slack token":               {40, prefixed([]string{"xo" + "xb-", "xo" + "xp-", "xo" + "xa-"}, slackBody)},
	"Slack webhook": {44, func(rng *rand.Rand, n int) string {
		return "https://hooks" + ".slack.com/services/" + randString(rng, alnum+"/", n)
	}},
	"Stripe key":              {24, prefixed([]string{"sk" + "_live_", "rk" + "_live_", "sk" + "_test_"}, alnum)},
	"Google API key":          {35, prefixed([]string{"AI" + "za"}, urlSafe)},
	"Google OAuth token":      {60, prefixed([]string{"ya" + "29."}, urlSafe)},
	"OpenAI or Anthropic key": {48, prefixed([]string{"sk" + "-", "sk" + "-ant-", "sk" + "-proj-"}, urlSafe)},
	"npm token":               {36, prefixed([]string{"np" + "m_"}, alnum)},
	"SendGrid key": {22, func(rng *rand.Rand, n int) string {
		return "S" + "G." + randString(rng, urlSafe, n) + "." + randString(rng, urlSafe, 43)
	}},
	"JWT": {20, func(rng *rand.Rand, n int) string {
		return "ey" + "J" + randString(rng, urlSafe, n) + ".ey" + "J" + randString(rng, urlSafe, n) + "." + randString(rng, urlSafe, n)
	}},
	"Kilometers key": {32, prefixed([]string{"km" + "_live_", "km" + "_"}, urlSafe)},
}

// contexts put a secret where a tool result would show it.
var contexts = []func(string) string{
	func(s string) string { return s },
	func(s string) string { return "the key is " + s + "." },
	func(s string) string { return "DEPLOY_KEY=" + s + "\nOTHER=1\n" },
	func(s string) string { return `{"config": {"value": "` + s + `"}}` },
	func(s string) string { return "Authorization: Bearer " + s },
	func(s string) string { return "(" + s + ")" },
	func(s string) string { return "https://example.com/?q=" + s + "&x=1" },
	func(s string) string { return "line one\n\t" + s + "\nline three" },
}

// TestEveryFormatHasAGenerator keeps the property tests below complete: a
// format added to shared/secrets without a generator here fails.
func TestEveryFormatHasAGenerator(t *testing.T) {
	var names []string
	for _, f := range secrets.Formats() {
		names = append(names, f.Name)
		if _, ok := tokenGens[f.Name]; !ok {
			t.Errorf("format %q has no generator", f.Name)
		}
	}
	for name := range tokenGens {
		if !slices.Contains(names, name) {
			t.Errorf("generator %q has no format", name)
		}
	}
}

// TestFlaggedSecretsAreRedacted: over every format, bodies of every length
// from well below to well above what the format accepts, in text of every
// context: whatever analysis calls a secret, redaction replaces, so that
// the redacted text holds neither the secret nor anything analysis still
// calls one. A secret of each format's canonical length must be flagged,
// in text and in a tool result, and redacted in the payload as it ships.
func TestFlaggedSecretsAreRedacted(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, f := range secrets.Formats() {
		gen := tokenGens[f.Name]
		t.Run(f.Name, func(t *testing.T) {
			flagged := 0
			for n := 0; n <= gen.canonical+64; n++ {
				for ci, ctx := range contexts {
					token := gen.make(rng, n)
					text := ctx(token)
					if !hasSecret([]byte(text)) {
						if n == gen.canonical && ci == 0 {
							t.Errorf("a canonical %s is not flagged: %q", f.Name, text)
						}
						continue
					}
					flagged++
					red := redact.String(text)
					if strings.Contains(red, token) || hasSecret([]byte(red)) {
						t.Errorf("flagged but not redacted (body %d, context %d):\n  in  %q\n  out %q", n, ci, text, red)
					}
					if n == gen.canonical {
						checkPayload(t, text, token)
					}
				}
			}
			if flagged == 0 {
				t.Errorf("no %s flagged at any length", f.Name)
			}
		})
	}
}

// checkPayload runs the real thing on a tool result holding text: the
// session reports secret_in_result; the payload redacted for shipping
// holds no part of it and no longer gets that finding.
func checkPayload(t *testing.T, text, token string) {
	t.Helper()
	req := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":{"path":"/tmp/x"}}}`)
	res, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1,
		"result": map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}}})
	if err != nil {
		t.Fatal(err)
	}
	reasons := func(res []byte) []string {
		s := NewSession(DefaultOptions())
		s.Analyze(&event.Event{Direction: event.ClientToServer, Kind: event.KindRequest, RPCID: "1", Method: "tools/call", Tool: "read", Payload: req}, req)
		e := &event.Event{Direction: event.ServerToClient, Kind: event.KindResponse, RPCID: "1", Method: "tools/call", Tool: "read", Payload: res}
		s.Analyze(e, res)
		if e.Risk == nil {
			return nil
		}
		return e.Risk.Reasons
	}
	if !slices.Contains(reasons(res), ReasonSecretInResult) {
		t.Errorf("a result holding %q is not reported as a secret: %v", text, reasons(res))
		return
	}
	out, _, err := redact.JSON(res)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), token) || slices.Contains(reasons(out), ReasonSecretInResult) {
		t.Errorf("the redacted payload still holds the secret: %s", out)
	}
}

// passwordTexts are texts where a password-like name is given value,
// in every form the assignment rules know and some they do not.
func passwordTexts(value string) []string {
	var out []string
	for _, name := range []string{"password", "passwd", "secret", "api_key", "apikey", "access_token", "auth_token",
		"client_secret", "token", "DB_PASSWORD", "Secret", "ApiKey", "my_secret_thing", "GITHUB_TOKEN_OLD", "db.password", "x-auth-token"} {
		for _, form := range []string{"%s=%s", "export %s=%s", "%s: %s", `"%s": "%s"`, "%s = '%s'", "content: text: %s=%s",
			"first line\n  %s: %s\nlast line", "%s:%s", `'%s'='%s'`, "%s = \"%s\";"} {
			out = append(out, fmt.Sprintf(form, name, value))
		}
	}
	return out
}

// TestFlaggedPasswordsAreRedacted: whatever analysis calls a password
// (password_in_result), redaction replaces, over every form and value
// length; and the common forms are flagged, so that the test has work.
func TestFlaggedPasswordsAreRedacted(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	flagged := 0
	for n := 0; n <= 40; n++ {
		value := randString(rng, alnum+"!@#%^*-_.", n)
		for _, text := range passwordTexts(value) {
			if !flagsPassword(text) {
				continue
			}
			flagged++
			red := redact.String(text)
			if strings.Contains(red, value) || flagsPassword(red) {
				t.Errorf("flagged as a password but not redacted:\n  in  %q\n  out %q", text, red)
			}
		}
	}
	for _, text := range []string{"DB_PASSWORD=x7Gq2pLm9", `"password": "x7Gq2pLm9"`, "secret: x7Gq2pLm9zz"} {
		if !flagsPassword(text) {
			t.Errorf("%q is not flagged", text)
		}
	}
	if flagged < 100 {
		t.Errorf("only %d texts flagged", flagged)
	}
}

func flagsPassword(text string) bool {
	lower := lowerASCII(nil, []byte(text))
	return hasPassword(lowerRules.scan(lower), lower)
}

// FuzzFlaggedIsRedacted: for any text, if analysis calls it a secret,
// redaction leaves nothing analysis would call one, in a string as in a
// JSON payload.
func FuzzFlaggedIsRedacted(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, fm := range secrets.Formats() {
		gen := tokenGens[fm.Name]
		for _, ctx := range contexts[:3] {
			f.Add(ctx(gen.make(rng, gen.canonical)))
		}
	}
	f.Add("ghp_" + strings.Repeat("a", 31) + " and sk-" + strings.Repeat("b", 21))
	for _, text := range passwordTexts("x7Gq2pLm9") {
		f.Add(text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if !hasSecret([]byte(text)) && !flagsPassword(text) {
			return
		}
		if red := redact.String(text); hasSecret([]byte(red)) || flagsPassword(text) && flagsPassword(red) {
			t.Errorf("flagged, and still flagged after redaction:\n  in  %q\n  out %q", text, red)
		}
		payload, err := json.Marshal(map[string]string{"text": text})
		if err != nil {
			return // not UTF-8 enough for a payload
		}
		out, _, err := redact.JSON(payload)
		if err != nil {
			t.Fatalf("redact %s: %v", payload, err)
		}
		var back map[string]string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("redacted payload is not JSON: %s", out)
		}
		if hasSecret([]byte(back["text"])) || flagsPassword(text) && flagsPassword(back["text"]) {
			t.Errorf("flagged, and still flagged in the redacted payload:\n  in  %s\n  out %s", payload, out)
		}
	})
}
