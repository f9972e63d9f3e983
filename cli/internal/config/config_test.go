package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestPrecedence(t *testing.T) {
	home := t.TempDir()
	if err := WriteFile(Path(home), File{APIURL: "http://file.example", APIKey: "km_filekey_123456", BatchSize: 100, ShipInterval: "2s"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(home, env(map[string]string{
		"KILOMETERS_API_KEY":      "km_envkey_abcdef",
		"KILOMETERS_BATCH_SIZE":   "200",
		"KILOMETERS_CAPTURE_MODE": "metadata",
	}))
	if err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fl := BindFlags(fs)
	if err := fs.Parse([]string{"--batch-size", "300"}); err != nil {
		t.Fatal(err)
	}
	if err := fl.Apply(c); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key  string
		want string
		src  Source
	}{
		{KeyAPIURL, "http://file.example", SourceFile},
		{KeyAPIKey, MaskKey("km_envkey_abcdef"), SourceEnv},
		{KeyBatchSize, "300", SourceFlag},
		{KeyShipInterval, "2s", SourceFile},
		{KeyCaptureMode, "metadata", SourceEnv},
		{KeyRetentionDays, "30", SourceDefault},
	}
	for _, ch := range checks {
		if got := c.Value(ch.key); got != ch.want {
			t.Errorf("%s = %q, want %q", ch.key, got, ch.want)
		}
		if got := c.Sources[ch.key]; got != ch.src {
			t.Errorf("%s source = %q, want %q", ch.key, got, ch.src)
		}
	}
	if c.APIKey != "km_envkey_abcdef" || c.ShipInterval != 2*time.Second || !c.ShippingEnabled() {
		t.Errorf("config = %+v", c)
	}
}

func TestWriteFileMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", FileName)
	if err := WriteFile(p, File{APIKey: "secret"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	f, err := ReadFile(p)
	if err != nil || f.APIKey != "secret" {
		t.Errorf("ReadFile = %+v, %v", f, err)
	}
}

func TestInvalid(t *testing.T) {
	for name, m := range map[string]map[string]string{
		"bad url":      {"KILOMETERS_API_URL": "ftp://x"},
		"bad batch":    {"KILOMETERS_BATCH_SIZE": "0"},
		"huge batch":   {"KILOMETERS_BATCH_SIZE": "999999"},
		"bad interval": {"KILOMETERS_FLUSH_INTERVAL": "soon"},
		"bad mode":     {"KILOMETERS_CAPTURE_MODE": "everything"},
	} {
		c, err := Load(t.TempDir(), env(m))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.Check(Keys...); err == nil {
			t.Errorf("%s: Check succeeded", name)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: the stand-in values are invalid: %v", name, err)
		}
	}
}

func TestMaskKey(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "",
		"short":                         "*****",
		"km_0123456789abcdefghijklmnop": "km_********mnop",
		"abcdefghijklmnopqrstuvwxyz":    "abcd********wxyz",
	} {
		if got := MaskKey(in); got != want {
			t.Errorf("MaskKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPrecedenceEveryLayer checks each shipping setting at every layer:
// the highest layer that sets a key wins, and says so.
func TestPrecedenceEveryLayer(t *testing.T) {
	type layer struct{ file, env, flag string }
	settings := []struct {
		key, flag string
		vals      layer
		def       string
		toFile    func(*File, string)
	}{
		{KeyAPIURL, "api-url", layer{"http://file.example", "http://env.example", "http://flag.example"}, "",
			func(f *File, v string) { f.APIURL = v }},
		{KeyAPIKey, "api-key", layer{"km_filekey_0123456789", "km_envkey_0123456789", "km_flagkey_0123456789"}, "",
			func(f *File, v string) { f.APIKey = v }},
		{KeyBatchSize, "batch-size", layer{"100", "200", "300"}, "500",
			func(f *File, v string) { f.BatchSize, _ = strconv.Atoi(v) }},
		{KeyCaptureMode, "capture-mode", layer{"full", "metadata", "redacted"}, "redacted",
			func(f *File, v string) { f.CaptureMode = v }},
	}
	for _, s := range settings {
		for _, c := range []struct {
			name            string
			file, env, flag bool
			wantVal         string
			wantSrc         Source
		}{
			{"default", false, false, false, s.def, SourceDefault},
			{"file", true, false, false, s.vals.file, SourceFile},
			{"env over file", true, true, false, s.vals.env, SourceEnv},
			{"flag over env and file", true, true, true, s.vals.flag, SourceFlag},
			{"flag over file", true, false, true, s.vals.flag, SourceFlag},
		} {
			t.Run(s.key+"/"+c.name, func(t *testing.T) {
				home := t.TempDir()
				var f File
				if c.file {
					s.toFile(&f, s.vals.file)
				}
				if err := WriteFile(Path(home), f); err != nil {
					t.Fatal(err)
				}
				vars := map[string]string{}
				if c.env {
					vars[EnvVar(s.key)] = s.vals.env
				}
				cfg, err := Load(home, env(vars))
				if err != nil {
					t.Fatal(err)
				}
				fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
				fl := BindFlags(fs)
				var args []string
				if c.flag {
					args = []string{"--" + s.flag, s.vals.flag}
				}
				if err := fs.Parse(args); err != nil {
					t.Fatal(err)
				}
				if err := fl.Apply(cfg); err != nil {
					t.Fatal(err)
				}
				want := c.wantVal
				if s.key == KeyAPIKey {
					want = MaskKey(want)
				}
				if got := cfg.Value(s.key); got != want || cfg.Sources[s.key] != c.wantSrc {
					t.Errorf("%s = %q from %s, want %q from %s", s.key, got, cfg.Sources[s.key], want, c.wantSrc)
				}
			})
		}
	}
}

// ship_interval is read by monitors only, which take no setting flags: a
// flag for it on init, config or sync would do nothing.
func TestNoShipIntervalFlag(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	BindFlags(fs)
	for _, name := range []string{"ship-interval", "flush-interval"} {
		if fs.Lookup(name) != nil {
			t.Errorf("--%s is bound, but nothing reads it", name)
		}
	}
}

// ship_interval was flush_interval: the old name is still read, from the
// file and the environment, without a problem; the new name wins, and
// what is written is the new name.
func TestShipIntervalOldName(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(Path(home), []byte(`{"flush_interval": "3s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(home, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.ShipInterval != 3*time.Second || c.Sources[KeyShipInterval] != SourceFile || len(c.Problems) != 0 {
		t.Errorf("old key in the file: %s from %s, problems %v", c.ShipInterval, c.Sources[KeyShipInterval], c.Problems)
	}
	if f := c.ToFile(); f.ShipInterval != "3s" || f.FlushInterval != "" {
		t.Errorf("written back as %+v, want ship_interval only", f)
	}
	var f File
	if err := json.Unmarshal([]byte(`{"flush_interval": "4s"}`), &f); err != nil {
		t.Fatal(err)
	}
	applied := Defaults(home)
	if err := applied.ApplyFile(f); err != nil || applied.ShipInterval != 4*time.Second {
		t.Errorf("ApplyFile with the old key: %s, %v", applied.ShipInterval, err)
	}

	if err := os.WriteFile(Path(home), []byte(`{"flush_interval": "3s", "ship_interval": "7s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, _ := Load(home, env(nil)); c.ShipInterval != 7*time.Second || len(c.Problems) != 0 {
		t.Errorf("both keys in the file: %s, problems %v; want the new one's", c.ShipInterval, c.Problems)
	}

	if err := os.WriteFile(Path(home), []byte(`{"flush_interval": "soon"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, _ := Load(home, env(nil)); c.ShipInterval != DefaultShipInterval || len(c.Problems) != 1 || c.Problems[0].Key != KeyShipInterval {
		t.Errorf("bad old key in the file: %s, problems %+v; want the default and the problem", c.ShipInterval, c.Problems)
	}

	old := env(map[string]string{"KILOMETERS_FLUSH_INTERVAL": "9s"})
	if c, _ := Load(t.TempDir(), old); c.ShipInterval != 9*time.Second || c.Sources[KeyShipInterval] != SourceEnv {
		t.Errorf("old variable: %s from %s", c.ShipInterval, c.Sources[KeyShipInterval])
	}
	both := env(map[string]string{"KILOMETERS_FLUSH_INTERVAL": "9s", "KILOMETERS_SHIP_INTERVAL": "8s"})
	if c, _ := Load(t.TempDir(), both); c.ShipInterval != 8*time.Second {
		t.Errorf("both variables: %s, want the new one's", c.ShipInterval)
	}
}
