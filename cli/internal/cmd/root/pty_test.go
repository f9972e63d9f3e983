//go:build unix

package root

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// asCLIEnv makes the test binary run the CLI itself, so the pseudo-terminal
// test sees exactly what a user's terminal would.
const asCLIEnv = "KILOMETERS_ROOT_TEST_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(asCLIEnv) != "" {
		f := cmdutil.NewFactory(cmdutil.BuildInfo{Version: "test"})
		os.Exit(Execute(context.Background(), f, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// ptyHome is a home whose store holds enough events for a page and rows
// wider than 80 columns.
func ptyHome(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	home := t.TempDir()
	st, err := store.Open(ctx, home, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const sid = "0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31"
	w, err := st.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	code := -32602
	var evs []event.Event
	for i := range 60 {
		e := event.Event{ID: "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f" + string(rune('a'+i/26)) + string(rune('a'+i%26)), SessionID: sid, Seq: int64(i + 1),
			TS: time.Now().UTC().Add(-time.Duration(60-i) * time.Second), Direction: event.ServerToClient, Kind: event.KindError,
			Server: "a-server-with-a-rather-long-name", RPCID: "1", Method: "tools/call", Tool: "a_tool_with_a_long_name_too",
			ErrorCode: &code, ErrorMessage: "a long error message that would never fit on an eighty column terminal", Size: 100,
			Risk: &event.Risk{Score: 80, Level: event.LevelHigh, Reasons: []string{"sensitive_path"}}}
		e.ID = e.ID[:36]
		evs = append(evs, e)
	}
	if err := w.Record(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return home
}

// pagerScript is a pager that says it ran, then shows its input.
func pagerScript(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pager")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho PAGER-RAN\nexec cat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func cliCmd(t *testing.T, home string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append([]string{asCLIEnv + "=1", "KILOMETERS_HOME=" + home, "HOME=" + home, "PATH=" + os.Getenv("PATH"), "TERM=xterm"}, env...)
	return cmd
}

// runInPTY runs the CLI on a pseudo-terminal of the given width and
// returns all it wrote there.
func runInPTY(t *testing.T, cmd *exec.Cmd, cols uint16) string {
	t.Helper()
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: cols})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	_, err = io.Copy(&out, f)
	if err != nil && !errors.Is(err, syscall.EIO) { // EIO: the other end closed
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out.String())
	}
	return strings.ReplaceAll(out.String(), "\r\n", "\n")
}

func TestTerminal(t *testing.T) {
	home := ptyHome(t)
	pager := pagerScript(t)
	ansi := "\x1b["

	t.Run("colour, width and pager on a terminal", func(t *testing.T) {
		out := runInPTY(t, cliCmd(t, home, []string{"PAGER=" + pager}, "activity", "--local"), 80)
		if !strings.HasPrefix(out, "PAGER-RAN\n") {
			t.Errorf("the pager did not run:\n%s", out)
		}
		if !strings.Contains(out, ansi) {
			t.Errorf("no colour on a terminal:\n%q", out)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.HasPrefix(line, "More events: add --cursor ") {
				continue // a hint on stderr, the cursor whole to be copied
			}
			if n := utf8.RuneCountInString(stripANSI(line)); n > 80 {
				t.Errorf("line of %d columns on an 80-column terminal: %q", n, stripANSI(line))
			}
		}
		if !strings.Contains(out, "…") {
			t.Errorf("nothing was cut to fit:\n%s", out)
		}
	})
	t.Run("NO_COLOR", func(t *testing.T) {
		out := runInPTY(t, cliCmd(t, home, []string{"PAGER=" + pager, "NO_COLOR=1"}, "activity", "--local"), 200)
		if strings.Contains(out, ansi) {
			t.Errorf("colour with NO_COLOR set:\n%q", out)
		}
		if !strings.Contains(out, "  a-server-with-a-rather-long-name  ") || !strings.Contains(out, "a_tool_with_a_long_name_too") {
			t.Errorf("a wide terminal cut what fits:\n%s", out)
		}
	})
	t.Run("piped", func(t *testing.T) {
		cmd := cliCmd(t, home, []string{"PAGER=" + pager}, "activity", "--local")
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		s := string(out)
		if strings.Contains(s, "PAGER-RAN") || strings.Contains(s, ansi) || strings.Contains(s, "…") {
			t.Errorf("piped output was paged, coloured or cut:\n%s", s)
		}
		first := strings.SplitN(s, "\n", 3)[1]
		if f := strings.Split(first, "\t"); len(f) != 12 || !strings.HasSuffix(f[0], "Z") {
			t.Errorf("piped row is not tab-separated with a UTC time: %q", first)
		}
	})
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
