package configcmd

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/golden"
)

func TestJSONShowsSourcesAndMasksTheKey(t *testing.T) {
	const key = "km_live_0123456789abcdefghij"
	home := t.TempDir()
	if err := config.WriteFile(config.Path(home), config.File{APIURL: "https://km.example.com", APIKey: key, BatchSize: 50}); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"KILOMETERS_BATCH_SIZE": "70", "KILOMETERS_CAPTURE_MODE": "full"}
	getenv := func(k string) string { return vars[k] }
	var out bytes.Buffer
	f := &cmdutil.Factory{IO: &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}, Now: time.Now, Getenv: getenv}
	f.Config = func() (*config.Config, error) { return config.Load(home, getenv) }
	cmd := NewCmd(f)
	cmd.SetArgs([]string{"--json", "--capture-mode", "metadata"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), key) {
		t.Fatalf("the key was printed:\n%s", out.String())
	}
	var o Output
	if err := json.Unmarshal(out.Bytes(), &o); err != nil {
		t.Fatal(err)
	}
	if !o.FileExists || !o.Shipping || o.File != config.Path(home) {
		t.Errorf("output %+v", o)
	}
	got := map[string]Setting{}
	for _, s := range o.Settings {
		got[s.Key] = s
	}
	for _, want := range []Setting{
		{Key: config.KeyAPIURL, Value: "https://km.example.com", Source: config.SourceFile, Env: "KILOMETERS_API_URL"},
		{Key: config.KeyAPIKey, Value: config.MaskKey(key), Source: config.SourceFile, Env: "KILOMETERS_API_KEY"},
		{Key: config.KeyBatchSize, Value: "70", Source: config.SourceEnv, Env: "KILOMETERS_BATCH_SIZE"},
		{Key: config.KeyShipInterval, Value: "5s", Source: config.SourceDefault, Env: "KILOMETERS_SHIP_INTERVAL"},
		{Key: config.KeyCaptureMode, Value: "metadata", Source: config.SourceFlag, Env: "KILOMETERS_CAPTURE_MODE"},
	} {
		if got[want.Key] != want {
			t.Errorf("%s = %+v, want %+v", want.Key, got[want.Key], want)
		}
	}
}

func TestTable(t *testing.T) {
	home := "/home/me/.local/share/kilometers"
	for _, term := range golden.Terminals {
		t.Run(term.Name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			c := config.Defaults(home)
			c.APIURL, c.APIKey = "https://abc123.execute-api.eu-west-1.amazonaws.com", "km_live_0123456789abcdefghij"
			c.Sources[config.KeyAPIURL], c.Sources[config.KeyAPIKey] = config.SourceFile, config.SourceFile
			if err := c.Set(config.KeyCaptureMode, "metadata", config.SourceEnv); err != nil {
				t.Fatal(err)
			}
			opts := &Options{IO: term.Streams(&out, &errOut), Config: func() (*config.Config, error) { return c, nil }, Flags: &config.Flags{}}
			if err := Run(opts); err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, "config-"+term.Name, out.Bytes())
		})
	}
}
