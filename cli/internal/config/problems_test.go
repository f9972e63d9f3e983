package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func loadFile(t *testing.T, content string, vars map[string]string) *Config {
	t.Helper()
	home := t.TempDir()
	if err := os.WriteFile(Path(home), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(home, env(vars))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// A bad setting costs only itself: Load keeps the default for it, records
// where it was written, and fails only the commands that use it.
func TestBadSettingKeepsTheDefault(t *testing.T) {
	c := loadFile(t, "{\n  \"batch_size\": 100,\n  \"capture_mode\": \"ful\"\n}\n", nil)
	if c.CaptureMode != CaptureRedacted || c.Sources[KeyCaptureMode] != SourceDefault || c.BatchSize != 100 {
		t.Errorf("capture_mode %q from %s, batch_size %d; want the default in place of the bad mode, the good batch size kept",
			c.CaptureMode, c.Sources[KeyCaptureMode], c.BatchSize)
	}
	err := c.Check(KeyAPIURL, KeyCaptureMode)
	want := filepath.Join(c.Home, FileName) + `:3:19: capture_mode: must be full, redacted or metadata, got "ful"`
	if err == nil || err.Error() != want {
		t.Errorf("Check = %v, want %s", err, want)
	}
	if err := c.Check(KeyAPIURL, KeyRetentionDays); err != nil {
		t.Errorf("a command not using capture_mode fails: %v", err)
	}
	if w := c.Warnings(KeyAPIURL); len(w) != 1 || !strings.HasSuffix(w[0], "; using redacted (the default)") {
		t.Errorf("warnings %q", w)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("the stand-in is invalid: %v", err)
	}
}

func TestLayersAndProblems(t *testing.T) {
	// The environment fixes a bad file value; a bad environment value
	// keeps the file's.
	c := loadFile(t, `{"capture_mode": "nope", "batch_size": 200}`, map[string]string{
		"KILOMETERS_CAPTURE_MODE": "full", "KILOMETERS_BATCH_SIZE": "lots"})
	if c.CaptureMode != CaptureFull || c.BatchSize != 200 || c.Sources[KeyBatchSize] != SourceFile {
		t.Errorf("capture_mode %q, batch_size %d from %s", c.CaptureMode, c.BatchSize, c.Sources[KeyBatchSize])
	}
	if err := c.Check(KeyCaptureMode); err != nil {
		t.Errorf("capture_mode was fixed by the environment, still: %v", err)
	}
	err := c.Check(KeyBatchSize)
	if err == nil || !strings.HasPrefix(err.Error(), "KILOMETERS_BATCH_SIZE: batch_size: want a whole number") {
		t.Errorf("Check(batch_size) = %v", err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.HasSuffix(w[0], "; using 200 (from file)") {
		t.Errorf("warnings %q", w)
	}
}

func TestRetentionProblemDeletesNothing(t *testing.T) {
	c := loadFile(t, `{"retention_days": "90d", "retention_bytes": 1073741824}`, nil)
	days, bytes := c.Retention()
	if days != 0 || bytes != 1<<30 {
		t.Errorf("Retention() = %d days, %d bytes; want no age limit and the file's size limit", days, bytes)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "nothing is deleted for its age") {
		t.Errorf("warnings %q", w)
	}
}

func TestUnknownKeysSuggestTheClosest(t *testing.T) {
	c := loadFile(t, "{\"api_url\": \"http://x.example\",\n \"captur_mode\": \"full\", \"RETENTION_DAYS\": 3, \"zzz\": 1}", nil)
	if err := c.Check(Keys...); err != nil {
		t.Errorf("unknown keys must only warn: %v", err)
	}
	file := filepath.Join(c.Home, FileName)
	want := []string{
		file + `:2:2: unknown setting "captur_mode"; did you mean "capture_mode"?`,
		file + `:2:25: unknown setting "RETENTION_DAYS"; did you mean "retention_days"?`,
		file + `:2:46: unknown setting "zzz"; did you mean "api_url"?`,
	}
	if got := c.Warnings(); !slices.Equal(got, want) {
		t.Errorf("warnings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c.APIURL != "http://x.example" {
		t.Errorf("the known key was not applied: %q", c.APIURL)
	}
}

// A file that is not JSON is not used at all, and says where it broke, in
// file:line:column form, without Go's internals.
func TestParseErrorsGivePositions(t *testing.T) {
	for _, tc := range []struct {
		name, content, where, msg string
	}{
		{"missing comma", "{\n  \"batch_size\": 100\n  \"capture_mode\": \"full\"\n}", ":3:3:", "invalid JSON"},
		{"trailing comma", "{\"batch_size\": 100,}", ":1:20:", "invalid JSON"},
		{"cut short", "{\"batch_size\": 100", ":1:19:", "ends before"},
		{"not an object", "\n  [1, 2]", ":2:3:", "one JSON object"},
		{"two objects", "{} {}", ":1:4:", "after the settings"},
		{"é before the error", "{\"api_key\": \"é\" x}", ":1:17:", "invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := loadFile(t, tc.content, map[string]string{"KILOMETERS_BATCH_SIZE": "7"})
			if err := c.Check(); err != nil {
				t.Errorf("Check() with no settings used fails: %v", err)
			}
			err := c.Check(KeyCaptureMode)
			if err == nil || !strings.Contains(err.Error(), FileName+tc.where) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Check() = %v, want %s…%s", err, tc.where, tc.msg)
			}
			if strings.Contains(err.Error(), "json: ") || strings.Contains(err.Error(), "Unmarshal") {
				t.Errorf("Go internals in %q", err)
			}
			if c.BatchSize != 7 || c.CaptureMode != CaptureRedacted {
				t.Errorf("with the file unusable, want the environment and the defaults: %+v", c)
			}
			if _, err := ReadFile(Path(c.Home)); err == nil || !strings.Contains(err.Error(), FileName+tc.where) {
				t.Errorf("ReadFile = %v, want the same position", err)
			}
		})
	}
}

func TestUnreadableFile(t *testing.T) {
	home := t.TempDir()
	if err := os.Mkdir(Path(home), 0o700); err != nil { // a directory where the file should be
		t.Fatal(err)
	}
	c, err := Load(home, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(KeyAPIURL); err == nil || !strings.Contains(err.Error(), "cannot read the config file") {
		t.Errorf("Check() = %v", err)
	}
}

func TestReadFileTypeError(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(p, []byte("{\n \"batch_size\": \"many\"}"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":2:") || !strings.Contains(err.Error(), "batch_size") {
		t.Errorf("ReadFile = %v", err)
	}
}
