// Package config resolves the CLI's settings with one precedence everywhere:
// flags > KILOMETERS_* environment > config file > defaults. Load applies the
// first three layers below flags; commands bind flags with BindFlags and
// apply them on top. Every value remembers where it came from, so
// `kilometers config` can say why a setting has the value it has.
//
// The file is JSON at <home>/config.json, written by `kilometers init` with
// mode 0600 because it holds the API key.
package config

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kilometers-ai/kilometers/shared/backend"
)

// Capture modes decide what of a payload leaves the machine.
const (
	CaptureFull     = "full"
	CaptureRedacted = "redacted"
	CaptureMetadata = "metadata"
)

// FileName is the config file's name inside the Kilometers home.
const FileName = "config.json"

// Source says where a setting's value came from.
type Source string

const (
	SourceDefault Source = "default"
	SourceFile    Source = "file"
	SourceEnv     Source = "env"
	SourceFlag    Source = "flag"
)

// Keys of the settings, as written in the file; the environment variable of
// a key is KILOMETERS_ plus the key in upper case.
const (
	KeyAPIURL         = "api_url"
	KeyAPIKey         = "api_key"
	KeyBatchSize      = "batch_size"
	KeyShipInterval   = "ship_interval"
	KeyCaptureMode    = "capture_mode"
	KeyRetentionDays  = "retention_days"
	KeyRetentionBytes = "retention_bytes"
)

// oldKeys are former names of settings, still read from the file and the
// environment; the current name wins when both are set.
var oldKeys = map[string]string{"flush_interval": KeyShipInterval}

// oldName is the former name of key, "" when it had none.
func oldName(key string) string {
	for old, k := range oldKeys {
		if k == key {
			return old
		}
	}
	return ""
}

// Defaults of the settings that other packages also fall back on.
const (
	DefaultBatchSize    = 500
	DefaultShipInterval = 5 * time.Second
)

// Keys lists every setting in display order.
var Keys = append(append([]string{KeyAPIURL, KeyAPIKey, KeyBatchSize, KeyShipInterval, KeyCaptureMode, KeyRetentionDays, KeyRetentionBytes}, analysisKeys...), otlpKeys...)

// EnvVar returns the environment variable that sets key.
func EnvVar(key string) string {
	if isOTLPKey(key) {
		return strings.ToUpper(key) // the standard OTEL_ variable
	}
	return "KILOMETERS_" + strings.ToUpper(key)
}

// Config is the effective configuration.
type Config struct {
	Home      string `json:"-"`
	APIURL    string `json:"api_url,omitempty"`
	APIKey    string `json:"api_key,omitempty"`
	BatchSize int    `json:"batch_size,omitempty"`
	// ShipInterval is the least time between a monitor's background
	// shippers.
	ShipInterval time.Duration `json:"ship_interval,omitempty"`
	CaptureMode  string        `json:"capture_mode,omitempty"`
	// Retention bounds the local store by age and by size.
	RetentionDays  int   `json:"retention_days,omitempty"`
	RetentionBytes int64 `json:"retention_bytes,omitempty"`
	// Analysis holds the cost settings (see analysis.go).
	Analysis AnalysisSettings `json:"-"`
	// OTLP holds the OpenTelemetry export settings (see otlp.go).
	OTLP OTLPSettings `json:"-"`

	// Sources records where each key's value came from.
	Sources map[string]Source `json:"-"`
	// Problems lists the settings Load could not use and the keys it does
	// not know (see Check).
	Problems []Problem `json:"-"`
	// File is the config file Load read (or would read).
	File string `json:"-"`
}

// File is the on-disk form: durations as Go duration text, zero values
// meaning "not set here".
type File struct {
	APIURL         string `json:"api_url,omitempty"`
	APIKey         string `json:"api_key,omitempty"`
	BatchSize      int    `json:"batch_size,omitempty"`
	ShipInterval   string `json:"ship_interval,omitempty"`
	CaptureMode    string `json:"capture_mode,omitempty"`
	RetentionDays  int    `json:"retention_days,omitempty"`
	RetentionBytes int64  `json:"retention_bytes,omitempty"`
	AnalysisFile
	OTLPFile
	// FlushInterval is ShipInterval's former name: read, never written.
	FlushInterval string `json:"flush_interval,omitempty"`
}

// Defaults returns the configuration with nothing set.
func Defaults(home string) *Config {
	c := &Config{
		Home:           home,
		BatchSize:      DefaultBatchSize,
		ShipInterval:   DefaultShipInterval,
		CaptureMode:    CaptureRedacted,
		RetentionDays:  30,
		RetentionBytes: 512 << 20,
		Analysis:       defaultAnalysis(),
		Sources:        map[string]Source{},
		File:           Path(home),
	}
	for _, k := range Keys {
		c.Sources[k] = SourceDefault
	}
	return c
}

// Path returns the config file of a Kilometers home.
func Path(home string) string { return filepath.Join(home, FileName) }

// Load reads the effective configuration below flags: defaults, then the
// config file (a missing file is fine), then KILOMETERS_* variables. It
// does not fail on a bad value: the setting keeps what the layers below
// gave it and the problem is recorded in Problems, so that a command fails
// only on the settings it uses (Check) and the monitor always records. The
// error is reserved for what leaves no configuration at all.
func Load(home string, getenv func(string) string) (*Config, error) {
	c := Defaults(home)
	c.loadFile()
	for _, k := range Keys {
		env := EnvVar(k)
		v := strings.TrimSpace(getenv(env))
		if old := oldName(k); v == "" && old != "" {
			env = EnvVar(old)
			v = strings.TrimSpace(getenv(env))
		}
		if v != "" {
			c.setChecked(k, v, SourceEnv, env)
		}
	}
	return c, nil
}

// ReadFile reads a config file; a missing file reads as empty. Errors name
// the file, line and column.
func ReadFile(path string) (File, error) {
	var f File
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read config: %w", err)
	}
	if _, err := parseFile(b); err != nil {
		var pe *posError
		if errors.As(err, &pe) {
			return f, fmt.Errorf("%s: %s", position(path, b, pe.off), pe.msg)
		}
		return f, fmt.Errorf("%s: %w", path, err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return f, fmt.Errorf("%s: %s: want a %s, got a JSON %s", position(path, b, te.Offset), te.Field, te.Type, te.Value)
		}
		return f, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// WriteFile writes f to path with mode 0600, atomically (a reader sees the
// old file or the new one, never half of one).
func WriteFile(path string, f File) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".config-*.json")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		tmp.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// ApplyFile sets the values f holds, with source file.
func (c *Config) ApplyFile(f File) error {
	set := func(k, v string) error {
		if v == "" || v == "0" {
			return nil
		}
		return c.Set(k, v, SourceFile)
	}
	for _, kv := range [][2]string{
		{KeyAPIURL, f.APIURL},
		{KeyAPIKey, f.APIKey},
		{KeyBatchSize, strconv.Itoa(f.BatchSize)},
		{KeyShipInterval, cmp.Or(f.ShipInterval, f.FlushInterval)},
		{KeyCaptureMode, f.CaptureMode},
		{KeyRetentionDays, strconv.Itoa(f.RetentionDays)},
		{KeyRetentionBytes, strconv.FormatInt(f.RetentionBytes, 10)},
	} {
		if err := set(kv[0], kv[1]); err != nil {
			return err
		}
	}
	if err := c.applyAnalysisFile(f.AnalysisFile); err != nil {
		return err
	}
	return c.applyOTLPFile(f.OTLPFile)
}

// Set parses v into key and records its source.
func (c *Config) Set(key, v string, src Source) error {
	v = strings.TrimSpace(v)
	switch key {
	case KeyAPIURL:
		c.APIURL = strings.TrimRight(v, "/")
	case KeyAPIKey:
		c.APIKey = v
	case KeyBatchSize:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%s: want a whole number, got %q", key, v)
		}
		c.BatchSize = n
	case KeyShipInterval:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s: want a duration like 5s or 1m, got %q", key, v)
		}
		c.ShipInterval = d
	case KeyCaptureMode:
		c.CaptureMode = strings.ToLower(v)
	case KeyRetentionDays:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%s: want a whole number, got %q", key, v)
		}
		c.RetentionDays = n
	case KeyRetentionBytes:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%s: want a number of bytes, got %q", key, v)
		}
		c.RetentionBytes = n
	default:
		set := c.setAnalysis
		if isOTLPKey(key) {
			set = c.setOTLP
		}
		if err := set(key, v); err != nil {
			return err
		}
	}
	if c.Sources == nil {
		c.Sources = map[string]Source{}
	}
	c.Sources[key] = src
	return nil
}

// Validate checks every setting.
func (c *Config) Validate() error {
	for _, k := range Keys {
		if err := c.check(k); err != nil {
			return err
		}
	}
	return nil
}

// check checks one setting.
func (c *Config) check(key string) error {
	switch key {
	case KeyAPIURL:
		if c.APIURL != "" {
			if err := ValidateURL(c.APIURL); err != nil {
				return fmt.Errorf("%s: %w", KeyAPIURL, err)
			}
		}
	case KeyAPIKey:
	case KeyBatchSize:
		if c.BatchSize < 1 || c.BatchSize > backend.MaxBatchEvents {
			return fmt.Errorf("%s: must be 1 to %d, got %d", KeyBatchSize, backend.MaxBatchEvents, c.BatchSize)
		}
	case KeyShipInterval:
		if c.ShipInterval < 100*time.Millisecond || c.ShipInterval > time.Hour {
			return fmt.Errorf("%s: must be between 100ms and 1h, got %s", KeyShipInterval, c.ShipInterval)
		}
	case KeyCaptureMode:
		switch c.CaptureMode {
		case CaptureFull, CaptureRedacted, CaptureMetadata:
		default:
			return fmt.Errorf("%s: must be full, redacted or metadata, got %q", KeyCaptureMode, c.CaptureMode)
		}
	case KeyRetentionDays:
		if c.RetentionDays < 1 {
			return fmt.Errorf("%s: must be at least 1, got %d", KeyRetentionDays, c.RetentionDays)
		}
	case KeyRetentionBytes:
		if c.RetentionBytes < 1<<20 {
			return fmt.Errorf("%s: must be at least 1 MiB, got %d", KeyRetentionBytes, c.RetentionBytes)
		}
	default:
		if isOTLPKey(key) {
			return c.checkOTLP(key)
		}
		return c.checkAnalysis(key)
	}
	return nil
}

// Retention is how the local store is bounded: by age in days and by size
// in bytes, 0 meaning no bound. A retention setting with a problem bounds
// nothing until it is fixed: a typo must not delete what the user meant to
// keep.
func (c *Config) Retention() (days int, bytes int64) {
	days, bytes = c.RetentionDays, c.RetentionBytes
	if c.problem(KeyRetentionDays) {
		days = 0
	}
	if c.problem(KeyRetentionBytes) {
		bytes = 0
	}
	return days, bytes
}

// ValidateURL checks an API base URL.
func ValidateURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %q", s)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an http(s) URL such as https://abc.execute-api.us-east-1.amazonaws.com, got %q", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must not carry a query or fragment: %q", s)
	}
	return nil
}

// ShippingEnabled reports whether an API is configured: events are shipped
// and activity/stats read the API.
func (c *Config) ShippingEnabled() bool { return c.APIURL != "" && c.APIKey != "" }

// Value returns key's value as text, the API key masked.
func (c *Config) Value(key string) string {
	switch key {
	case KeyAPIURL:
		return c.APIURL
	case KeyAPIKey:
		return MaskKey(c.APIKey)
	case KeyBatchSize:
		return strconv.Itoa(c.BatchSize)
	case KeyShipInterval:
		return c.ShipInterval.String()
	case KeyCaptureMode:
		return c.CaptureMode
	case KeyRetentionDays:
		return strconv.Itoa(c.RetentionDays)
	case KeyRetentionBytes:
		return strconv.FormatInt(c.RetentionBytes, 10)
	}
	if isOTLPKey(key) {
		return c.otlpValue(key)
	}
	return c.analysisValue(key)
}

// ToFile returns the settings that did not come from defaults, in file form.
// The API key is included unmasked: this is what init writes.
func (c *Config) ToFile() File {
	var f File
	set := func(k string) bool { return c.Sources[k] != SourceDefault && c.Sources[k] != "" }
	if set(KeyAPIURL) {
		f.APIURL = c.APIURL
	}
	if set(KeyAPIKey) {
		f.APIKey = c.APIKey
	}
	if set(KeyBatchSize) {
		f.BatchSize = c.BatchSize
	}
	if set(KeyShipInterval) {
		f.ShipInterval = c.ShipInterval.String()
	}
	if set(KeyCaptureMode) {
		f.CaptureMode = c.CaptureMode
	}
	if set(KeyRetentionDays) {
		f.RetentionDays = c.RetentionDays
	}
	if set(KeyRetentionBytes) {
		f.RetentionBytes = c.RetentionBytes
	}
	f.AnalysisFile = c.analysisFile()
	f.OTLPFile = c.otlpFile()
	return f
}

// MaskKey hides all of an API key but a short prefix and the last four
// characters: enough to tell keys apart, not enough to use one.
func MaskKey(k string) string {
	switch {
	case k == "":
		return ""
	case len(k) <= 12:
		return strings.Repeat("*", len(k))
	}
	prefix := 4
	if i := strings.IndexAny(k, "_-"); i >= 0 && i < 8 {
		prefix = i + 1
	}
	return k[:prefix] + strings.Repeat("*", 8) + k[len(k)-4:]
}
