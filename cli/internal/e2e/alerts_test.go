package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kilometers-ai/kilometers/cli/internal/alerts"
)

// TestPoisonedToolAlert holds alerts to their promise end to end: with no
// API and no OTLP endpoint, only a rule, the monitor's background shipper
// posts a signed alert for a poisoned tool while the session is still
// open, seconds after the tools/list reply; and nothing fires twice.
func TestPoisonedToolAlert(t *testing.T) {
	e := setupNoAPI(t)
	const secret = "e2e-hook-secret"
	var mu sync.Mutex
	var got []alerts.Alert
	arrived := make(chan struct{}, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get(alerts.SignatureHeader) != alerts.Sign(secret, b) {
			t.Errorf("bad signature %q", r.Header.Get(alerts.SignatureHeader))
		}
		var a alerts.Alert
		if err := json.Unmarshal(b, &a); err != nil {
			t.Errorf("alert body %s: %v", b, err)
		}
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
		arrived <- struct{}{}
	}))
	defer hook.Close()
	u := e.user(t, poisonEnv+"=1")
	if out, stderr, code := u.run(t, secret, "alerts", "add", "--on", "poisoning", "--webhook", hook.URL); code != 0 {
		t.Fatalf("alerts add: %d\n%s%s", code, out, stderr)
	}

	u.session(t, func(cs *mcp.ClientSession, _ *exec.Cmd) {
		listed := time.Now()
		if _, err := cs.ListTools(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		select {
		case <-arrived:
			t.Logf("alert %s after the tools/list reply", time.Since(listed).Round(time.Millisecond))
		case <-time.After(15 * time.Second):
			t.Fatal("no alert within 15s of the poisoned tools/list reply, with the session still open")
		}
		// A second listing of the same poisoned tool within the window:
		// quiet.
		if _, err := cs.ListTools(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	})
	awaitShippers(t, u.home)
	u.mustRun(t, "sync", "--background")
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].On != alerts.Poisoning || got[0].Tool != "add" || got[0].Text == "" {
		t.Errorf("alerts %+v, want one poisoning alert about add", got)
	}
}
