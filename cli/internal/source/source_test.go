package source

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

const sid = "0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31"

// localHome is a home whose store holds one event.
func localHome(t *testing.T) (string, event.Event) {
	t.Helper()
	ctx := context.Background()
	home := t.TempDir()
	st, err := store.Open(ctx, home, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.NewWriter(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	e := event.Event{ID: "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10", SessionID: sid, Seq: 1, TS: time.Now().UTC(),
		Direction: event.ClientToServer, Kind: event.KindRequest, Server: "local", RPCID: "1", Method: "ping", Size: 1}
	if err := w.Record(ctx, []event.Event{e}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return home, e
}

func withAPI(home, url string) *config.Config {
	c := config.Defaults(home)
	c.APIURL, c.APIKey = url, "km_test"
	return c
}

// closedURL is an address where nothing listens.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestOpenChooses(t *testing.T) {
	ctx := context.Background()
	home, _ := localHome(t)
	for _, tt := range []struct {
		name   string
		c      *config.Config
		local  bool
		remote bool
	}{
		{"no API", config.Defaults(home), false, false},
		{"API", withAPI(home, "http://127.0.0.1:1"), false, true},
		{"API but --local", withAPI(home, "http://127.0.0.1:1"), true, false},
	} {
		src, err := Open(ctx, tt.c, Options{Local: tt.local})
		if err != nil {
			t.Fatal(err)
		}
		if IsRemote(src) != tt.remote {
			t.Errorf("%s: remote = %v", tt.name, IsRemote(src))
		}
		if _, isStore := src.(*store.Store); isStore == tt.remote {
			t.Errorf("%s: source %T", tt.name, src)
		}
	}
}

func TestUnreachableFallsBackOnce(t *testing.T) {
	ctx := context.Background()
	home, local := localHome(t)
	var notice bytes.Buffer
	src, err := Open(ctx, withAPI(home, closedURL(t)), Options{ErrOut: &notice, ReachWithin: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		page, err := src.Activity(ctx, activity.Query{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) != 1 || page.Events[0].ID != local.ID {
			t.Fatalf("page = %+v, want the local event", page)
		}
	}
	if _, err := src.Sessions(ctx, activity.SessionQuery{}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(notice.String(), "unreachable"); n != 1 || !strings.Contains(notice.String(), "local store") {
		t.Errorf("notice %q, want one", notice.String())
	}
	if IsRemote(src) {
		t.Error("still remote after falling back")
	}
}

// TestSilentAPIFallsBack: an address that accepts nothing and refuses
// nothing (a dead host) falls back when the wait is over, not after the
// client's retries.
func TestSilentAPIFallsBack(t *testing.T) {
	ctx := context.Background()
	home, _ := localHome(t)
	var notice bytes.Buffer
	dialed := make(chan struct{})
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		close(dialed)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	client := apiclient.New("http://api.invalid", "k", apiclient.Options{HTTPClient: &http.Client{Transport: tr}})
	src, err := Open(ctx, withAPI(home, "http://api.invalid"), Options{ErrOut: &notice, ReachWithin: 50 * time.Millisecond, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Stats(ctx, statsQuery()); err != nil {
		t.Fatal(err)
	}
	<-dialed
	if !strings.Contains(notice.String(), "no connection within 50ms") {
		t.Errorf("notice %q", notice.String())
	}
}

func TestAnswersAreNotUnreachability(t *testing.T) {
	ctx := context.Background()
	home, _ := localHome(t)
	status := http.StatusUnauthorized
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == http.StatusOK {
			json.NewEncoder(w).Encode(activity.Page{Events: []event.Event{{ID: "remote"}}})
			return
		}
		w.Write([]byte(`{"error":{"code":"unauthorized","message":"bad key"}}`))
	}))
	defer srv.Close()
	var notice bytes.Buffer
	client := apiclient.New(srv.URL, "k", apiclient.Options{RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	src, err := Open(ctx, withAPI(home, srv.URL), Options{ErrOut: &notice, ReachWithin: time.Second, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Activity(ctx, activity.Query{})
	if e, ok := apiclient.AsError(err); !ok || e.Status != http.StatusUnauthorized {
		t.Fatalf("err = %v, want the API's 401", err)
	}
	status = http.StatusOK
	page, err := src.Activity(ctx, activity.Query{})
	if err != nil || len(page.Events) != 1 || page.Events[0].ID != "remote" {
		t.Fatalf("page = %+v, %v", page, err)
	}
	// Once the API was reached, losing it is an error, not a silent
	// switch to other data.
	srv.Close()
	if _, err := src.Activity(ctx, activity.Query{}); err == nil {
		t.Error("no error after the API went away")
	}
	if notice.Len() != 0 || !IsRemote(src) {
		t.Errorf("notice %q, remote %v", notice.String(), IsRemote(src))
	}
}

func statsQuery() stats.Query {
	now := time.Now()
	return stats.Query{Since: now.Add(-time.Hour), Until: now}
}
