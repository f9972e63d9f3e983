package store

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// checkCompactString fails when compactString lets p through as it is
// though json.Compact would have rejected or changed it.
func checkCompactString(t *testing.T, p []byte) {
	t.Helper()
	if !compactString(p) {
		return
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, p); err != nil {
		t.Fatalf("compactString(%q) but json.Compact fails: %v", p, err)
	}
	if !bytes.Equal(buf.Bytes(), p) {
		t.Fatalf("compactString(%q) but json.Compact writes %q", p, buf.Bytes())
	}
}

func TestCompactStringTakesEncodedStrings(t *testing.T) {
	long := strings.Repeat("abcdefg\\/é\"", 100)
	for _, s := range append(oddStrings, long, long[:len(long)-3]) {
		p, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		checkCompactString(t, p)
		if !compactString(p) {
			t.Errorf("compactString(%q) = false for json.Marshal's string", p)
		}
	}
}

func TestCompactStringRefusesTheRest(t *testing.T) {
	for _, p := range []string{
		``, `"`, `x`, `17`, `{"a":1}`, `["a"]`, ` "a"`, `"a" `, "\"a\"\n", `"a""b"`, `"a"b"`,
		`"unterminated`, `"ends in backslash\"`, `"bad \x escape"`, `"short \u12"`, `"bad \u12g4 hex"`,
		"\"raw \n newline\"", "\"raw \t tab\"", "\"nul \x00\"", `"12345678\"`,
		`"` + strings.Repeat("x", 20) + "\x1f" + strings.Repeat("y", 20) + `"`,
		`"` + strings.Repeat("x", 20) + `"` + strings.Repeat("y", 20) + `"`,
	} {
		checkCompactString(t, []byte(p))
		if compactString([]byte(p)) {
			t.Errorf("compactString(%q) = true", p)
		}
	}
}

// compactString takes runs eight bytes at a time: a control byte, an inner
// quote or a backslash at any offset of a long run still decides, and an
// unbroken run is still taken.
func TestCompactStringLongRuns(t *testing.T) {
	for at := range 130 {
		run := strings.Repeat("x", at)
		for _, bad := range []string{"\x1f", "\x00", "\n", `"`, `\`} {
			p := []byte(`"` + run + bad + strings.Repeat("y", 60) + `"`)
			checkCompactString(t, p)
			if compactString(p) {
				t.Errorf("compactString(%q) = true", p)
			}
		}
		for _, good := range []string{"", `\n`, `\u00e9`, "é"} {
			p := []byte(`"` + run + good + strings.Repeat("y", at%70) + `"`)
			if !compactString(p) {
				t.Errorf("compactString(%q) = false", p)
			}
			checkCompactString(t, p)
		}
	}
}

// Payloads that are not compact strings still go through json.Compact, and
// what it cannot take is kept as a string: the line stays one valid line.
func TestAppendPayloadCompactsTheRest(t *testing.T) {
	for p, want := range map[string]string{
		`"plain"`:              `,"p":"plain"`,
		" \"spaced\" ":         `,"p":"spaced"`,
		`{ "a" : [ 1, "b" ] }`: `,"p":{"a":[1,"b"]}`,
		"\"raw \n newline\"":   `,"p":"\"raw \n newline\""`,
	} {
		var buf bytes.Buffer
		appendPayload(&buf, json.RawMessage(p))
		if buf.String() != want {
			t.Errorf("appendPayload(%q) = %q, want %q", p, buf.String(), want)
		}
	}
}

func FuzzCompactString(f *testing.F) {
	for _, s := range oddStrings {
		p, _ := json.Marshal(s)
		f.Add(p)
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) { checkCompactString(t, p) })
}

func BenchmarkAppendPayloadString(b *testing.B) {
	dense, _ := json.Marshal(strings.Repeat(`{"jsonrpc":"2.0","text":"xxxxxxxx"}`, 64<<10/36))
	plain, _ := json.Marshal(`{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"` + strings.Repeat("x", 64<<10))
	for _, name := range []string{"fast", "compact", "fast plain", "compact plain"} {
		p := dense
		if strings.HasSuffix(name, "plain") {
			p = plain
		}
		b.Run(name, func(b *testing.B) {
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				if strings.HasPrefix(name, "fast") {
					appendPayload(&buf, p)
				} else {
					_ = json.Compact(&buf, p)
				}
			}
		})
	}
}
