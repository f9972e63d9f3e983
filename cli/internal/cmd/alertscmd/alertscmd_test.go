package alertscmd

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/alerts"
	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
)

type env struct {
	home string
	vars map[string]string
}

func (e *env) run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	f := &cmdutil.Factory{IO: &cmdutil.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &out},
		Now: func() time.Time { return time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) }, Getenv: func(k string) string { return e.vars[k] }}
	f.Home = func() (string, error) { return e.home, nil }
	cmd := NewCmd(f)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.Execute()
	return out.String(), err
}

func TestAddListTestRemove(t *testing.T) {
	var bodies [][]byte
	var sigs []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies, sigs = append(bodies, b), append(sigs, r.Header.Get(alerts.SignatureHeader))
	}))
	defer hook.Close()
	e := &env{home: t.TempDir(), vars: map[string]string{"HOOK_SECRET": "from-env"}}

	out, err := e.run(t, "s3cret-value\n", "add", "--on", "poisoning", "--webhook", hook.URL, "--json")
	if err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	var added publicRule
	if err := json.Unmarshal([]byte(out), &added); err != nil || added.ID == "" || added.On != alerts.Poisoning || added.Window != "5m0s" {
		t.Fatalf("add --json = %s (%v)", out, err)
	}
	if _, err := e.run(t, "", "add", "--on", "failure_rate", "--threshold", "0.25", "--window", "10m", "--webhook", hook.URL, "--secret-env", "HOOK_SECRET"); err != nil {
		t.Fatal(err)
	}
	out, err = e.run(t, "", "list")
	if err != nil || !strings.Contains(out, added.ID) || !strings.Contains(out, "failure_rate") || !strings.Contains(out, "$HOOK_SECRET") {
		t.Errorf("list = %q, %v", out, err)
	}
	if strings.Contains(out, "s3cret-value") {
		t.Errorf("list printed a secret:\n%s", out)
	}
	if out, _ := e.run(t, "", "list", "--json"); strings.Contains(out, "s3cret-value") {
		t.Errorf("list --json printed a secret:\n%s", out)
	}

	if out, err := e.run(t, "", "test", added.ID); err != nil || !strings.Contains(out, "delivered") {
		t.Fatalf("test = %q, %v", out, err)
	}
	if len(bodies) != 1 || sigs[0] != alerts.Sign("s3cret-value", bodies[0]) {
		t.Fatalf("test alert: %d bodies, signature %v", len(bodies), sigs)
	}
	var a alerts.Alert
	if err := json.Unmarshal(bodies[0], &a); err != nil || !a.Test || a.RuleID != added.ID || a.Text == "" {
		t.Errorf("test alert %s (%v)", bodies[0], err)
	}

	if out, err := e.run(t, "", "remove", added.ID); err != nil || !strings.Contains(out, "Removed") {
		t.Fatalf("remove = %q, %v", out, err)
	}
	rules, err := alerts.Load(e.home)
	if err != nil || len(rules) != 1 || rules[0].On != alerts.FailureRate || rules[0].Threshold != 0.25 || rules[0].Window != 10*time.Minute {
		t.Errorf("rules after remove = %+v, %v", rules, err)
	}
	if _, err := e.run(t, "", "remove", added.ID); err == nil {
		t.Error("removing an unknown rule succeeded")
	}
	if _, err := e.run(t, "", "test", "al_nope"); err == nil {
		t.Error("testing an unknown rule succeeded")
	}
}

func TestAddRefusesBadInput(t *testing.T) {
	e := &env{home: t.TempDir()}
	for name, c := range map[string]struct {
		stdin string
		args  []string
	}{
		"unknown rule":  {"s", []string{"add", "--on", "nope", "--webhook", "https://x.example"}},
		"no secret":     {"", []string{"add", "--on", "poisoning", "--webhook", "https://x.example"}},
		"bad webhook":   {"s", []string{"add", "--on", "poisoning", "--webhook", "x.example"}},
		"bad threshold": {"s", []string{"add", "--on", "failure_rate", "--threshold", "3", "--webhook", "https://x.example"}},
		"no webhook":    {"s", []string{"add", "--on", "poisoning"}},
	} {
		if out, err := e.run(t, c.stdin, c.args...); err == nil {
			t.Errorf("%s: accepted\n%s", name, out)
		}
	}
	if rules, _ := alerts.Load(e.home); len(rules) != 0 {
		t.Errorf("refused rules were saved: %+v", rules)
	}
}

func TestTestReportsFailure(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	defer hook.Close()
	e := &env{home: t.TempDir()}
	out, err := e.run(t, "s", "add", "--on", "new_server", "--webhook", hook.URL, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r publicRule
	json.Unmarshal([]byte(out), &r)
	if _, err := e.run(t, "", "test", r.ID); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("test against a 403 webhook = %v", err)
	}
}
