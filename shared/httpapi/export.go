package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
)

// NextCursorHeader carries the cursor of the next export page; an answer
// without it is the last page.
const NextCursorHeader = "Kilometers-Next-Cursor"

// ExportPageBytes bounds an export page as activity.EventBytes counts
// them. Half an activity page: EventBytes counts payloads as stored, and
// an NDJSON body travels from Lambda as one JSON string, in which every
// quote and backslash of a payload is escaped again (up to twice the
// bytes); 2 MiB so counted stays under Lambda's 6 MB whatever the
// payloads hold, gzip or not.
const ExportPageBytes = 2 << 20

// handleExport answers GET /api/export: the events of one activity page as
// NDJSON, one event a line in the shape of an activity page's events,
// newest first. A page is an activity page with the largest limit and a
// byte bound of ExportPageBytes; the next page's cursor travels in a
// header so that every line of the body is an event.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if v.Get("limit") == "" {
		v.Set("limit", strconv.Itoa(activity.MaxLimit))
	}
	q, err := activity.ParseQuery(v, s.now())
	if err != nil {
		s.writeError(w, r, backend.Errorf(backend.EINVALID, "%s", err.Error()))
		return
	}
	q.MaxBytes = ExportPageBytes
	page, err := s.store.Activity(r.Context(), tenantOf(r.Context()), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as writeJSON: the byte bound counts bytes as stored
	for i := range page.Events {
		if err := enc.Encode(&page.Events[i]); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if page.NextCursor != "" {
		h.Set(NextCursorHeader, page.NextCursor)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}
