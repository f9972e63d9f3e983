package monitor

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestStringPayloadIsMarshalsBytes holds stringPayload to what it was
// before it encoded by hand: json.Marshal of the text with each run of
// invalid UTF-8 replaced by one U+FFFD, capped at stringPayloadCap.
func TestStringPayloadIsMarshalsBytes(t *testing.T) {
	long := strings.Repeat("é<x>&\"\\\n", stringPayloadCap/9+1)
	cases := []string{
		"",
		"plain text",
		"tab\tnul\x00 bell\x07 del\x7f",
		"<script>&amp;</script>",
		"line\u2028para\u2029",
		"bad \xff\xfe bytes \xc3",
		long,
		long[:stringPayloadCap-1] + "é", // the cap cuts the last rune in two
	}
	for _, text := range cases {
		got, truncated := stringPayload([]byte(text), int64(len(text)))
		capped := text[:min(len(text), stringPayloadCap)]
		want, err := json.Marshal(string(bytes.ToValidUTF8([]byte(capped), []byte("\uFFFD"))))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("stringPayload(%.40q) = %.80s, want %.80s", text, got, want)
		}
		if truncated != (len(text) > stringPayloadCap) {
			t.Errorf("stringPayload(%.40q) truncated = %v", text, truncated)
		}
	}
	if _, truncated := stringPayload([]byte("head"), 10); !truncated {
		t.Error("a prefix shorter than the message is not reported truncated")
	}
}
