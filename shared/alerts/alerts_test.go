package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kilometers-ai/kilometers/shared/analysis"
	"github.com/kilometers-ai/kilometers/shared/event"
)

func TestValidateRule(t *testing.T) {
	for _, c := range []struct {
		name      string
		kind      Kind
		threshold float64
		window    time.Duration
		webhook   string
		want      string // "" for valid
	}{
		{"poisoning", Poisoning, 0, 0, "https://h.example/x", ""},
		{"high risk 90", HighRisk, 90, time.Hour, "http://127.0.0.1:9/", ""},
		{"unknown", "all", 0, 0, "https://h.example", "on: unknown rule"},
		{"negative", HighRisk, -1, 0, "https://h.example", "threshold: must not be negative"},
		{"rate over 1", FailureRate, 1.5, 0, "https://h.example", "fraction"},
		{"score over 100", HighRisk, 101, 0, "https://h.example", "0 to 100"},
		{"latency over a day", LatencyP95, 1e12, 0, "https://h.example", "up to a day"},
		{"threshold not taken", NewTool, 1, 0, "https://h.example", "takes none"},
		{"window too long", Poisoning, 0, 8 * 24 * time.Hour, "https://h.example", "window"},
		{"negative window", Poisoning, 0, -time.Second, "https://h.example", "window"},
		{"no scheme", Poisoning, 0, 0, "h.example/x", "webhook"},
		{"file", Poisoning, 0, 0, "file:///etc/passwd", "webhook"},
		{"no host", Poisoning, 0, 0, "https:///x", "webhook"},
		{"too long", Poisoning, 0, 0, "https://h.example/" + strings.Repeat("a", 3000), "webhook"},
	} {
		err := ValidateRule(c.kind, c.threshold, c.window, c.webhook)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestEventConditions(t *testing.T) {
	list := event.Event{Kind: event.KindResponse, Method: "tools/list",
		Risk:    &event.Risk{Score: 90, Reasons: []string{analysis.ReasonToolPoisoning + "evil", analysis.ReasonDefinitionChanged + "shifty"}},
		Payload: json.RawMessage(`{"result":{"tools":[{"name":"evil"},{"name":""},{"name":"shifty"}]}}`)}
	call := event.Event{Kind: event.KindRequest, Method: "tools/call", Tool: "evil", Risk: &event.Risk{Score: 75, Reasons: []string{"sensitive_path"}}}
	quiet := event.Event{Kind: event.KindResponse, Method: "tools/list", Payload: json.RawMessage(`not json`)}
	for _, c := range []struct {
		name string
		e    event.Event
		want []string
	}{
		{"list", list, []string{"new_server fs", "new_tool fs/evil", "new_tool fs/shifty", "poisoning fs/evil", "definition_changed fs/shifty"}},
		{"call", call, []string{"new_server fs", "new_tool fs/evil", "high_risk fs/evil"}},
		{"damaged list", quiet, []string{"new_server fs"}},
	} {
		var got []string
		for _, x := range EventConditions(&c.e, "fs") {
			got = append(got, string(x.Kind)+" "+x.Condition)
			if x.Text == "" {
				t.Errorf("%s: %s has no text", c.name, x.Kind)
			}
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	hostile := event.Event{Kind: event.KindResponse, Method: "tools/list",
		Payload: json.RawMessage(`{"result":{"tools":[{"name":"a\u0000b"},{"name":"\ud800x"}]}}`)}
	for _, x := range EventConditions(&hostile, "fs") {
		if strings.ContainsRune(x.Condition, 0) || !utf8.ValidString(x.Condition) {
			t.Errorf("condition %q is not clean text", x.Condition)
		}
	}
	if got := EventConditions(&call, ""); len(got) != 2 || got[1].Score != 75 {
		t.Errorf("call without a server: %+v", got)
	}
}

func TestSign(t *testing.T) {
	// RFC 4231 test case 2.
	if got := Sign("Jefe", []byte("what do ya want for nothing?")); got != "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" {
		t.Errorf("Sign = %s", got)
	}
}

func TestNewClientRefusesMetadataAddresses(t *testing.T) {
	for _, url := range []string{"http://169.254.169.254/latest/meta-data/", "http://[fe80::1]:80/", "http://0.0.0.0:80/"} {
		err := Post(context.Background(), NewClient(), "test", url, "s", []byte(`{}`))
		if !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v, want refused", url, err)
		}
	}
}
