package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kilometers-ai/kilometers/shared/activity"

	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/httpapi/apitest"
)

// FuzzIngest posts arbitrary bodies, plain and gzipped, to both ingest
// routes. Whatever the input, the answer is 200 with a validated batch
// stored, or a JSON error with a client status; never a 500, never a
// partial store.
func FuzzIngest(f *testing.F) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	good := apitest.MustJSON(f, apitest.SampleBatch(now, 1))
	one := apitest.MustJSON(f, apitest.SampleBatch(now, 1).Events[0])
	for _, seed := range [][]byte{
		good, one, good[:len(good)/2], []byte(`{}`), []byte(`{"events":[]}`), []byte(`{"events":null,"sessions":[{}]}`),
		[]byte(`{"events":[{"id":1}]}`), []byte(`{"events":[{"ts":"2026-13-01T00:00:00Z"}]}`), []byte("\x1f\x8b\x08"),
		[]byte(`nul`), []byte(`"str"`), []byte(`{"events":[` + string(one) + `]}{`), apitest.Gzip(f, good),
	} {
		f.Add(seed, false, false)
		f.Add(seed, true, true)
	}
	// The classes of the hostile-input suite: depth, Unicode, numeric
	// extremes (the deepest bodies are left to that suite).
	for _, c := range hostileIngestCases() {
		if len(c.body) < 64<<10 {
			f.Add([]byte(c.body), c.gzip, false)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, gz, single bool) {
		store := &fakeStore{}
		h := httpapi.New(httpapi.Config{Store: store, Now: func() time.Time { return now }})
		path := "/api/events/batch"
		if single {
			path = "/api/events"
		}
		payload := body
		if gz {
			payload = apitest.Gzip(t, body)
		}
		req := httptest.NewRequest("POST", path, bytes.NewReader(payload))
		req.Header.Set("Authorization", "Bearer good")
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)

		switch w.Code {
		case http.StatusOK:
			var b event.Batch
			var err error
			if single {
				b, err = httpapi.DecodeEvent(body, now)
			} else {
				b, err = httpapi.DecodeBatch(body, now)
			}
			if err != nil {
				t.Fatalf("200 for a body DecodeBatch refuses: %v", err)
			}
			if err := b.Validate(now); err != nil {
				t.Fatalf("stored an invalid batch: %v", err)
			}
			checkStorable(t, b)
			if store.ingested != len(b.Events) {
				t.Fatalf("stored %d events of %d", store.ingested, len(b.Events))
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			var e httpapi.ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("error answer is not the error shape: %s", w.Body)
			}
			if httpapi.StatusOf(e.Error.Code) != w.Code {
				t.Fatalf("code %s with status %d", e.Error.Code, w.Code)
			}
			if store.ingested != 0 {
				t.Fatalf("refused body stored %d events", store.ingested)
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
	})
}

// checkStorable fails unless every value of b is one PostgreSQL stores as
// it is: cleaning it again changes nothing, and no text holds NUL or
// invalid UTF-8.
func checkStorable(t *testing.T, b event.Batch) {
	t.Helper()
	again := event.Batch{Sessions: slices.Clone(b.Sessions), Events: slices.Clone(b.Events)}
	again.Clean()
	if !reflect.DeepEqual(again, b) {
		t.Fatalf("a stored batch needs cleaning:\n%+v\n%+v", b, again)
	}
	for _, e := range b.Events {
		for _, s := range []string{e.Server, e.RPCID, e.Method, e.Tool, e.Prompt, e.ResourceURI, e.ErrorMessage} {
			if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("stored text %q", s)
			}
		}
		if len(e.Payload) > 0 && (bytes.Contains(e.Payload, []byte(`\u0000`)) && !bytes.Contains(e.Payload, []byte(`\\u0000`)) || !utf8.Valid(e.Payload)) {
			t.Fatalf("stored payload %q", e.Payload)
		}
	}
}

// FuzzQueries sends arbitrary query strings to GET /api/activity and
// /api/stats: the answer is 200 or a 400 with the error shape, never a
// 5xx, and whatever reaches the store is a query PostgreSQL can run as
// written (text without NUL or invalid UTF-8, canonical UUIDs, times
// within the documented range).
func FuzzQueries(f *testing.F) {
	for _, q := range hostileQueries() {
		f.Add(q)
	}
	f.Add("since=1h&tool=read_file&risk=high&limit=10")
	f.Fuzz(func(t *testing.T, query string) {
		store := &fakeStore{}
		h := httpapi.New(httpapi.Config{Store: store, Now: func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) }})
		for _, path := range []string{"/api/activity", "/api/stats"} {
			req := httptest.NewRequest("GET", "/", nil)
			req.URL.Path, req.URL.RawQuery = path, query
			req.Header.Set("Authorization", "Bearer good")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			switch w.Code {
			case http.StatusOK:
			case http.StatusBadRequest:
				var e httpapi.ErrorBody
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Message == "" {
					t.Fatalf("%s?%s: error answer is not the error shape: %s", path, query, w.Body)
				}
			default:
				t.Fatalf("%s?%s: status %d: %s", path, query, w.Code, w.Body)
			}
		}
		for _, q := range store.activity {
			for _, s := range []string{q.Server, q.Method, q.Tool} {
				if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
					t.Fatalf("filter %q reached the store", s)
				}
			}
			if q.SessionID != "" && !activity.CanonicalUUID(q.SessionID) {
				t.Fatalf("session %q reached the store", q.SessionID)
			}
			if c := q.Cursor; c != nil && (!activity.CanonicalUUID(c.ID) || c.TS.Before(activity.MinTime) || !c.TS.Before(activity.MaxTime)) {
				t.Fatalf("cursor %+v reached the store", c)
			}
			for _, ts := range []time.Time{q.Since, q.Until} {
				if !ts.IsZero() && (ts.Before(activity.MinTime) || !ts.Before(activity.MaxTime)) {
					t.Fatalf("time %s reached the store", ts)
				}
			}
		}
		for _, q := range store.stats {
			if !utf8.ValidString(q.Server) || strings.IndexByte(q.Server, 0) >= 0 || q.Until.Year() > 9999 || q.Since.Year() < 1970 {
				t.Fatalf("stats query %+v reached the store", q)
			}
		}
	})
}
