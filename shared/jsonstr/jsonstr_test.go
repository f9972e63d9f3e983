package jsonstr

import (
	"bytes"
	"encoding/json"
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

func FuzzAppend(f *testing.F) {
	f.Add("<a href=\"x\">\u2028\xff</a>")
	f.Fuzz(func(t *testing.T, s string) { check(t, s) })
}
