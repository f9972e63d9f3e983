package httpapi_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/httpapi/apitest"
)

// An export of events with large payloads ends each page at the byte
// bound, with a cursor, and following the cursors yields every event once.
func TestExportPagesAreBoundedInBytes(t *testing.T) {
	do, db := newAPI(t)
	tenant := apitest.CreateTenant(t, do, adminToken, "export")
	b := apitest.SampleBatch(time.Now(), 3)
	// Quotes inside a string: escaped once in the payload, and again when
	// Lambda carries the body as a JSON string.
	big := `{"blob":"` + strings.Repeat(`\"`, 450<<10) + `"}`
	for i := range b.Events {
		b.Events[i].Payload = json.RawMessage(big)
	}
	if _, err := db.Ingest(context.Background(), tenant.TenantID, b); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	v := url.Values{}
	pages := 0
	for {
		a := do(t, apitest.Request{Method: "GET", Path: "/api/export?" + v.Encode(), Token: tenant.APIKey})
		if a.Status != 200 {
			t.Fatalf("export: %d %s", a.Status, a.Body)
		}
		pages++
		// One event may pass the bound alone; a page of several may not.
		if n := strings.Count(string(a.Body), "\n"); n > 1 && len(a.Body) > httpapi.ExportPageBytes {
			t.Errorf("page %d: %d events in %d bytes, over %d", pages, n, len(a.Body), httpapi.ExportPageBytes)
		}
		// As Lambda returns it: the body as one JSON string.
		if quoted, _ := json.Marshal(string(a.Body)); len(quoted) > 6_000_000 {
			t.Errorf("page %d: %d bytes as a Lambda answer", pages, len(quoted))
		}
		for line := range strings.SplitSeq(strings.TrimSuffix(string(a.Body), "\n"), "\n") {
			var e struct{ ID string }
			if err := json.Unmarshal([]byte(line), &e); err != nil || e.ID == "" {
				t.Fatalf("page %d: line %.80q is not an event: %v", pages, line, err)
			}
			if seen[e.ID] {
				t.Errorf("event %s exported twice", e.ID)
			}
			seen[e.ID] = true
		}
		next := a.Header.Get(httpapi.NextCursorHeader)
		if next == "" {
			break
		}
		v.Set("cursor", next)
	}
	if len(seen) != len(b.Events) {
		t.Errorf("exported %d events, want %d", len(seen), len(b.Events))
	}
	if min := len(b.Events) * len(big) / httpapi.ExportPageBytes; pages < min {
		t.Errorf("%d pages, want at least %d", pages, min)
	}
}

func TestExportRefusals(t *testing.T) {
	do, _ := newAPI(t)
	tenant := apitest.CreateTenant(t, do, adminToken, "export-refusals")
	for _, tc := range []struct {
		req    apitest.Request
		status int
		code   string
	}{
		{apitest.Request{Method: "GET", Path: "/api/export"}, 401, "unauthorized"},
		{apitest.Request{Method: "POST", Path: "/api/export", Token: tenant.APIKey}, 405, "bad_method"},
		{apitest.Request{Method: "GET", Path: "/api/export?limit=0", Token: tenant.APIKey}, 400, "invalid"},
		{apitest.Request{Method: "GET", Path: "/api/export?limit=1001", Token: tenant.APIKey}, 400, "invalid"},
		{apitest.Request{Method: "GET", Path: "/api/export?cursor=nope", Token: tenant.APIKey}, 400, "invalid"},
		{apitest.Request{Method: "GET", Path: "/api/export?since=yesterday", Token: tenant.APIKey}, 400, "invalid"},
	} {
		a := do(t, tc.req)
		if a.Status != tc.status || a.ErrorCode(t) != tc.code {
			t.Errorf("%s %s: %d %s, want %d %s", tc.req.Method, tc.req.Path, a.Status, a.Body, tc.status, tc.code)
		}
	}
	// No events: an empty body and no cursor.
	a := do(t, apitest.Request{Method: "GET", Path: "/api/export", Token: tenant.APIKey})
	if a.Status != 200 || len(a.Body) != 0 || a.Header.Get(httpapi.NextCursorHeader) != "" {
		t.Errorf("empty export: %d %q cursor %q", a.Status, a.Body, a.Header.Get(httpapi.NextCursorHeader))
	}
}
