// Package redact removes secrets from what Kilometers records before it
// leaves the machine: JSON-RPC payloads and the command lines of sessions.
//
// Two rules apply. Values under keys that name a secret (password, token,
// api_key, authorization, private_key, cookie...) are replaced whole. Every
// other string is scanned for well-known secret formats (the table of
// shared/secrets, which analysis flags secrets with: PEM private keys,
// AWS, GitHub, Slack, Stripe, Google, OpenAI and Anthropic keys, JWTs...)
// and for secrets by their context (Bearer/Basic credentials, passwords in
// URLs, KEY=value and --flag=value assignments of secret-looking names),
// and only the secret part is replaced, so the rest of the text stays
// readable.
//
// Redaction keeps JSON valid and keeps object keys in their order.
//
// The JSON lexer (json.go) is hand-written; encoding/json's Decoder, token
// by token, is kept in the tests as its reference, and the two must agree
// byte for byte (checkJSONMatchesReference, FuzzJSON). The lexer stays for
// its measured cost, which shipping pays on every payload: a 256 B
// tools/call message in 1.2-4.3 µs with no allocation against the
// reference's 10-73 µs and 115 allocations, a 100 KiB result in 0.23-0.43
// ms against 2.8-16 ms and 590 KB (go test -run '^$' -bench
// 'BenchmarkJSON(Reference)?(Large|ToolsCall)' ./shared/redact/, a loaded
// 2-CPU machine). A first pass on segmentio/encoding's tokenizer, doing
// less than the lexer (no keys, nothing written), came out no faster
// (0.8-4.6 µs and 4 allocations a message; BenchmarkJSONSegmentioBound),
// so rewriting the lexer on it would buy nothing.
package redact

import (
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/kilometers-ai/kilometers/shared/secrets"
)

// Marker replaces a secret.
const Marker = "[REDACTED]"

// sensitiveSuffixes are normalized key endings (lower case, no '-', '_' or
// '.') whose values are secrets.
var sensitiveSuffixes = []string{
	"password", "passwd", "passphrase", "secret", "apikey", "accesskey",
	"privatekey", "token", "authorization", "cookie", "credentials",
	"credential", "signature", "auth",
}

// notSensitive are normalized keys that end like a secret but are not one.
var notSensitive = map[string]bool{
	"progresstoken": true, // MCP progress notifications
	"nexttoken":     true,
	"pagetoken":     true,
	"nextpagetoken": true,
	"oauth":         true,
}

// SensitiveKey reports whether an object key or variable name names a
// secret.
func SensitiveKey(k string) bool {
	return sensitiveKey(k)
}

// keyTail is how much of a normalized key sensitiveKey keeps: enough for
// the longest suffix and the longest notSensitive key
// (TestKeyTailIsLongEnough).
const keyTail = 16

// sensitiveKey is SensitiveKey for a key as a string or as the bytes of a
// JSON document. Keys are checked once per object member on every payload and
// are almost always short ASCII, so those are normalized into a buffer on
// the stack, from the end: only the last keyTail normalized bytes can take
// part in a suffix match, and a longer key cannot be in notSensitive.
// Anything else goes through normalize, whose Unicode lower-casing is the
// definition.
func sensitiveKey[T string | []byte](k T) bool {
	var tail [keyTail]byte
	n := 0
	for i := len(k) - 1; i >= 0 && n < keyTail; i-- {
		c := k[i]
		if c >= utf8.RuneSelf {
			return sensitiveNormalized(normalize(string(k)))
		}
		switch c {
		case '-', '_', '.', ' ':
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		n++
		tail[keyTail-n] = c
	}
	return sensitiveNormalized(string(tail[keyTail-n:]))
}

// sensitiveNormalized is SensitiveKey on a normalized key, or on its last
// keyTail bytes when it is longer.
func sensitiveNormalized(n string) bool {
	// The map lookup costs more than the suffixes, and only matters when a
	// suffix matched: every notSensitive key ends like a secret.
	for _, s := range sensitiveSuffixes {
		// The last byte first: a call to compare strings costs more than
		// the loop.
		if len(n) >= len(s) && n[len(n)-1] == s[len(s)-1] && n[len(n)-len(s):] == s {
			return !notSensitive[n]
		}
	}
	return false
}

// normalize lower-cases k and drops the separators that spell the same
// name differently (api_key, api-key, api.key, "api key").
func normalize(k string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(k) {
		switch r {
		case '-', '_', '.', ' ':
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// A pattern finds secrets in free text. If group > 0 only that submatch is
// replaced. A pattern runs only on text that contains one of its needles
// (compared in lower case when fold is set): strings.Contains is much
// cheaper than a regexp over a large payload.
type pattern struct {
	re      *regexp.Regexp
	group   int
	needles []string
	fold    bool
}

// secretName matches names of secret-looking variables and flags.
const secretName = `(?i:passw(?:or)?d|passphrase|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)`

func pat(expr string, group int, fold bool, needles ...string) pattern {
	return pattern{re: regexp.MustCompile(expr), group: group, needles: needles, fold: fold}
}

// patterns are compiled on first use, not at init: a monitor that ships
// nothing never redacts, and compiling them costs about 150 KB of heap.
// Once compiled they are immutable and safe for concurrent use.
//
// The secret formats come from shared/secrets, the table analysis flags
// secrets with; the rules here find secrets by their context.
var patterns = sync.OnceValue(func() []pattern {
	formats, assignments := secrets.Formats(), secrets.Assignments()
	pats := make([]pattern, 0, len(formats)+len(assignments)+3)
	for _, f := range formats {
		pats = append(pats, pat(f.Expr, 0, false, f.Anchors...))
	}
	// Analysis matches these on lowercased text; here they match any case.
	for _, a := range assignments {
		pats = append(pats, pat(`(?i)`+a.Expr, 1, true, a.Anchors...))
	}
	return append(pats,
		// Authorization header values.
		pat(`(?i)\b(?:Bearer|Basic|Token|Digest)\s+([A-Za-z0-9\-._~+/]{8,}=*)`, 1, true, "bearer", "basic", "token", "digest"),
		// user:password@ in URLs.
		pat(`[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#\s@]+:([^@/?#\s]+)@`, 1, false, "://"),
		// NAME=value, NAME: value and "name": "value" for secret-looking names,
		// including --flag=value and export NAME='value'.
		pat(secretName+`"?\s*[:=]\s*"?'?([^\s"',;&}{\]\[]+)`, 1, true, "passw", "passphrase", "secret", "token", "key", "credential"),
	)
})

// needles are the needle index of patterns, built with them.
var needles = sync.OnceValue(func() *needleIndex {
	return newNeedleIndex(patterns())
})

// String redacts secrets in free text.
func String(s string) string {
	out, _ := redactString(s)
	return out
}

// redactString redacts s and reports whether anything was replaced. Almost
// no text contains a needle, so one pass of the needle index usually
// settles it without a copy or a regexp.
func redactString(s string) (string, bool) {
	mask := needleMask(needles(), s)
	if mask == 0 {
		return s, false
	}
	return redactMasked(patterns(), mask, s)
}

// redactMasked runs the patterns of mask, the needle mask of s, over s.
//
// A pattern runs when one of its needles is in the text: folded needles are
// looked for in the text as it came in, plain needles in the text as the
// patterns before left it. The mask answers both until a pattern changes
// the text; after that plain needles are looked for again. JSON relies on
// this function's exact results, so the rule must not drift.
func redactMasked(pats []pattern, mask uint64, s string) (string, bool) {
	changed := false
	for i := range pats {
		p := &pats[i]
		run := mask&(1<<i) != 0
		if changed && !p.fold {
			run = containsAny(s, p.needles)
		}
		if !run || !p.re.MatchString(s) {
			continue
		}
		if p.group == 0 {
			s = p.re.ReplaceAllLiteralString(s, Marker)
			changed = true
			continue
		}
		var b strings.Builder
		last := 0
		for _, m := range p.re.FindAllStringSubmatchIndex(s, -1) {
			start, end := m[2*p.group], m[2*p.group+1]
			if start < 0 || s[start:end] == Marker {
				continue
			}
			b.WriteString(s[last:start])
			b.WriteString(Marker)
			last = end
			changed = true
		}
		b.WriteString(s[last:])
		s = b.String()
	}
	return s, changed
}

// wouldChange reports what redactMasked(pats, mask, string(s)) would
// report, without building the result. Until a pattern changes the text
// every pattern sees the text as it came in, so the first pattern that
// would change it decides, and the order does not matter.
func wouldChange(pats []pattern, mask uint64, s []byte) bool {
	for i := range pats {
		if mask&(1<<i) == 0 {
			continue
		}
		p := &pats[i]
		if !p.re.Match(s) {
			continue
		}
		if p.group == 0 {
			return true
		}
		// The first matches of FindAll(s, n) are those of FindAll(s, -1),
		// and the first match nearly always decides: ask for more only
		// while they are all already redacted, instead of finding every
		// match of a large text.
		for n := 1; ; n *= 2 {
			ms := p.re.FindAllSubmatchIndex(s, n)
			for _, m := range ms {
				start, end := m[2*p.group], m[2*p.group+1]
				if start >= 0 && string(s[start:end]) != Marker {
					return true
				}
			}
			if len(ms) < n {
				break
			}
		}
	}
	return false
}

func containsAny(s string, needles []string) bool {
	for _, n := range needles {
		if strings.Contains(s, n) {
			return true
		}
	}
	return false
}

// Args redacts a command line: values of secret-named flags (--token=x and
// --token x), NAME=value assignments of secret names, and secret formats in
// any argument.
func Args(args []string) []string {
	if args == nil {
		return nil
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = String(a)
		if i > 0 && out[i-1] == args[i-1] && isSecretFlag(args[i-1]) && !strings.HasPrefix(a, "-") {
			out[i] = Marker
		}
	}
	return out
}

// isSecretFlag reports whether a is a flag with no =value whose name names a
// secret, so the next argument is its value.
func isSecretFlag(a string) bool {
	if !strings.HasPrefix(a, "-") || strings.Contains(a, "=") {
		return false
	}
	name := strings.TrimLeft(a, "-")
	return name != "" && SensitiveKey(name)
}
