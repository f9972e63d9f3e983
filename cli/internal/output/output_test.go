package output

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
)

func TestJSON(t *testing.T) {
	tests := []struct {
		tty  bool
		want string
	}{
		{false, "{\"a\":\"<b>\",\"n\":1}\n"},
		{true, "{\n  \"a\": \"<b>\",\n  \"n\": 1\n}\n"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := JSON(&cmdutil.IOStreams{Out: &out, OutIsTerminal: tt.tty}, map[string]any{"a": "<b>", "n": 1})
		if err != nil {
			t.Fatal(err)
		}
		if out.String() != tt.want {
			t.Errorf("tty=%v: got %q, want %q", tt.tty, out.String(), tt.want)
		}
	}
}

func TestTable(t *testing.T) {
	long := strings.Repeat("x", MaxCellWidth+10)
	tests := []struct {
		name string
		tty  bool
		want string
	}{
		{"plain", false, "A\tB\tC\none\ttwo\tthree\nx\ty\t" + long + "\n"},
		{"terminal", true, "A    B    C\n" +
			"one  two  three\n" +
			"x    y    " + long[:MaxCellWidth-1] + "…\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			tb := NewTable(&cmdutil.IOStreams{Out: &out, OutIsTerminal: tt.tty}, "A", "B", "C")
			tb.AddRow("one", "two", "three")
			tb.AddColoredRow([]string{"x", "y", long}, []func(string) string{nil, Red})
			if err := tb.Render(); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("got\n%q\nwant\n%q", out.String(), tt.want)
			}
		})
	}
}

func TestFormats(t *testing.T) {
	tests := []struct{ got, want string }{
		{Bytes(512), "512 B"},
		{Bytes(1536), "1.5 KB"},
		{Bytes(5 << 20), "5.0 MB"},
		{Millis(0.25), "0.250 ms"},
		{Millis(12.345), "12.3 ms"},
		{Millis(250), "250 ms"},
		{Millis(12500), "12.5 s"},
		{Count(0), "0"},
		{Count(1234567), "1,234,567"},
		{Count(-1000), "-1,000"},
		{Truncate("a\tb", 10), "a b"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
