package configcmd

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
)

func TestSetAndUnset(t *testing.T) {
	home := t.TempDir()
	path := config.Path(home)
	if err := config.WriteFile(path, config.File{APIURL: "https://km.example.com", APIKey: "km_live_0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	run := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		f := &cmdutil.Factory{IO: &cmdutil.IOStreams{Out: &out, ErrOut: &errOut}, Getenv: func(k string) string { return env[k] },
			Home: func() (string, error) { return home, nil }}
		f.Config = func() (*config.Config, error) { return config.Load(home, f.Getenv) }
		cmd := NewCmd(f)
		cmd.SetArgs(args)
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		err := cmd.Execute()
		return out.String(), errOut.String(), err
	}
	load := func() *config.Config {
		c, err := config.Load(home, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	out, _, err := run("set", "capture_mode", "METADATA")
	if err != nil || !strings.Contains(out, "Set capture_mode to metadata in "+path) {
		t.Fatalf("set: %q, %v", out, err)
	}
	if c := load(); c.CaptureMode != config.CaptureMetadata || c.APIKey != "km_live_0123456789abcdef" {
		t.Errorf("after set: %+v", c)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, %v", info.Mode(), err)
	}

	before, _ := os.ReadFile(path)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "capture_mode", "everything"}, "must be full, redacted or metadata"},
		{[]string{"set", "retention_days", "many"}, "want a whole number"},
		{[]string{"set", "api_url", "ftp://x"}, "want an http(s) URL"},
		{[]string{"set", "capture_mod", "full"}, `unknown setting "capture_mod"`},
		{[]string{"set", "capture_mode"}, "needs its VALUE"},
		{[]string{"unset"}, "needs a setting (KEY)"},
	} {
		_, _, err := run(tt.args...)
		var fe *cmdutil.FlagError
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.As(err, &fe) {
			t.Errorf("%v: err = %v, want a usage error with %q", tt.args, err, tt.want)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Errorf("a refused value changed the file:\n%s", after)
	}

	env["KILOMETERS_RETENTION_DAYS"] = "3"
	if _, errOut, err := run("set", "retention_days", "7"); err != nil || !strings.Contains(errOut, "KILOMETERS_RETENTION_DAYS is set in the environment") {
		t.Errorf("set under an env var: %q, %v", errOut, err)
	}
	out, _, err = run("unset", "capture_mode")
	if err != nil || !strings.Contains(out, "now the default, redacted") {
		t.Fatalf("unset: %q, %v", out, err)
	}
	if c := load(); c.CaptureMode != config.CaptureRedacted || c.Sources[config.KeyCaptureMode] != config.SourceDefault || c.RetentionDays != 7 {
		t.Errorf("after unset: %+v", c)
	}
	if _, _, err := run("unset", "api_key"); err != nil {
		t.Fatal(err)
	}
	if c := load(); c.ShippingEnabled() || c.APIURL == "" {
		t.Errorf("after unset api_key: url %q key %q", c.APIURL, c.APIKey)
	}
}
