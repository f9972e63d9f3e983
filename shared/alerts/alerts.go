// Package alerts owns what the local rules (cli/internal/alerts) and the
// team rules (the backend) share: the rule kinds and their thresholds, the
// per-event conditions, the webhook body and its signature, and one signed
// post with retries. docs/alerts.md describes the rules and the body.
package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/event"
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

// MaxWindow bounds a rule's window.
const MaxWindow = 7 * 24 * time.Hour

// MinWindowCalls is the fewest calls in a window that a failure rate or a
// p95 is judged on: one failed call out of one is not a rate.
const MinWindowCalls = 3

// Windowed reports whether k is judged over a window of calls (on a
// schedule in the backend) rather than on one event.
func (k Kind) Windowed() bool { return k == FailureRate || k == LatencyP95 }

// Known reports whether k is one of Kinds.
func (k Kind) Known() bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// Threshold is t, or the kind's default when t is zero.
func Threshold(k Kind, t float64) float64 {
	if t > 0 {
		return t
	}
	switch k {
	case HighRisk:
		return 70
	case FailureRate:
		return 0.5
	case LatencyP95:
		return 1000
	}
	return 0
}

// Window is w, or DefaultWindow when w is zero.
func Window(w time.Duration) time.Duration {
	if w > 0 {
		return w
	}
	return DefaultWindow
}

// ValidateRule checks a rule's kind, threshold, window and webhook; the
// errors name the fields by name (the CLI's flags and the API's JSON keys
// are the same words).
func ValidateRule(k Kind, threshold float64, window time.Duration, webhook string) error {
	if !k.Known() {
		return fmt.Errorf("on: unknown rule %q; one of %s", k, KindList())
	}
	switch {
	case threshold < 0:
		return errors.New("threshold: must not be negative")
	case k == FailureRate && threshold > 1:
		return fmt.Errorf("threshold: a failure rate is a fraction from 0 to 1, got %g", threshold)
	case k == HighRisk && threshold > 100:
		return fmt.Errorf("threshold: a risk score is 0 to 100, got %g", threshold)
	case k == LatencyP95 && threshold > 24*3600*1000:
		return fmt.Errorf("threshold: a latency is up to a day in milliseconds, got %g", threshold)
	case threshold > 0 && k != HighRisk && !k.Windowed():
		return fmt.Errorf("threshold: rule %s takes none", k)
	case window < 0 || window > MaxWindow:
		return fmt.Errorf("window: must be up to 7 days, got %s", window)
	}
	u, err := url.Parse(webhook)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(webhook) > 2048 {
		return fmt.Errorf("webhook: want an http(s) URL, got %q", webhook)
	}
	return nil
}

// KindList is Kinds for messages.
func KindList() string {
	var s []string
	for _, k := range Kinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

// Alert is what a webhook receives.
type Alert struct {
	// ID is the same whenever the same events fire the same rule: a
	// receiver may drop one it already has.
	ID     string `json:"id"`
	RuleID string `json:"rule_id"`
	On     Kind   `json:"on"`
	// Text is the alert for people, as a Slack incoming webhook shows it.
	Text string `json:"text"`
	// Condition is what the rule fired about: a server, or server/tool.
	Condition string   `json:"condition"`
	Server    string   `json:"server,omitempty"`
	Tool      string   `json:"tool,omitempty"`
	SessionID string   `json:"session_id,omitempty"`
	EventIDs  []string `json:"event_ids,omitempty"`
	// Value is the measured value of a threshold rule (a score, a rate, a
	// p95 in milliseconds); Calls the calls in its window.
	Value     float64   `json:"value,omitempty"`
	Threshold float64   `json:"threshold,omitempty"`
	Window    string    `json:"window,omitempty"`
	Calls     int       `json:"calls,omitempty"`
	Reasons   []string  `json:"reasons,omitempty"`
	At        time.Time `json:"at"`
	Test      bool      `json:"test,omitempty"`
}

// Title prefixes an alert's text.
func Title(k Kind, text string) string { return "*Kilometers alert* (" + string(k) + "): " + text }

// AlertID is the id of the alert rule ruleID fires about condition on the
// event eventID (or a window's start).
func AlertID(ruleID, condition, eventID string) string {
	sum := sha256.Sum256([]byte(ruleID + "\x00" + condition + "\x00" + eventID))
	return "alert_" + hex.EncodeToString(sum[:12])
}

// Condition is one thing an event may fire a per-event rule about. Score is
// the event's risk score for HighRisk (compared with a rule's threshold).
type Condition struct {
	Kind      Kind
	Condition string
	Tool      string
	Score     float64
	Text      string
	Reasons   []string
}

// EventConditions are the per-event conditions of e (recorded by server):
// poisoning and definition changes from its risk reasons, a call's risk
// score, and the tools it shows (for NewTool; NewServer is the server's
// own). Whether NewServer and NewTool are new is for the caller's memory to
// say; the text of each is already written.
func EventConditions(e *event.Event, server string) []Condition {
	var out []Condition
	if server != "" {
		out = append(out, Condition{Kind: NewServer, Condition: server,
			Text: fmt.Sprintf("New MCP server `%s` seen for the first time.", server)})
	}
	for _, tool := range ToolsOf(e) {
		out = append(out, Condition{Kind: NewTool, Condition: server + "/" + tool, Tool: tool,
			Text: fmt.Sprintf("New tool `%s` of server `%s` seen for the first time.", tool, server)})
	}
	if e.Risk == nil {
		return out
	}
	for _, reason := range e.Risk.Reasons {
		if tool, ok := strings.CutPrefix(reason, analysis.ReasonToolPoisoning); ok {
			out = append(out, Condition{Kind: Poisoning, Condition: server + "/" + tool, Tool: tool, Reasons: e.Risk.Reasons,
				Text: fmt.Sprintf("Tool poisoning: the description of tool `%s` of server `%s` hides instructions for the model.", tool, server)})
		}
		if tool, ok := strings.CutPrefix(reason, analysis.ReasonDefinitionChanged); ok {
			out = append(out, Condition{Kind: DefinitionChanged, Condition: server + "/" + tool, Tool: tool, Reasons: e.Risk.Reasons,
				Text: fmt.Sprintf("Tool definition changed: tool `%s` of server `%s` is not what it was when first seen.", tool, server)})
		}
	}
	if e.Method == "tools/call" {
		out = append(out, Condition{Kind: HighRisk, Condition: server + "/" + e.Tool, Tool: e.Tool,
			Score: float64(e.Risk.Score), Reasons: e.Risk.Reasons,
			Text: fmt.Sprintf("High-risk call of tool `%s` of server `%s`: score %d (%s).", e.Tool, server, e.Risk.Score, strings.Join(e.Risk.Reasons, ", "))})
	}
	return out
}

// FailureText and LatencyText are the texts of the window rules.
func FailureText(server, tool string, failed, calls int, window time.Duration, rate, threshold float64) string {
	return fmt.Sprintf("Tool `%s` of server `%s` failed %d of %d calls in %s (%.0f%%, threshold %.0f%%).", tool, server, failed, calls, window, 100*rate, 100*threshold)
}

// LatencyText: see FailureText.
func LatencyText(server, tool string, p95 float64, calls int, window time.Duration, threshold float64) string {
	return fmt.Sprintf("Tool `%s` of server `%s` is slow: p95 %.0f ms over %d calls in %s (threshold %.0f ms).", tool, server, p95, calls, window, threshold)
}

// ToolsOf are the tools an event shows: the tool of a call, the tools of a
// tools/list reply.
func ToolsOf(e *event.Event) []string {
	if e.Kind == event.KindRequest && e.Method == "tools/call" && e.Tool != "" {
		return []string{e.Tool}
	}
	if e.Kind != event.KindResponse || e.Method != "tools/list" || len(e.Payload) == 0 {
		return nil
	}
	var p struct {
		Result struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		} `json:"result"`
	}
	if json.Unmarshal(e.Payload, &p) != nil {
		return nil
	}
	var out []string
	for _, t := range p.Result.Tools {
		// A name is the client's text: cleaned like every recorded name
		// (no NUL, valid UTF-8, bounded), so the backend can store it.
		if name := event.CleanText(t.Name, event.MaxNameLen); name != "" {
			out = append(out, name)
		}
		if len(out) == MaxListedTools {
			break
		}
	}
	return out
}

// MaxListedTools bounds the tools of one tools/list reply that the
// new_tool rule looks at.
const MaxListedTools = 1000

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body,
// keyed with the rule's secret.
const SignatureHeader = "X-Kilometers-Signature"

// Sign returns the SignatureHeader value of body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// PostTimeout bounds one post.
const PostTimeout = 10 * time.Second

// ErrRefused is a webhook's 4xx (or a URL it cannot be): sending the alert
// again cannot help.
var ErrRefused = errors.New("webhook refused the alert")

// Post sends body once, signed with secret. A 2xx is nil; 5xx, 408, 429 and
// network errors are worth a retry; anything else wraps ErrRefused.
func Post(ctx context.Context, client *http.Client, userAgent, webhook, secret string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, PostTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhook, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(SignatureHeader, Sign(secret, body))
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post alert: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("post alert: webhook answered HTTP %d", resp.StatusCode)
	}
	return fmt.Errorf("%w: HTTP %d", ErrRefused, resp.StatusCode)
}

// Backoff is the wait before retry n (1-based) of a delivery: first, doubling.
func Backoff(first time.Duration, n int) time.Duration {
	return first << min(n-1, 16)
}

// NewClient is the HTTP client a server posts webhooks with: it refuses to
// connect to link-local, multicast and unspecified addresses, so a rule's
// webhook cannot reach a cloud metadata endpoint (169.254.169.254) from
// inside the backend. Loopback and private addresses stay allowed: a
// self-hosted backend may post to a receiver beside it.
func NewClient() *http.Client {
	d := &net.Dialer{Timeout: PostTimeout, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("webhook address %q: %w", host, err)
		}
		ip = ip.Unmap()
		if ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || ip.IsInterfaceLocalMulticast() {
			return fmt.Errorf("%w: webhook address %s is link-local, multicast or unspecified", ErrRefused, ip)
		}
		return nil
	}}
	return &http.Client{
		Timeout: PostTimeout,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         d.DialContext,
			TLSHandshakeTimeout: PostTimeout,
			MaxIdleConns:        10,
			IdleConnTimeout:     time.Minute,
		},
		// A redirect could lead anywhere; a webhook answers where it is.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
