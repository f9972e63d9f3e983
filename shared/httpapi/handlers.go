package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// HealthBody is the answer of GET /health. When the database is down it is
// sent with status 503 and carries the usual error object too.
type HealthBody struct {
	Status   string       `json:"status"`
	Database string       `json:"database"`
	Error    *ErrorDetail `json:"error,omitempty"`
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.pingTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.logger.WarnContext(r.Context(), "health: database unreachable", "err", err)
		w.Header().Set("Retry-After", retryAfterSeconds)
		writeJSON(w, StatusOf(backend.EUNAVAILABLE), HealthBody{
			Status:   "unavailable",
			Database: "unreachable",
			Error:    &ErrorDetail{Code: backend.EUNAVAILABLE, Message: "the database is unreachable"},
		})
		return
	}
	writeJSON(w, http.StatusOK, HealthBody{Status: "ok", Database: "ok"})
}

func (s *Server) handleEvent(w http.ResponseWriter, r *http.Request) {
	s.ingest(w, r, DecodeEvent)
}

func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	// The batch's events are decoded into a slice of an earlier request,
	// which goes back to the pool once the store has returned (Ingest
	// keeps nothing of the batch): growing it element by element was a
	// tenth of what a batch allocates.
	var events []event.Event
	s.ingest(w, r, func(body []byte, now time.Time) (event.Batch, error) {
		b, err := decodeBatchInto(body, now, s.bodies.getEvents())
		events = b.Events
		return b, err
	})
	s.bodies.putEvents(events)
}

func (s *Server) ingest(w http.ResponseWriter, r *http.Request, decode func([]byte, time.Time) (event.Batch, error)) {
	body, release, err := s.bodies.readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := decode(body, s.now())
	release()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.store.Ingest(r.Context(), tenantOf(r.Context()), b)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleActivity(w http.ResponseWriter, r *http.Request) {
	q, err := activity.ParseQuery(r.URL.Query(), s.now())
	if err != nil {
		s.writeError(w, r, backend.Errorf(backend.EINVALID, "%s", err.Error()))
		return
	}
	page, err := s.store.Activity(r.Context(), tenantOf(r.Context()), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if page.Events == nil {
		page.Events = []event.Event{}
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) handleSessions(w http.ResponseWriter, r *http.Request) {
	q, err := activity.ParseSessionQuery(r.URL.Query(), s.now())
	if err != nil {
		s.writeError(w, r, backend.Errorf(backend.EINVALID, "%s", err.Error()))
		return
	}
	page, err := s.store.Sessions(r.Context(), tenantOf(r.Context()), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if page.Sessions == nil {
		page.Sessions = []activity.SessionRow{}
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) handleCall(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !isUUID(id) {
		s.writeError(w, r, backend.Errorf(backend.ENOTFOUND, "no event %q (event ids are UUIDs)", id))
		return
	}
	call, err := s.store.Call(r.Context(), tenantOf(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, call)
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	q, err := stats.ParseQuery(r.URL.Query(), s.now())
	if err != nil {
		s.writeError(w, r, backend.Errorf(backend.EINVALID, "%s", err.Error()))
		return
	}
	st, err := s.store.Stats(r.Context(), tenantOf(r.Context()), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}
