// Package alerts evaluates the user's local alert rules over recorded events
// and delivers what fires to webhooks.
//
// Rules live in <home>/alerts.json (mode 0600: it holds signing secrets).
// Evaluation runs in the background shipper, off the relay path, on a
// delivery cursor of its own in the store (store.Cursor "alerts"): each
// event is evaluated exactly once, soon after it is durable, whatever the
// API or an OTLP endpoint do. An alert that fires goes to an outbox in the
// cursor's state before the events are acknowledged, then is posted, signed
// with HMAC-SHA256, with retries and backoff; one not delivered stays in
// the outbox for the next shipper. docs/alerts.md describes the rules and
// the webhook body.
package alerts

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	shalerts "github.com/kilometers-ai/kilometers/shared/alerts"
)

// The rule kinds and their defaults are shared with the backend's team
// rules (package shared/alerts owns them).
type Kind = shalerts.Kind

// The rule kinds.
const (
	Poisoning         = shalerts.Poisoning
	DefinitionChanged = shalerts.DefinitionChanged
	HighRisk          = shalerts.HighRisk
	NewServer         = shalerts.NewServer
	NewTool           = shalerts.NewTool
	FailureRate       = shalerts.FailureRate
	LatencyP95        = shalerts.LatencyP95
)

// Kinds lists every kind, for help and validation.
var Kinds = shalerts.Kinds

// DefaultWindow: see shalerts.DefaultWindow.
const DefaultWindow = shalerts.DefaultWindow

const minWindowCalls = shalerts.MinWindowCalls

// Rule is one alert rule.
type Rule struct {
	ID        string        `json:"id"`
	On        Kind          `json:"on"`
	Threshold float64       `json:"threshold,omitempty"`
	Window    time.Duration `json:"window"`
	Webhook   string        `json:"webhook"`
	// Secret signs the body; SecretEnv names a variable that holds it
	// instead (read when delivering).
	Secret    string    `json:"secret,omitempty"`
	SecretEnv string    `json:"secret_env,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// threshold is the rule's threshold or the kind's default.
func (r Rule) threshold() float64 { return shalerts.Threshold(r.On, r.Threshold) }

func (r Rule) window() time.Duration { return shalerts.Window(r.Window) }

// Validate checks a rule as `alerts add` would take it.
func (r Rule) Validate() error {
	if err := shalerts.ValidateRule(r.On, r.Threshold, r.Window, r.Webhook); err != nil {
		return fmt.Errorf("--%w", err)
	}
	if r.Secret == "" && r.SecretEnv == "" {
		return errors.New("a signing secret is required: pipe it on stdin or name a variable with --secret-env")
	}
	return nil
}

// signingSecret is the secret the rule signs with, read from its variable
// when it names one.
func (r Rule) signingSecret(getenv func(string) string) (string, error) {
	if r.SecretEnv != "" {
		if v := getenv(r.SecretEnv); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("rule %s: $%s, its signing secret, is not set", r.ID, r.SecretEnv)
	}
	return r.Secret, nil
}

// FileName is the rules file in the Kilometers home.
const FileName = "alerts.json"

type rulesFile struct {
	Rules []Rule `json:"rules"`
}

// Path is the rules file of a home.
func Path(home string) string { return filepath.Join(home, FileName) }

// Configured reports whether home has any rule: what makes a monitor launch
// background shippers with no API or OTLP endpoint configured. One small
// file read at the monitor's start.
func Configured(home string) bool {
	rules, err := Load(home)
	return err == nil && len(rules) > 0
}

// Load reads the rules of home; none when there is no file.
func Load(home string) ([]Rule, error) {
	b, err := os.ReadFile(Path(home))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read alert rules: %w", err)
	}
	var f rulesFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse %s: %w", Path(home), err)
	}
	sort.Slice(f.Rules, func(i, j int) bool { return f.Rules[i].CreatedAt.Before(f.Rules[j].CreatedAt) })
	return f.Rules, nil
}

// Save writes the rules of home atomically, mode 0600.
func Save(home string, rules []Rule) error {
	b, err := json.MarshalIndent(rulesFile{Rules: rules}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode alert rules: %w", err)
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("save alert rules: %w", err)
	}
	tmp, err := os.CreateTemp(home, ".alerts-*.json")
	if err != nil {
		return fmt.Errorf("save alert rules: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Chmod(0o600)
		if errors.Is(err, errors.ErrUnsupported) {
			err = nil
		}
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), Path(home))
	}
	if err != nil {
		return fmt.Errorf("save alert rules: %w", err)
	}
	return nil
}

// NewID returns a short random rule id.
func NewID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "al_" + hex.EncodeToString(b)
}
