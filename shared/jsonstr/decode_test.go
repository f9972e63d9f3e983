package jsonstr

import (
	"encoding/json"
	"testing"
)

// checkUnquote holds Unquote to what encoding/json's Unmarshal makes of s
// as a string; Unmarshal also takes space around the token, which Unquote
// does not, and any other JSON value, which it reads as no string.
func checkUnquote(t *testing.T, s []byte) {
	t.Helper()
	got, ok := Unquote(s)
	var want string
	err := json.Unmarshal(s, &want)
	wantOK := err == nil && len(s) > 0 && s[0] == '"' && s[len(s)-1] == '"'
	if ok != wantOK || got != want && ok {
		t.Errorf("Unquote(%q) = %q, %v; Unmarshal gives %q, %v", s, got, ok, want, err)
	}
	if !ok && got != "" {
		t.Errorf("Unquote(%q) = %q with false, want empty", s, got)
	}
}

func TestUnquoteMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		`""`, `"tools/call"`, `"a\"b\\c\/d"`, `"\b\f\n\r\t"`, `"\u00e9\u4e2d"`, `"\uD83D\uDE80"`,
		`"\ud83d"`, `"\ude80\ud83d"`, `"\ud83d\u0041"`, `"\ud83dx"`, `"é 中文 🚀"`, "\"bad \xff\xfe utf-8 \xc3\"",
		"\"\xed\xa0\x80\"", `"\u12"`, `"\u12g4"`, `"\x"`, `"\"`, `"a`, `a"`, `"`, ``, `"a"b"`, "\"tab\there\"",
		"\"\x1f\"", " \"a\"", "\"a\" ", `null`, `12`, `"\u0000"`, `"\\"`, `"\\\"`,
	} {
		checkUnquote(t, []byte(s))
	}
}

func TestBodyLen(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want int
	}{
		{``, 0}, {`plain`, 5}, {`plain"rest`, 5}, {`cut mid escape \`, 15}, {`cut \u00`, 4}, {`bad \u00g0`, 4},
		{`bad \q after`, 4}, {"tab\there", 3}, {`é"`, 2}, {`\"\\\/\b\f\n\r\t\u00e9"`, 22}, {"\xff\xfe", 2},
	} {
		if got := BodyLen([]byte(tt.s)); got != tt.want {
			t.Errorf("BodyLen(%q) = %d, want %d", tt.s, got, tt.want)
		}
	}
}

func TestUnquoteKeepsPlainBytes(t *testing.T) {
	s := []byte(`"plain"`)
	got, _ := Unquote(s)
	s[1] = 'X'
	if got != "plain" {
		t.Errorf("Unquote's string changed with its input: %q", got)
	}
}

func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`"a\u00e9\ud83d\ude80"`, `"\ud800"`, "\"\xff\"", `"\\\/"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		checkUnquote(t, s)
		// And every string encoding/json writes, which has escapes of
		// every kind.
		checkUnquote(t, Append(nil, s, false))
		// The start BodyLen finds is a string's body, whole.
		body := s[:BodyLen(s)]
		q := append(append([]byte{'"'}, body...), '"')
		if got, ok := Unquote(q); !ok || got != string(AppendDecoded(nil, body)) {
			t.Errorf("Unquote(%q) = %q, %v; the start of %q BodyLen found decodes to %q", q, got, ok, s, AppendDecoded(nil, body))
		}
	})
}

// What the monitor decodes from each request: a method and a tool name.
func BenchmarkUnquote(b *testing.B) {
	for _, s := range []string{`"tools/call"`, `"read_file\u00e9"`} {
		raw := []byte(s)
		b.Run("jsonstr/"+s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := Unquote(raw); !ok {
					b.Fatal("refused")
				}
			}
		})
		b.Run("encoding_json/"+s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var v string
				if err := json.Unmarshal(raw, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
