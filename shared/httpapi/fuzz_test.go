package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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
