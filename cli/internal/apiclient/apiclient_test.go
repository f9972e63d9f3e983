package apiclient

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
)

func TestIngestRetriesAndDecodes(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer k1" || r.Header.Get("Content-Encoding") != "gzip" || r.URL.Path != "/api/events/batch" {
			t.Errorf("request %s %v", r.URL, r.Header)
		}
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		var b event.Batch
		if err := json.NewDecoder(zr).Decode(&b); err != nil || len(b.Events) != 1 {
			t.Errorf("body: %v %+v", err, b)
		}
		switch n {
		case 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			w.WriteHeader(http.StatusBadGateway)
		default:
			json.NewEncoder(w).Encode(backend.IngestResult{Accepted: 1})
		}
	}))
	defer srv.Close()
	c := New(srv.URL+"/", "k1", Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond})
	r, err := c.Ingest(context.Background(), &event.Batch{Events: []event.Event{{ID: "x"}}})
	if err != nil || r.Accepted != 1 || calls.Load() != 3 {
		t.Fatalf("Ingest = %+v, %v after %d calls", r, err, calls.Load())
	}
}

func TestErrorShape(t *testing.T) {
	for _, c := range []struct {
		status                 int
		rejected, misconfigued bool
	}{
		{400, true, false}, {413, true, false}, {401, false, true}, {404, false, true}, {503, false, false},
	} {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(c.status)
			w.Write([]byte(`{"error":{"code":"invalid","message":"events[0].id: must be a UUID"}}`))
		}))
		cl := New(srv.URL, "k", Options{RetryMax: 2, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
		_, err := cl.Ingest(context.Background(), &event.Batch{})
		srv.Close()
		e, ok := AsError(err)
		if !ok {
			t.Fatalf("%d: err = %v, want *Error", c.status, err)
		}
		if e.Status != c.status || e.Code != backend.EINVALID || e.Message != "events[0].id: must be a UUID" {
			t.Errorf("%d: decoded %+v", c.status, e)
		}
		if e.Rejected() != c.rejected || e.Misconfigured() != c.misconfigued {
			t.Errorf("%d: rejected %v misconfigured %v", c.status, e.Rejected(), e.Misconfigured())
		}
		wantCalls := int32(1)
		if e.Retryable() {
			wantCalls = 3
		}
		if calls.Load() != wantCalls {
			t.Errorf("%d: %d calls, want %d", c.status, calls.Load(), wantCalls)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := BackoffPolicy(time.Minute)
	resp := &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"7"}}}
	if d := b(time.Second, 30*time.Second, 0, resp); d != 7*time.Second {
		t.Errorf("Retry-After 7 = %v", d)
	}
	resp.Header.Set("Retry-After", "100000")
	if d := b(time.Second, 30*time.Second, 0, resp); d != time.Minute {
		t.Errorf("huge Retry-After = %v, want cap", d)
	}
	for attempt := range 10 {
		d := Jitter(time.Second, 30*time.Second, attempt)
		ceil := min(time.Second<<attempt, 30*time.Second)
		if d < ceil/2 || d > ceil {
			t.Errorf("attempt %d: %v outside [%v, %v]", attempt, d, ceil/2, ceil)
		}
	}
	if d, ok := RetryAfter(time.Unix(100, 0).UTC().Format(http.TimeFormat), time.Unix(90, 0)); !ok || d != 10*time.Second {
		t.Errorf("date Retry-After = %v %v", d, ok)
	}
}

func TestSessionsAndCall(t *testing.T) {
	sid := "0196f1c2-6e00-7a55-8c1d-2f4b6a8e0c31"
	req := event.Event{ID: "0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10", SessionID: sid, Kind: event.KindRequest}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/sessions":
			if got := r.URL.Query(); got.Get("server") != "fs" || got.Get("limit") != "5" {
				t.Errorf("sessions query %v", got)
			}
			json.NewEncoder(w).Encode(activity.SessionPage{Sessions: []activity.SessionRow{{Session: event.Session{ID: sid}, Calls: 2}}, NextCursor: "next"})
		case "/api/events/" + req.ID:
			json.NewEncoder(w).Encode(activity.Call{Request: &req})
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":{"code":"not_found","message":"no such event"}}`))
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "k", Options{})
	ctx := context.Background()
	page, err := c.Sessions(ctx, activity.SessionQuery{Server: "fs", Limit: 5})
	if err != nil || len(page.Sessions) != 1 || page.Sessions[0].Calls != 2 || page.NextCursor != "next" {
		t.Fatalf("Sessions = %+v, %v", page, err)
	}
	call, err := c.Call(ctx, req.ID)
	if err != nil || call.Request == nil || call.Request.ID != req.ID || call.Response != nil {
		t.Fatalf("Call = %+v, %v", call, err)
	}
	_, err = c.Call(ctx, "0196f1c2-7a3b-7c11-9d2e-000000000000")
	if !errors.Is(err, activity.ErrNotFound) || !strings.Contains(err.Error(), "no such event") {
		t.Errorf("unknown id: %v, want ErrNotFound with the API's message", err)
	}
}
