package jsonstr

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// want is what encoding/json writes for s.
func want(t *testing.T, s string, escapeHTML bool) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

func check(t *testing.T, s string) {
	t.Helper()
	for _, html := range []bool{true, false} {
		if got, w := string(Append([]byte("x"), s, html)), "x"+want(t, s, html); got != w {
			t.Errorf("Append(%q, escapeHTML=%v) = %s, want %s", s, html, got, w)
		}
		if got, w := string(Append(nil, []byte(s), html)), want(t, s, html); got != w {
			t.Errorf("Append([]byte %q, escapeHTML=%v) = %s, want %s", s, html, got, w)
		}
	}
}

func TestAppendMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and backslash \`, "controls \x00\x01\b\f\n\r\t\x1f\x7f", "<script>&amp;</script>",
		"invalid \xff\xfe utf-8 \xc3", "truncated rune \xe2\x82", "line sep \u2028 para sep \u2029", "unicode é 中文 🚀",
		"\ufffd already replaced", "\xed\xa0\x80 surrogate half",
	} {
		check(t, s)
	}
}

// Append skips eight plain bytes at a time, and a long run 32 at a time
// with the vector kernel: every byte that needs an escape, at every offset
// in and around such words and blocks, must still get one.
func TestAppendFindsSpecialsAtEveryOffset(t *testing.T) {
	for _, special := range []string{"\"", "\\", "\x00", "\x1f", "\n", "<", ">", "&", "\x7f", "\x80", "\xff",
		"\u2028", "\u2029", "é", "\xed\xa0\x80", "\xe2\x82"} {
		for at := range 120 {
			check(t, strings.Repeat("a", at)+special+strings.Repeat("b", 20+at%50))
			check(t, strings.Repeat(" ", at)+special+"~"+special+strings.Repeat("~", 20))
		}
	}
}

func FuzzAppend(f *testing.F) {
	f.Add("<a href=\"x\">\u2028\xff</a>")
	f.Fuzz(func(t *testing.T, s string) { check(t, s) })
}

// BenchmarkAppend encodes what the monitor stores of a large result: the
// 64 KiB head of its JSON text as a string (go test -bench Append).
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct{ name, text string }{
		{"plain", strings.Repeat("x", 64<<10)},
		{"json_code", strings.Repeat(`{"type":"text","text":"func main() {\n\tfmt.Println(\"hello\")\n}\n"},`, 64<<10/64)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			src := []byte(bc.text)
			dst := make([]byte, 0, 2*len(src))
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				dst = Append(dst[:0], src, true)
			}
		})
	}
}
