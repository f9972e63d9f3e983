package monitor_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// hostile is every kind of line the monitor must pass on untouched.
const hostile = "not json at all\n" +
	`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\r\n" +
	"\xff\xfe\xc3(invalid utf-8\n" +
	"\n\n\r\n   \t\n" +
	`{"jsonrpc":"2.0","method":"x","params":{"s":"\u00e9 é \ud83d\ude00 \"quoted\\"}}` + "\n" +
	"\x00\x01\x02 control bytes \x1b[31m\n" +
	`[{"jsonrpc":"2.0","id":"b1","method":"a"},{"jsonrpc":"2.0","method":"b"}]` + "\n" +
	`{"unterminated": ` + "\n" +
	"\r\r\r\n" +
	"last line without newline"

// randomStream is n bytes where newlines, CRs and JSON punctuation are
// common enough to make many short lines of every shape.
func randomStream(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	special := []byte("\n\r{}\":, \t\\")
	b := make([]byte, n)
	for i := range b {
		if r.IntN(4) == 0 {
			b[i] = special[r.IntN(len(special))]
		} else {
			b[i] = byte(r.UintN(256))
		}
	}
	return b
}

// bigMessage is one JSON-RPC response of at least n bytes on one line.
func bigMessage(n int) []byte {
	head := `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"`
	tail := `"}]}}` + "\n"
	b := make([]byte, 0, len(head)+n+len(tail))
	b = append(b, head...)
	for len(b) < len(head)+n {
		b = append(b, "0123456789abcdefghijklmnopqrstuvwxyz "...)
	}
	return append(b, tail...)
}

// messageLines counts the lines of a stream that make an event: the
// non-blank ones, a last line without newline included. (The streams here
// hold no batch of more than one message, except hostile's one, counted by
// the caller.)
func messageLines(b []byte) int64 {
	var n int64
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.Trim(l, " \t\r")) > 0 {
			n++
		}
	}
	return n
}

// throughCat sends in through `kilometers monitor -- cat` and returns the
// length and hash of what came back, and the monitor's stderr.
func throughCat(t *testing.T, h *home, in []byte) (int64, [32]byte, string) {
	t.Helper()
	cmd := h.child("cat")
	cmd.Stdin = bytes.NewReader(in)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.New()
	var first bytes.Buffer // kept whole when small, to show a difference
	n, err := io.Copy(io.MultiWriter(sum, &capped{b: &first, n: 1 << 20}), stdout)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("monitor: %v\n%s", err, stderr.String())
	}
	if n != int64(len(in)) || (len(in) <= 1<<20 && !bytes.Equal(first.Bytes(), in)) {
		got := first.Bytes()
		i := 0
		for i < len(got) && i < len(in) && got[i] == in[i] {
			i++
		}
		t.Errorf("%d bytes came back for %d sent; first difference at byte %d", n, len(in), i)
	}
	return n, [32]byte(sum.Sum(nil)), stderr.String()
}

type capped struct {
	b *bytes.Buffer
	n int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.n - c.b.Len(); room > 0 {
		c.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func testByteFidelity(t *testing.T, bin string) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("random stream seed %d", seed)
	tests := []struct {
		name  string
		in    []byte
		extra int64 // events beyond one per line (batch elements)
	}{
		{"hostile", []byte(hostile), 1},
		{"random", randomStream(seed, 256<<10), 0},
		{"64 MiB message", bigMessage(64 << 20), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t, bin)
			n, sum, stderr := throughCat(t, h, tt.in)
			if n != int64(len(tt.in)) || sum != sha256.Sum256(tt.in) {
				t.Fatalf("%d bytes came back for %d sent, or different bytes", n, len(tt.in))
			}
			// Both directions carried the stream: every line made an event
			// each way, or was counted as dropped (a burst of thousands of
			// lines in one read outruns the capture queue by design) and
			// reported.
			s := h.stats(t)
			want := ""
			if s.Totals.DroppedEvents > 0 {
				want = fmt.Sprintf("kilometers monitor: %d events were not recorded (the event store could not keep up or failed); the relay was not affected\n", s.Totals.DroppedEvents)
			}
			if stderr != want {
				t.Errorf("monitor stderr %q, want %q", stderr, want)
			}
			if want := 2 * (messageLines(tt.in) + tt.extra); s.Totals.Events+s.Totals.DroppedEvents != want {
				t.Errorf("%d events recorded and %d dropped, want %d in all", s.Totals.Events, s.Totals.DroppedEvents, want)
			}
			if tt.name == "64 MiB message" {
				for _, e := range h.activity(t) {
					if e.Size != int64(len(tt.in))-1 || !e.PayloadTruncated || e.Kind != "response" {
						t.Errorf("event of the big message: kind %s, size %d (want %d), truncated %v", e.Kind, e.Size, len(tt.in)-1, e.PayloadTruncated)
					}
				}
			}
		})
	}
}

// testInteractive checks that nothing waits for more input: each piece,
// whole line or not, comes back before the next is written.
func testInteractive(t *testing.T, bin string) {
	h := newHome(t, bin)
	cmd := h.child("cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pieces := []string{`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n", "a line in", " two pieces\r\n", "\n",
		strings.Repeat("x", 200<<10) + "\n", "no newline yet"}
	for i, p := range pieces {
		if _, err := io.WriteString(stdin, p); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(p))
		done := make(chan error, 1)
		go func() { _, err := io.ReadFull(stdout, got); done <- err }()
		select {
		case err := <-done:
			if err != nil || string(got) != p {
				t.Fatalf("piece %d: %v, got %q", i, err, shorten(got))
			}
		case <-time.After(30 * time.Second): // a hang, not a slow machine
			t.Fatalf("piece %d (%q) did not come back: the monitor holds it until more input", i, shorten([]byte(p)))
		}
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("monitor: %v", err)
	}
}

func shorten(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%s...(%d bytes)", b[:64], len(b))
	}
	return string(b)
}
