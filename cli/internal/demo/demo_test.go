package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// serveEnv makes the test binary the built-in demo server, as
// `kilometers-demo serve` is outside tests.
const serveEnv = "DEMO_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "1" {
		if err := Serve(context.Background(), os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDemo runs the demo with the built binary, as `make demo` does, and
// checks that what it shows is what the built-in session did.
func TestDemo(t *testing.T) {
	exe := testenv.BuildCLI(t)
	home := t.TempDir()
	var out, errOut bytes.Buffer
	opts := &Options{IO: &cmdutil.IOStreams{Out: &out, ErrOut: &errOut}, Exe: exe, BuiltinServer: []string{os.Args[0]}, Home: home, Environ: append(os.Environ(), serveEnv+"=1")}
	if err := Run(context.Background(), opts); err != nil {
		t.Fatalf("demo: %v\nstderr:\n%s", err, errOut.String())
	}
	for _, want := range []string{"==> Connected to kilometers-demo", "no_such_tool -> protocol error", "==> kilometers stats"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("demo's progress lacks %q:\n%s", want, errOut.String())
		}
	}
	// The activity table shows the whole session, handshake included.
	for _, want := range []string{"tools/list", "search_docs", "resources/read", "Events"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo's output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "--cursor") {
		t.Errorf("demo's activity table is cut short:\n%s", out.String())
	}

	// The demo's events are in its own home, and count exactly.
	cmd := exec.Command(exe, "stats", "--json", "--since", "1h")
	cmd.Env = demoEnv(os.Environ(), home)
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("kilometers stats: %v", err)
	}
	var st struct {
		Totals struct {
			Sessions int `json:"sessions"`
		} `json:"totals"`
		Tools []struct {
			Tool   string `json:"tool"`
			Calls  int    `json:"calls"`
			Errors int    `json:"errors"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("decode stats: %v\n%s", err, b)
	}
	want := map[string][2]int{"add": {5, 0}, "echo": {1, 0}, "read_file": {4, 2}, "search_docs": {2, 0}, "no_such_tool": {1, 1}}
	got := map[string][2]int{}
	for _, tl := range st.Tools {
		got[tl.Tool] = [2]int{tl.Calls, tl.Errors}
	}
	for tool, w := range want {
		if got[tool] != w {
			t.Errorf("tool %s: calls, errors = %v, want %v", tool, got[tool], w)
		}
	}
	if st.Totals.Sessions != 1 {
		t.Errorf("sessions = %d, want 1", st.Totals.Sessions)
	}
}

// TestDemoServerNotFound: a server command that does not exist fails the
// demo with a clear error instead of hanging.
func TestDemoServerNotFound(t *testing.T) {
	exe := testenv.BuildCLI(t)
	var out, errOut bytes.Buffer
	opts := &Options{
		IO:      &cmdutil.IOStreams{Out: &out, ErrOut: &errOut},
		Exe:     exe,
		Home:    t.TempDir(),
		Server:  []string{filepath.Join(t.TempDir(), "no-such-server")},
		Environ: os.Environ(),
	}
	err := Run(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "start the monitored server") {
		t.Fatalf("demo with a missing server: %v, want a start error", err)
	}
}
