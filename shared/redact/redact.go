// Package redact removes secrets from what Kilometers records before it
// leaves the machine: JSON-RPC payloads and the command lines of sessions.
//
// Two rules apply. Values under keys that name a secret (password, token,
// api_key, authorization, private_key, cookie...) are replaced whole. Every
// other string is scanned for well-known secret formats (PEM private keys,
// AWS, GitHub, Slack, Stripe, Google, OpenAI and Anthropic keys, JWTs,
// Bearer/Basic credentials, passwords in URLs, KEY=value and --flag=value
// assignments of secret-looking names) and only the secret part is
// replaced, so the rest of the text stays readable.
//
// Redaction keeps JSON valid and keeps object keys in their order.
package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
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
	n := normalize(k)
	if n == "" || notSensitive[n] {
		return false
	}
	for _, s := range sensitiveSuffixes {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

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
var patterns = sync.OnceValue(func() []pattern {
	return []pattern{
		// PEM private keys, whole block (or up to the end of a truncated text).
		pat(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\z)`, 0, false, "PRIVATE KEY"),
		// Authorization header values.
		pat(`(?i)\b(?:Bearer|Basic|Token|Digest)\s+([A-Za-z0-9\-._~+/]{8,}=*)`, 1, true, "bearer", "basic", "token", "digest"),
		// user:password@ in URLs.
		pat(`[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#\s@]+:([^@/?#\s]+)@`, 1, false, "://"),
		// Well-known token formats.
		pat(`\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b`, 0, false, "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA"),
		pat(`\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}\b`, 0, false, "ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
		pat(`\bgithub_pat_[A-Za-z0-9_]{40,}\b`, 0, false, "github_pat_"),
		pat(`\bglpat-[A-Za-z0-9_\-]{20,}\b`, 0, false, "glpat-"),
		pat(`\bxox[abposr]-[A-Za-z0-9-]{10,}\b`, 0, false, "xox"),
		pat(`https://hooks\.slack\.com/services/[A-Za-z0-9/]+`, 0, false, "hooks.slack.com"),
		pat(`\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b`, 0, false, "_live_", "_test_"),
		pat(`\bAIza[0-9A-Za-z_\-]{35}\b`, 0, false, "AIza"),
		pat(`\bya29\.[0-9A-Za-z_\-]{20,}`, 0, false, "ya29."),
		pat(`\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{20,}`, 0, false, "sk-"),
		pat(`\bnpm_[A-Za-z0-9]{36}\b`, 0, false, "npm_"),
		pat(`\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b`, 0, false, "SG."),
		pat(`\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}`, 0, false, "eyJ"),
		// Kilometers' own keys.
		pat(`\bkm_[A-Za-z0-9_\-]{20,}`, 0, false, "km_"),
		// NAME=value, NAME: value and "name": "value" for secret-looking names,
		// including --flag=value and export NAME='value'.
		pat(secretName+`"?\s*[:=]\s*"?'?([^\s"',;&}{\]\[]+)`, 1, true, "passw", "passphrase", "secret", "token", "key", "credential"),
	}
})

func (p *pattern) mayMatch(s, lower string) bool {
	t := s
	if p.fold {
		t = lower
	}
	for _, n := range p.needles {
		if strings.Contains(t, n) {
			return true
		}
	}
	return false
}

// String redacts secrets in free text.
func String(s string) string {
	out, _ := redactString(s)
	return out
}

func redactString(s string) (string, bool) {
	changed := false
	lower := strings.ToLower(s)
	pats := patterns()
	for i := range pats {
		p := &pats[i]
		if !p.mayMatch(s, lower) || !p.re.MatchString(s) {
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

// JSON redacts a JSON document: values under secret keys are replaced by
// Marker and every string is scanned with String. It reports whether
// anything changed; an input that is not valid JSON is returned as an error.
func JSON(raw []byte) ([]byte, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var buf bytes.Buffer
	buf.Grow(len(raw))
	w := &writer{dec: dec, buf: &buf}
	if err := w.value(false); err != nil {
		return nil, false, fmt.Errorf("redact: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false, fmt.Errorf("redact: trailing data after JSON value")
	}
	if !w.changed {
		return raw, false, nil
	}
	return buf.Bytes(), true, nil
}

// writer re-emits a token stream, rewriting as it goes.
type writer struct {
	dec     *json.Decoder
	buf     *bytes.Buffer
	changed bool
	// enc writes strings into scratch without HTML escaping: a payload
	// with <, > or & should come out as it went in, not as \u003c.
	enc     *json.Encoder
	scratch bytes.Buffer
}

func (w *writer) value(secret bool) error {
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return w.object()
		case '[':
			return w.array(secret)
		}
		return fmt.Errorf("unexpected %v", t)
	case string:
		if secret && t != "" {
			w.changed = true
			w.str(Marker)
			return nil
		}
		s, changed := redactString(t)
		w.changed = w.changed || changed
		w.str(s)
	case json.Number:
		if secret {
			w.changed = true
			w.str(Marker)
			return nil
		}
		w.buf.WriteString(t.String())
	case bool:
		if t {
			w.buf.WriteString("true")
		} else {
			w.buf.WriteString("false")
		}
	case nil:
		w.buf.WriteString("null")
	}
	return nil
}

func (w *writer) object() error {
	w.buf.WriteByte('{')
	for i := 0; w.dec.More(); i++ {
		tok, err := w.dec.Token()
		if err != nil {
			return err
		}
		k, ok := tok.(string)
		if !ok {
			return fmt.Errorf("object key is not a string")
		}
		if i > 0 {
			w.buf.WriteByte(',')
		}
		w.str(k)
		w.buf.WriteByte(':')
		if err := w.value(SensitiveKey(k)); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil { // '}'
		return err
	}
	w.buf.WriteByte('}')
	return nil
}

func (w *writer) array(secret bool) error {
	w.buf.WriteByte('[')
	for i := 0; w.dec.More(); i++ {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		if err := w.value(secret); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil { // ']'
		return err
	}
	w.buf.WriteByte(']')
	return nil
}

func (w *writer) str(s string) {
	if w.enc == nil {
		w.enc = json.NewEncoder(&w.scratch)
		w.enc.SetEscapeHTML(false)
	}
	w.scratch.Reset()
	_ = w.enc.Encode(s) // a string always encodes
	w.buf.Write(bytes.TrimSuffix(w.scratch.Bytes(), []byte{'\n'}))
}
