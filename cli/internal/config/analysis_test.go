package config

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/event"
)

func float(f float64) *float64 { return &f }

func TestAnalysisOptionsDefaults(t *testing.T) {
	c, err := Load(t.TempDir(), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.AnalysisOptions(), analysis.DefaultOptions(); got.CostModel != want.CostModel ||
		got.CostPerKB != want.CostPerKB || got.InputPricePerMTok != want.InputPricePerMTok ||
		got.OutputPricePerMTok != want.OutputPricePerMTok {
		t.Errorf("AnalysisOptions() = %+v, want the defaults %+v", got, want)
	}
	for _, k := range analysisKeys {
		if c.Sources[k] != SourceDefault {
			t.Errorf("%s source = %q, want default", k, c.Sources[k])
		}
	}
	// A Config built without Defaults still prices by the seeds' model
	// rather than for free.
	if got := (&Config{}).AnalysisOptions(); got.CostModel != analysis.CostPerKB || got.CostPerKB != analysis.DefaultCostPerKB {
		t.Errorf("zero Config AnalysisOptions() = %+v", got)
	}
}

// TestAnalysisPrecedence checks every analysis key at every layer below
// flags: environment over file over default, and the options follow.
func TestAnalysisPrecedence(t *testing.T) {
	d := analysis.DefaultOptions()
	keys := []struct {
		key       string
		file, env string
		toFile    func(*File)
		def       string
		get       func(analysis.Options) string
	}{
		{KeyCostModel, "per_token", "per_kb", func(f *File) { f.CostModel = "tokens" }, string(d.CostModel),
			func(o analysis.Options) string { return string(o.CostModel) }},
		{KeyCostPerKB, "0.002", "0", func(f *File) { f.CostPerKB = float(0.002) }, "0.001",
			func(o analysis.Options) string { return fmtFloat(o.CostPerKB) }},
		{KeyUSDPerMillionTokens, "0.8", "1.25", func(f *File) { f.USDPerMillionTokens = float(0.8) }, "3",
			func(o analysis.Options) string { return fmtFloat(o.InputPricePerMTok) }},
		{KeyUSDPerMillionOutputTokens, "4", "0", func(f *File) { f.USDPerMillionOutputTokens = float(4) }, "15",
			func(o analysis.Options) string { return fmtFloat(o.OutputPricePerMTok) }},
	}
	for _, k := range keys {
		for _, c := range []struct {
			name      string
			file, env bool
			want      string
			src       Source
		}{
			{"default", false, false, k.def, SourceDefault},
			{"file", true, false, k.file, SourceFile},
			{"env over file", true, true, k.env, SourceEnv},
		} {
			t.Run(k.key+"/"+c.name, func(t *testing.T) {
				home := t.TempDir()
				if c.file {
					var f File
					k.toFile(&f)
					if err := WriteFile(Path(home), f); err != nil {
						t.Fatal(err)
					}
				}
				vars := map[string]string{}
				if c.env {
					vars[EnvVar(k.key)] = k.env
				}
				cfg, err := Load(home, env(vars))
				if err != nil {
					t.Fatal(err)
				}
				if got := cfg.Value(k.key); got != c.want {
					t.Errorf("Value = %q, want %q", got, c.want)
				}
				if got := k.get(cfg.AnalysisOptions()); got != c.want {
					t.Errorf("AnalysisOptions field = %q, want %q", got, c.want)
				}
				if cfg.Sources[k.key] != c.src {
					t.Errorf("source = %q, want %q", cfg.Sources[k.key], c.src)
				}
			})
		}
	}
}

func fmtFloat(f float64) string {
	c := &Config{Analysis: AnalysisSettings{CostPerKB: f}}
	return c.analysisValue(KeyCostPerKB)
}

// TestAnalysisZeroPriceInFile: zero is a price (free), so a file that says
// 0 must win over the default, unlike the other settings where 0 is unset.
func TestAnalysisZeroPriceInFile(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(Path(home), []byte(`{"cost_per_kb": 0}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(home, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.AnalysisOptions().CostPerKB != 0 || c.Sources[KeyCostPerKB] != SourceFile {
		t.Errorf("cost_per_kb = %v from %s, want 0 from file", c.AnalysisOptions().CostPerKB, c.Sources[KeyCostPerKB])
	}
}

func TestAnalysisRoundTripThroughFile(t *testing.T) {
	home := t.TempDir()
	c := Defaults(home)
	for k, v := range map[string]string{KeyCostModel: "tokens", KeyUSDPerMillionTokens: "0", KeyCostPerKB: "0.0005"} {
		if err := c.Set(k, v, SourceFlag); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteFile(Path(home), c.ToFile()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(Path(home))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw[KeyUSDPerMillionOutputTokens]; ok {
		t.Errorf("a default was written to the file: %s", b)
	}
	got, err := Load(home, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	o := got.AnalysisOptions()
	if o.CostModel != analysis.CostPerToken || o.InputPricePerMTok != 0 || o.CostPerKB != 0.0005 ||
		o.OutputPricePerMTok != analysis.DefaultOutputPricePerMTok {
		t.Errorf("after round trip: %+v (file %s)", o, b)
	}
}

func TestAnalysisBadValues(t *testing.T) {
	for _, c := range []struct {
		name    string
		file    string
		env     map[string]string
		wantErr []string
	}{
		{"unknown model in env", "", map[string]string{"KILOMETERS_COST_MODEL": "per_word"},
			[]string{"KILOMETERS_COST_MODEL", "cost_model", "per_kb", "per_token", `"per_word"`}},
		{"unknown model in file", `{"cost_model": "bytes"}`, nil, []string{"config.json", "cost_model", `"bytes"`}},
		{"price not a number", "", map[string]string{"KILOMETERS_COST_PER_KB": "$0.001"},
			[]string{"KILOMETERS_COST_PER_KB", "want a price in dollars", `"$0.001"`}},
		{"negative price", "", map[string]string{"KILOMETERS_USD_PER_MILLION_TOKENS": "-3"},
			[]string{"usd_per_million_tokens", "from 0 to"}},
		{"NaN price", "", map[string]string{"KILOMETERS_USD_PER_MILLION_OUTPUT_TOKENS": "NaN"},
			[]string{"usd_per_million_output_tokens", "from 0 to"}},
		{"infinite price", "", map[string]string{"KILOMETERS_COST_PER_KB": "+Inf"}, []string{"cost_per_kb"}},
		{"absurd price in file", `{"usd_per_million_tokens": 5e9}`, nil, []string{"usd_per_million_tokens", "from 0 to"}},
		{"price of the wrong type in file", `{"cost_per_kb": "cheap"}`, nil, []string{"config.json:1:17", "cost_per_kb", `"cheap"`}},
		{"price an object in file", `{"cost_per_kb": {"usd": 1}}`, nil, []string{"config.json:1:17", "cost_per_kb", "want a string or a number"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			home := t.TempDir()
			if c.file != "" {
				if err := os.WriteFile(Path(home), []byte(c.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := Load(home, env(c.env))
			if err != nil {
				t.Fatal(err)
			}
			// Load keeps the default; a command using the setting fails.
			if cfg.Analysis != defaultAnalysis() {
				t.Errorf("analysis settings %+v, want the defaults in place of the bad value", cfg.Analysis)
			}
			err = cfg.Check(Keys...)
			if err == nil {
				t.Fatal("Check succeeded, want an error")
			}
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// Values set on the struct directly are validated too.
	c := Defaults(t.TempDir())
	c.Analysis.CostModel = "free"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "cost_model") {
		t.Errorf("Validate() = %v, want a cost_model error", err)
	}
}

func TestAnalysisModelAliases(t *testing.T) {
	for in, want := range map[string]analysis.CostModel{
		"size": analysis.CostPerKB, "per_kb": analysis.CostPerKB, "PER_KB": analysis.CostPerKB,
		"tokens": analysis.CostPerToken, "per_token": analysis.CostPerToken, " Tokens ": analysis.CostPerToken,
	} {
		c := Defaults(t.TempDir())
		if err := c.Set(KeyCostModel, in, SourceEnv); err != nil {
			t.Fatalf("Set(%q): %v", in, err)
		}
		if c.Analysis.CostModel != want || c.Value(KeyCostModel) != string(want) {
			t.Errorf("cost_model %q = %q, want %q", in, c.Analysis.CostModel, want)
		}
	}
}

func TestAnalysisKeysListed(t *testing.T) {
	listed := map[string]bool{}
	for _, k := range Keys {
		listed[k] = true
	}
	for _, k := range analysisKeys {
		if !listed[k] {
			t.Errorf("%s missing from Keys: kilometers config would not show it", k)
		}
	}
	// Keys outside both lists are still refused.
	if err := Defaults(t.TempDir()).Set("cost_per_mb", "1", SourceEnv); err == nil || !strings.Contains(err.Error(), "unknown setting") {
		t.Errorf("Set(cost_per_mb) = %v, want unknown setting", err)
	}
}

// The settings reach the analysis: a result priced by tokens at the
// configured rate, a request by size at the configured price per KB.
func TestAnalysisOptionsPriceEvents(t *testing.T) {
	result := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + strings.Repeat("abcd", 250) + `"}]}}`)
	for _, c := range []struct {
		env  map[string]string
		want func(e *event.Event) float64
	}{
		{map[string]string{"KILOMETERS_COST_MODEL": "tokens", "KILOMETERS_USD_PER_MILLION_TOKENS": "2"},
			func(e *event.Event) float64 { return float64(e.Tokens) * 2 / 1e6 }},
		{map[string]string{"KILOMETERS_COST_PER_KB": "0.5"},
			func(e *event.Event) float64 { return float64(e.Size) / 1024 * 0.5 }},
	} {
		cfg, err := Load(t.TempDir(), env(c.env))
		if err != nil {
			t.Fatal(err)
		}
		s := analysis.NewSession(cfg.AnalysisOptions())
		e := &event.Event{Kind: event.KindResponse, Method: "tools/call", Tool: "read", RPCID: "1",
			Size: int64(len(result)), Payload: result}
		s.Analyze(e, result)
		if e.Tokens <= 0 || e.CostUSD != c.want(e) {
			t.Errorf("%v: cost %g for %d tokens, %d bytes; want %g", c.env, e.CostUSD, e.Tokens, e.Size, c.want(e))
		}
	}
}
