package event

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// The one rule for values PostgreSQL (and many JSON tools) cannot hold as
// they were recorded: Clean rewrites them, Validate refuses what no
// rewrite can save. The API applies Clean then Validate to every event it
// decodes, and the CLI applies Clean to every event it ships, so an event
// the monitor recorded faithfully is never refused for its bytes, and the
// two sides can never disagree on what is storable.
//
// Clean, per field:
//   - text (server, rpc_id, method, tool, prompt, resource_uri,
//     error_message, risk reasons, session text, command arguments,
//     warnings): invalid UTF-8 and NUL characters become U+FFFD, then the
//     text is cut at a character boundary to its limit (MaxNameLen,
//     MaxErrorMessage, MaxArgLen, MaxWarningLen);
//   - payload: the escapes \u0000 and unpaired surrogates (\ud800 alone)
//     and invalid UTF-8 inside strings become U+FFFD; a payload nested
//     deeper than MaxPayloadDepth, with a number PostgreSQL cannot store,
//     or larger than MaxPayloadBytes once its numbers are written out in
//     full (as jsonb prints them: 1e300 is 301 digits) is dropped, and
//     payload_truncated set.
//
// Clean never changes a value that needed no cleaning, cleaning twice
// changes nothing more, and slices and payload bytes the event shares with
// a copy of it are replaced, never written to.
func (e *Event) Clean() {
	e.Server = cleanText(e.Server, MaxNameLen)
	e.RPCID = cleanText(e.RPCID, MaxNameLen)
	e.Method = cleanText(e.Method, MaxNameLen)
	e.Tool = cleanText(e.Tool, MaxNameLen)
	e.Prompt = cleanText(e.Prompt, MaxNameLen)
	e.ResourceURI = cleanText(e.ResourceURI, MaxNameLen)
	e.ErrorMessage = cleanText(e.ErrorMessage, MaxErrorMessage)
	if e.Risk != nil {
		if r := cleanTexts(e.Risk.Reasons, MaxNameLen); r != nil {
			risk := *e.Risk
			risk.Reasons = r
			e.Risk = &risk
		}
	}
	if len(e.Payload) > 0 {
		p, ok := CleanPayload(e.Payload)
		if !ok {
			e.Payload, e.PayloadTruncated = nil, true
		} else {
			e.Payload = p
		}
	}
}

// Clean applies the rule of Event.Clean to a session's text.
func (s *Session) Clean() {
	s.Server = cleanText(s.Server, MaxNameLen)
	s.ServerName = cleanText(s.ServerName, MaxNameLen)
	s.ServerVersion = cleanText(s.ServerVersion, MaxNameLen)
	s.ClientName = cleanText(s.ClientName, MaxNameLen)
	s.ClientVersion = cleanText(s.ClientVersion, MaxNameLen)
	s.ProtocolVersion = cleanText(s.ProtocolVersion, MaxNameLen)
	s.Host = cleanText(s.Host, MaxNameLen)
	if c := cleanTexts(s.Command, MaxArgLen); c != nil {
		s.Command = c
	}
	if w := cleanTexts(s.Warnings, MaxWarningLen); w != nil {
		s.Warnings = w
	}
}

// cleanTexts returns a cleaned copy of list, or nil when no element needs
// cleaning: a copied event or session may share its slices with the
// original, which Clean leaves as it was.
func cleanTexts(list []string, max int) []string {
	var out []string
	for i, s := range list {
		if c := cleanText(s, max); c != s || out != nil {
			if out == nil {
				out = append(make([]string, 0, len(list)), list[:i]...)
			}
			out = append(out, c)
		}
	}
	return out
}

// MaxArgLen caps one argument of Session.Command, in bytes.
const MaxArgLen = 4096

// Clean cleans every session and event of b (see Event.Clean).
func (b *Batch) Clean() {
	for i := range b.Sessions {
		b.Sessions[i].Clean()
	}
	for i := range b.Events {
		b.Events[i].Clean()
	}
}

// CleanText is the text rule of Event.Clean: s with invalid UTF-8 and NUL
// replaced by U+FFFD, cut to at most max bytes at a character boundary.
func CleanText(s string, max int) string { return cleanText(s, max) }

func cleanText(s string, max int) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c >= utf8.RuneSelf {
			clean = false
			break
		}
	}
	if !clean || len(s) > max {
		if !clean {
			s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
		}
		if len(s) > max {
			cut := max
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
			s = s[:cut]
		}
	}
	return s
}

// PostgreSQL's numeric, which jsonb stores numbers in, holds at most this
// many digits before and after the decimal point.
const (
	maxNumericIntDigits  = 131072
	maxNumericFracDigits = 16383
)

// CleanPayload is the payload rule of Event.Clean for a valid JSON text p:
// it returns p itself when nothing needs cleaning, a cleaned copy, or false
// when the payload cannot be kept.
func CleanPayload(p []byte) ([]byte, bool) {
	var out []byte // a copy, made at the first change
	depth, printed := 0, len(p)
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '"':
			end := stringEnd(p, i+1)
			if s := p[i+1 : end]; !plainString(s) {
				if out == nil {
					out = append(make([]byte, 0, len(p)+16), p[:i]...)
				}
				out = append(out, '"')
				out = appendCleanString(out, s)
				if end < len(p) {
					out = append(out, '"')
				}
				i = end
				continue
			}
			if out != nil {
				out = append(out, p[i:min(end+1, len(p))]...)
			}
			i = end
			continue
		case c == '{' || c == '[':
			if depth++; depth > MaxPayloadDepth {
				return nil, false
			}
		case c == '}' || c == ']':
			depth--
		case c == '-' || (c >= '0' && c <= '9'):
			end := i + 1
			for end < len(p) && numberByte(p[end]) {
				end++
			}
			grow, ok := numberGrowth(p[i:end])
			if !ok {
				return nil, false
			}
			printed += grow
			if out != nil {
				out = append(out, p[i:end]...)
			}
			i = end - 1
			continue
		}
		if out != nil {
			out = append(out, p[i])
		}
	}
	if printed > MaxPayloadBytes {
		return nil, false
	}
	if out == nil {
		return p, true
	}
	return out, true
}

func numberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// numberGrowth says how many bytes longer than written the JSON number n
// is once PostgreSQL prints it in plain decimal, and whether numeric can
// hold it at all.
func numberGrowth(n []byte) (int, bool) {
	mant, exp, hasExp := n, 0, false
	if k := bytes.IndexAny(n, "eE"); k >= 0 {
		mant, hasExp = n[:k], true
		e := n[k+1:]
		neg := len(e) > 0 && e[0] == '-'
		if len(e) > 0 && (e[0] == '-' || e[0] == '+') {
			e = e[1:]
		}
		for _, d := range e {
			if exp = exp*10 + int(d-'0'); exp > 1<<24 {
				break // far beyond numeric's range either way
			}
		}
		if neg {
			exp = -exp
		}
	}
	sign := 0
	if len(mant) > 0 && mant[0] == '-' {
		mant, sign = mant[1:], 1
	}
	intPart, frac, _ := bytes.Cut(mant, []byte("."))
	intPart = bytes.TrimLeft(intPart, "0")
	// numeric keeps the written scale, trailing zeros included: 0.0e-5
	// prints as 0.000000.
	scale := max(0, len(frac)-exp)
	if scale > maxNumericFracDigits {
		return 0, false
	}
	intDigits := 1
	if len(intPart) > 0 || len(bytes.TrimLeft(frac, "0")) > 0 {
		if len(intPart)+exp > maxNumericIntDigits {
			return 0, false
		}
		intDigits = max(1, len(intPart)+exp)
	}
	if !hasExp {
		return 0, true
	}
	printed := sign + intDigits
	if scale > 0 {
		printed += 1 + scale
	}
	return max(0, printed-len(n)), true
}

// plainString reports whether the inside of a JSON string needs no
// cleaning: ASCII without escapes, or valid UTF-8 with harmless escapes.
func plainString(s []byte) bool {
	if bytes.IndexByte(s, '\\') >= 0 {
		for i := 0; i < len(s); i++ {
			if s[i] != '\\' {
				continue
			}
			i++
			if i < len(s) && s[i] == 'u' {
				if r, ok := hex4(s, i+1); !ok || r == 0 || (r >= 0xd800 && r <= 0xdfff) {
					return false // NUL or a surrogate: pairs are checked on the slow path
				}
			}
		}
	}
	return utf8.Valid(s)
}

// appendCleanString appends the inside of a JSON string with NUL escapes,
// unpaired surrogate escapes and invalid UTF-8 replaced by U+FFFD.
func appendCleanString(out, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			if s[i+1] != 'u' {
				out = append(out, s[i:i+2]...)
				i += 2
				continue
			}
			r, ok := hex4(s, i+2)
			switch {
			case !ok:
				out = append(out, s[i:min(i+6, len(s))]...)
				i += 6
			case r == 0:
				out = append(out, `\ufffd`...)
				i += 6
			case r >= 0xd800 && r < 0xdc00:
				if lo, ok := hex4(s, i+8); ok && i+7 < len(s) && s[i+6] == '\\' && s[i+7] == 'u' && lo >= 0xdc00 && lo <= 0xdfff {
					out = append(out, s[i:i+12]...)
					i += 12
				} else {
					out = append(out, `\ufffd`...)
					i += 6
				}
			case r >= 0xdc00 && r <= 0xdfff:
				out = append(out, `\ufffd`...)
				i += 6
			default:
				out = append(out, s[i:i+6]...)
				i += 6
			}
			continue
		}
		if c < utf8.RuneSelf {
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n <= 1 {
			out = append(out, "\uFFFD"...)
			i++
			continue
		}
		out = append(out, s[i:i+n]...)
		i += n
	}
	return out
}

// hex4 reads the four hex digits at s[i:i+4].
func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
