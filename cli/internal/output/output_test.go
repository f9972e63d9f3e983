package output

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

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

func TestTableFitsTheTerminal(t *testing.T) {
	row := []string{"0196f1c2-7a3b", "a-rather-long-server-name", "→", strings.Repeat("wide ", 12)}
	for _, tt := range []struct {
		width int
		want  string
	}{
		// Wide: only MaxCellWidth cuts.
		{200, "ID             SERVER                     DIR  NOTE\n0196f1c2-7a3b  a-rather-long-server-name  →    " + strings.Repeat("wide ", 12)[:MaxCellWidth-1] + "…\n"},
		// Narrower: the widest flexible cells are cut, the fixed id stays whole.
		{60, "ID             SERVER               DIR  NOTE\n0196f1c2-7a3b  a-rather-long-serv…  →    wide wide wide wid…\n"},
		// Too narrow for every column: the optional DIR goes first.
		{40, "ID             SERVER       NOTE\n0196f1c2-7a3b  a-rather-l…  wide wide w…\n"},
	} {
		var out bytes.Buffer
		tb := NewTable(&cmdutil.IOStreams{Out: &out, OutIsTerminal: true, Width: tt.width}, "ID", "SERVER", "DIR", "NOTE")
		tb.Fixed(0)
		tb.Optional(2)
		tb.AddRow(row...)
		if err := tb.Render(); err != nil {
			t.Fatal(err)
		}
		if out.String() != tt.want {
			t.Errorf("width %d:\n%q\nwant\n%q", tt.width, out.String(), tt.want)
		}
		for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			if n := len([]rune(line)); n > tt.width {
				t.Errorf("width %d: line of %d", tt.width, n)
			}
		}
	}
}

func TestTableColourAndFlush(t *testing.T) {
	var out bytes.Buffer
	tb := NewTable(&cmdutil.IOStreams{Out: &out, OutIsTerminal: true, Color: true}, "A", "B")
	tb.Growing()
	if err := tb.Flush(); err != nil || out.Len() != 0 {
		t.Fatalf("a first Flush without rows printed %q", out.String())
	}
	tb.AddColoredRow([]string{"x", ""}, []func(string) string{Red, Red})
	tb.Flush()
	tb.AddRow("longer-than-before", "y")
	tb.Flush()
	// Sized at the first Flush, with room to grow: later rows line up,
	// cut to the widths already printed.
	want := "\x1b[1mA\x1b[0m" + strings.Repeat(" ", 13) + "\x1b[1mB\x1b[0m\n\x1b[31mx\x1b[0m\nlonger-than…  y\n"
	if out.String() != want {
		t.Errorf("got %q\nwant %q", out.String(), want)
	}
}

func TestTimes(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	zone := time.FixedZone("CET", 3600)
	tty := &cmdutil.IOStreams{OutIsTerminal: true, TZ: zone}
	pipe := &cmdutil.IOStreams{}
	for _, tt := range []struct {
		ios  *cmdutil.IOStreams
		ts   time.Time
		want string
	}{
		{tty, now.Add(-time.Hour), "12:00:00 CET"},
		{tty, now.Add(-48 * time.Hour), "Nov 20 13:00 CET"},
		{tty, now.AddDate(-1, 0, 0), "2025-11-22 13:00 CET"},
		{pipe, now.In(zone).Add(-1500 * time.Millisecond), "2026-11-22T11:59:58.5Z"},
	} {
		if got := Time(tt.ios, tt.ts, now); got != tt.want {
			t.Errorf("Time(%v) = %q, want %q", tt.ts, got, tt.want)
		}
	}
	for _, tt := range []struct {
		d    time.Duration
		ago  string
		span string
	}{
		{-time.Second, "just now", "0ms"},
		{30 * time.Second, "30s ago", "30s"},
		{5*time.Minute + 3*time.Second, "5m ago", "5m03s"},
		{3 * time.Hour, "3h ago", "3h00m"},
		{75 * time.Hour, "3d ago", "3d03h"},
	} {
		if got := Ago(now.Add(-tt.d), now); got != tt.ago {
			t.Errorf("Ago(%v) = %q, want %q", tt.d, got, tt.ago)
		}
		if tt.d > 0 {
			if got := Duration(tt.d); got != tt.span {
				t.Errorf("Duration(%v) = %q, want %q", tt.d, got, tt.span)
			}
		}
	}
}

func TestIDs(t *testing.T) {
	id := "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10"
	if ShortID(id) != "5b0c3a7e9f10" || ShortID("abc") != "abc" {
		t.Errorf("ShortID = %q", ShortID(id))
	}
	if !IsUUID(id) || IsUUID("5b0c3a7e9f10") || !IsShortID("5b0c3a7e9f10") || IsShortID("abc") || IsShortID("read_file") {
		t.Error("IsUUID/IsShortID")
	}
}

func TestPagerWriterSwallowsAQuitPager(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // the user quit the pager
	pw := &pagerWriter{w: w}
	if n, err := pw.Write([]byte("more output")); err != nil || n != 11 {
		t.Errorf("Write after the pager quit = %d, %v", n, err)
	}
	w.Close()
}

func TestNoPagerWhenPiped(t *testing.T) {
	var out bytes.Buffer
	ios := &cmdutil.IOStreams{Out: &out, Pager: "false"}
	stop := StartPager(ios)
	if ios.Out != &out {
		t.Error("a pager was started on a pipe")
	}
	stop()
}
