package root

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
)

func testFactory(t *testing.T) (*cmdutil.Factory, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	home := t.TempDir()
	var out, errOut bytes.Buffer
	getenv := func(k string) string {
		if k == "KILOMETERS_HOME" {
			return home
		}
		return ""
	}
	f := &cmdutil.Factory{
		IO:     &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Build:  cmdutil.BuildInfo{Version: "1.2.3", Commit: "abc1234", Date: "2026-11-23"},
		Now:    time.Now,
		Getenv: getenv,
		Home:   func() (string, error) { return home, nil },
	}
	f.Config = func() (*config.Config, error) { return config.Load(home, getenv) }
	return f, &out, &errOut
}

// Every command a user can run shows what it is for and how to call it.
func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	f, _, _ := testFactory(t)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Hidden || !c.Runnable() || c.Name() == "help" || strings.HasPrefix(c.CommandPath(), "kilometers completion") {
			return
		}
		if c.Short == "" {
			t.Errorf("%q has no Short description", c.CommandPath())
		}
		if !strings.Contains(c.Example, "kilometers ") {
			t.Errorf("%q has no Example showing a real invocation", c.CommandPath())
		}
	}
	walk(NewCmd(f))
}

func TestExecute(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "version", args: []string{"--version"}, wantOut: "kilometers 1.2.3 (commit abc1234, built 2026-11-23)\n"},
		{name: "version command", args: []string{"version"}, wantOut: "kilometers 1.2.3 (commit abc1234, built 2026-11-23)\n"},
		{name: "unknown flag is a usage error", args: []string{"stats", "--no-such-flag"}, wantCode: 2, wantErr: "Run 'kilometers stats --help' for usage."},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantErr: `unknown command "frobnicate"`},
		{name: "misspelt command", args: []string{"sesions"}, wantCode: 2, wantErr: `did you mean "sessions"?`},
		{name: "argument where none is taken", args: []string{"activity", "read_file"}, wantCode: 2,
			wantErr: "kilometers: kilometers activity takes no arguments, got \"read_file\"\nRun 'kilometers activity --help' for usage."},
		{name: "missing argument", args: []string{"show"}, wantCode: 2, wantErr: "kilometers show needs an event ID"},
		{name: "bad number", args: []string{"activity", "--limit", "many"}, wantCode: 2, wantErr: "kilometers: invalid argument \"many\" for \"-L, --limit\" flag: not a number\nRun"},
		{name: "bad since", args: []string{"sessions", "--since", "soon"}, wantCode: 2, wantErr: "invalid --since"},
		{name: "completion", args: []string{"completion", "bash"}, wantOut: "bash completion"},
		{name: "help lists commands", args: []string{"--help"}, wantOut: "monitor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, out, errOut := testFactory(t)
			code := Execute(context.Background(), f, tt.args)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("stdout = %q, want it to contain %q", out, tt.wantOut)
			}
			if !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", errOut, tt.wantErr)
			}
		})
	}
}
