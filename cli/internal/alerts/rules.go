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
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Kind is what a rule watches for.
type Kind string

// The rule kinds.
const (
	// Poisoning fires on a tools/list reply with a tool whose description
	// hides instructions.
	Poisoning Kind = "poisoning"
	// DefinitionChanged fires when a tool's definition differs from the
	// one seen before (a rug pull).
	DefinitionChanged Kind = "definition_changed"
	// HighRisk fires on a call whose risk score reaches the threshold
	// (default: the high level, 70).
	HighRisk Kind = "high_risk"
	// NewServer and NewTool fire the first time a server, or a tool of a
	// server, is seen.
	NewServer Kind = "new_server"
	NewTool   Kind = "new_tool"
	// FailureRate fires when a tool's share of failed calls within the
	// window reaches the threshold (a fraction, default 0.5).
	FailureRate Kind = "failure_rate"
	// LatencyP95 fires when a tool's p95 latency within the window reaches
	// the threshold (milliseconds, default 1000).
	LatencyP95 Kind = "latency_p95"
)

// Kinds lists every kind, for help and validation.
var Kinds = []Kind{Poisoning, DefinitionChanged, HighRisk, NewServer, NewTool, FailureRate, LatencyP95}

// DefaultWindow is a rule's window when none is given: the span of window
// rules, and for every rule the least time between two alerts of the same
// condition.
const DefaultWindow = 5 * time.Minute

// minWindowCalls is the fewest calls in a window that a failure rate or a
// p95 is judged on: one failed call out of one is not a rate.
const minWindowCalls = 3

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
func (r Rule) threshold() float64 {
	if r.Threshold > 0 {
		return r.Threshold
	}
	switch r.On {
	case HighRisk:
		return 70
	case FailureRate:
		return 0.5
	case LatencyP95:
		return 1000
	}
	return 0
}

func (r Rule) window() time.Duration {
	if r.Window > 0 {
		return r.Window
	}
	return DefaultWindow
}

// Validate checks a rule as `alerts add` would take it.
func (r Rule) Validate() error {
	known := false
	for _, k := range Kinds {
		known = known || k == r.On
	}
	if !known {
		return fmt.Errorf("--on: unknown rule %q; one of %s", r.On, kindList())
	}
	switch {
	case r.Threshold < 0:
		return errors.New("--threshold: must not be negative")
	case r.On == FailureRate && r.Threshold > 1:
		return fmt.Errorf("--threshold: a failure rate is a fraction from 0 to 1, got %g", r.Threshold)
	case r.On == HighRisk && r.Threshold > 100:
		return fmt.Errorf("--threshold: a risk score is 0 to 100, got %g", r.Threshold)
	case r.Threshold > 0 && r.On != HighRisk && r.On != FailureRate && r.On != LatencyP95:
		return fmt.Errorf("--threshold: rule %s takes none", r.On)
	case r.Window < 0 || r.Window > 7*24*time.Hour:
		return fmt.Errorf("--window: must be up to 7 days, got %s", r.Window)
	}
	u, err := url.Parse(r.Webhook)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("--webhook: want an http(s) URL, got %q", r.Webhook)
	}
	if r.Secret == "" && r.SecretEnv == "" {
		return errors.New("a signing secret is required: pipe it on stdin or name a variable with --secret-env")
	}
	return nil
}

func kindList() string {
	var s []string
	for _, k := range Kinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
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
