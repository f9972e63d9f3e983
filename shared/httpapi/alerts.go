package httpapi

import (
	"net/http"
	"strconv"

	"github.com/kilometers-ai/kilometers/shared/backend"
)

// Team alert rules are managed with a key of the read scope: they are the
// team's configuration of what it watches, like the reads it watches with.
// A key of the ingest scope only (the one on every developer's machine)
// can neither see nor change them. The signing secret is write-only.

func (s *Server) handleListAlertRules(w http.ResponseWriter, r *http.Request) {
	rules, err := s.store.AlertRules(r.Context(), tenantOf(r.Context()))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if rules == nil {
		rules = []backend.AlertRule{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": rules})
}

func (s *Server) handleCreateAlertRule(w http.ResponseWriter, r *http.Request) {
	var req backend.NewAlertRule
	if err := s.readStrictJSON(r, &req, &backend.NewAlertRule{}); err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := req.Validate(); err != nil {
		s.writeError(w, r, err)
		return
	}
	rule, err := s.store.CreateAlertRule(r.Context(), tenantOf(r.Context()), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, rule)
}

func (s *Server) handleDeleteAlertRules(w http.ResponseWriter, r *http.Request) {
	n, err := s.store.DeleteAlertRules(r.Context(), tenantOf(r.Context()))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"deleted": n})
}

func (s *Server) handleDeleteAlertRule(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !isUUID(id) {
		s.writeError(w, r, backend.Errorf(backend.ENOTFOUND, "no alert rule %q (rule ids are UUIDs)", id))
		return
	}
	if err := s.store.DeleteAlertRule(r.Context(), tenantOf(r.Context()), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "deleted": true})
}

func (s *Server) handleFiredAlerts(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	var q backend.AlertQuery
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > backend.MaxAlertsPage {
			s.writeError(w, r, backend.Errorf(backend.EINVALID, "limit: want 1 to %d, got %q", backend.MaxAlertsPage, l))
			return
		}
		q.Limit = n
	}
	q.Cursor = v.Get("cursor")
	page, err := s.store.FiredAlerts(r.Context(), tenantOf(r.Context()), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if page.Alerts == nil {
		page.Alerts = []backend.FiredAlert{}
	}
	writeJSON(w, http.StatusOK, page)
}

// handleEvaluateAlerts runs the team alerts' schedule once: every
// tenant's window rules, then the deliveries due. functions/local calls
// RunAlerts on a timer; a deployment calls this route on a schedule.
func (s *Server) handleEvaluateAlerts(w http.ResponseWriter, r *http.Request) {
	run, err := s.store.RunAlerts(r.Context(), s.now())
	if err != nil {
		s.logger.WarnContext(r.Context(), "alerts run", "err", err)
		if backend.ErrorCode(err) != backend.EINTERNAL || run.Tenants == 0 {
			s.writeError(w, r, err)
			return
		}
		// Some tenants' runs failed (logged); the others' counts stand.
	}
	writeJSON(w, http.StatusOK, run)
}
