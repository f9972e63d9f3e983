package monitor

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/defs"
	"github.com/kilometers-ai/kilometers/shared/analysis"
)

func noConfig() (*config.Config, error) { return nil, errors.New("bad config file") }

func TestAnalysisOptions(t *testing.T) {
	t.Run("definitions live under the home", func(t *testing.T) {
		home := t.TempDir()
		cfg := config.Defaults(home)
		if err := cfg.Set(config.KeyCostPerKB, "0.5", config.SourceEnv); err != nil {
			t.Fatal(err)
		}
		an := analysisOptions(&Options{Home: func() (string, error) { return home, nil }, Config: func() (*config.Config, error) { return cfg, nil }}, slog.New(slog.DiscardHandler))
		if _, ok := an.Definitions.(*defs.Store); !ok {
			t.Fatalf("Definitions is %T, want the file store", an.Definitions)
		}
		if an.CostPerKB != 0.5 {
			t.Errorf("cost per KB %v, want the configured 0.5", an.CostPerKB)
		}
	})
	t.Run("no home: within the session only", func(t *testing.T) {
		an := analysisOptions(&Options{Home: func() (string, error) { return "", errors.New("no home") }, Config: noConfig}, slog.New(slog.DiscardHandler))
		if an.Definitions != nil || an.CostPerKB != analysis.DefaultOptions().CostPerKB {
			t.Errorf("Definitions %T, cost per KB %v without a home or configuration", an.Definitions, an.CostPerKB)
		}
	})
	t.Run("store failures are reported once", func(t *testing.T) {
		home := t.TempDir()
		// A file where the directory should be: every save fails.
		if err := os.WriteFile(filepath.Join(home, defs.Dir), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		an := analysisOptions(&Options{Home: func() (string, error) { return home, nil }, Config: noConfig}, slog.New(slog.NewTextHandler(&logs, nil)))
		for range 3 {
			if err := an.Definitions.Save(t.Context(), "k", map[string]string{"t": "h"}); err == nil {
				t.Fatal("save into a file succeeded")
			} else {
				an.OnStoreError(err)
			}
		}
		if n := strings.Count(logs.String(), "tool definitions store"); n != 1 {
			t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
		}
	})
}
