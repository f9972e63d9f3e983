// Package golden compares command output with files under testdata/, for
// tests. Run the tests with -update to rewrite the files, then read the
// diff.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Assert compares got with testdata/<name>.golden.
func Assert(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// Terminal is how a golden test's output is shown.
type Terminal struct {
	Name  string
	TTY   bool
	Width int
}

// Terminals are the three outputs every table is checked in: a narrow
// terminal, a wide one, and a pipe.
var Terminals = []Terminal{{"80", true, 80}, {"200", true, 200}, {"piped", false, 0}}

// Streams returns streams for terminal t writing to out and errOut, with
// times in UTC and no colour (the pseudo-terminal test checks colour).
func (t Terminal) Streams(out, errOut *bytes.Buffer) *cmdutil.IOStreams {
	return &cmdutil.IOStreams{In: bytes.NewReader(nil), Out: out, ErrOut: errOut, OutIsTerminal: t.TTY, Width: t.Width, TZ: time.UTC}
}
