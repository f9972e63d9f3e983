//go:build unix

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestStoreCannotWrite: a full disk or an unusable home costs events, never
// the session. Every call still gets its answer through the relay, the
// monitor exits with the server's code, and the loss is reported on stderr.
func TestStoreCannotWrite(t *testing.T) {
	e := setupNoAPI(t)
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		home    string   // KILOMETERS_HOME; empty for a fresh one
		wrapper []string // how the monitor is started
		stderr  []string // what the monitor must say
	}{
		{
			// The file size limit makes writes to the store fail with
			// EFBIG after about 50 KB, as a full disk would with ENOSPC,
			// while pipes (the relay) are not affected.
			name:    "disk full during the session",
			wrapper: []string{"/bin/sh", "-c", `ulimit -f 100 && exec "$@"`, "sh"},
			stderr:  []string{"file too large", "events were not recorded", "the relay was not affected"},
		},
		{
			name:   "home cannot be created",
			home:   filepath.Join(notDir, "home"),
			stderr: []string{"not recording this session", "not a directory"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := e.user(t)
			if c.home != "" {
				u.env = append(u.env, "KILOMETERS_HOME="+c.home) // the last one wins
			}
			var monitor *exec.Cmd
			logs := u.sessionVia(t, c.wrapper, func(cs *mcp.ClientSession, m *exec.Cmd) {
				monitor = m
				calls(t, cs, "echo", 150, strings.Repeat("payload ", 40))
				calls(t, cs, "fail", 2, "x")
			})
			if monitor.ProcessState == nil || monitor.ProcessState.ExitCode() != 0 {
				t.Errorf("monitor ended with %v\n%s", monitor.ProcessState, logs)
			}
			for _, want := range c.stderr {
				if !strings.Contains(logs, want) {
					t.Errorf("monitor stderr lacks %q:\n%s", want, logs)
				}
			}
		})
	}
}
