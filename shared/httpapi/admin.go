package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/kilometers-ai/kilometers/shared/backend"
)

// The admin routes (docs/api.md, "Admin"). Each handler passes the actor
// (admin fingerprint and address) to the store, which writes the audit
// entry in the action's transaction.

// decodeStrict decodes body into v and refuses fields v does not have
// (fresh is a zero value of v's type): a misspelt "scopes" or "threshold"
// must not quietly fall back to a default.
func decodeStrict(body []byte, v, fresh any) error {
	if err := decodeJSON(body, v); err != nil {
		return err
	}
	return refuseUnknownFields(body, fresh)
}

// readStrictJSON reads the request's body into v by decodeStrict.
func (s *Server) readStrictJSON(r *http.Request, v, fresh any) error {
	body, release, err := s.bodies.readBody(r)
	if err != nil {
		return err
	}
	defer release()
	return decodeStrict(body, v, fresh)
}

// readOptionalJSON is readStrictJSON where an empty body leaves v as it is.
func (s *Server) readOptionalJSON(r *http.Request, v, fresh any) error {
	body, release, err := s.bodies.readBody(r)
	if err != nil {
		return err
	}
	defer release()
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return decodeStrict(body, v, fresh)
}

func parseScopes(names []string) ([]backend.Scope, error) {
	if names == nil {
		return nil, nil
	}
	return backend.ParseScopes(names)
}

func (s *Server) handleCreateTenant(w http.ResponseWriter, r *http.Request) {
	var req backend.CreateTenantRequest
	if err := s.readStrictJSON(r, &req, &backend.CreateTenantRequest{}); err != nil {
		s.writeError(w, r, err)
		return
	}
	name := strings.TrimSpace(req.Name)
	if err := backend.ValidateTenantName(name); err != nil {
		s.writeError(w, r, err)
		return
	}
	scopes, err := parseScopes(req.Scopes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t, k, raw, err := s.store.AddTenant(r.Context(), actorOf(r.Context()), name, scopes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, backend.CreateTenantResponse{
		TenantID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, Settings: t.Settings,
		KeyID: k.ID, Prefix: k.Prefix, Scopes: k.Scopes, APIKey: raw,
	})
}

// pageQuery reads limit and cursor.
func pageQuery(v url.Values) (backend.PageQuery, error) {
	q := backend.PageQuery{Limit: backend.DefaultPageLimit, Cursor: v.Get("cursor")}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > backend.MaxPageLimit {
			return q, backend.Errorf(backend.EINVALID, "limit: want 1-%d, got %q", backend.MaxPageLimit, l)
		}
		q.Limit = n
	}
	return q, nil
}

func (s *Server) handleListTenants(w http.ResponseWriter, r *http.Request) {
	q, err := pageQuery(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.store.ListTenants(r.Context(), actorOf(r.Context()), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// tenantID returns the {id} of the path, or answers 404 when it cannot be
// a tenant's.
func (s *Server) pathID(w http.ResponseWriter, r *http.Request, what string) (string, bool) {
	id := r.PathValue("id")
	if !isUUID(id) {
		s.writeError(w, r, backend.Errorf(backend.ENOTFOUND, "no %s %q (%s ids are UUIDs)", what, id, what))
		return "", false
	}
	return id, true
}

func (s *Server) handleGetTenant(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathID(w, r, "tenant")
	if !ok {
		return
	}
	t, err := s.store.GetTenant(r.Context(), actorOf(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) handleUpdateTenant(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathID(w, r, "tenant")
	if !ok {
		return
	}
	var req backend.UpdateTenantRequest
	if err := s.readStrictJSON(r, &req, &backend.UpdateTenantRequest{}); err != nil {
		s.writeError(w, r, err)
		return
	}
	u := req.Update()
	if u.Empty() {
		s.writeError(w, r, backend.Errorf(backend.EINVALID, "nothing to change: send name and/or settings (see GET /api/admin/tenants/{id} for the fields)"))
		return
	}
	if err := u.Validate(); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.store.UpdateTenant(r.Context(), actorOf(r.Context()), id, u)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// refuseUnknownFields decodes body (already known to be valid JSON of the
// right types) again, refusing fields v does not have.
func refuseUnknownFields(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := err.Error()
		if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			return backend.Errorf(backend.EINVALID, "unknown field %s", f)
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return backend.Errorf(backend.EINVALID, "%s: wrong type", typeErr.Field)
		}
		return backend.Errorf(backend.EINVALID, "body: %s", strings.TrimPrefix(msg, "json: "))
	}
	return nil
}

func (s *Server) handleDeleteTenant(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathID(w, r, "tenant")
	if !ok {
		return
	}
	if err := s.store.DeleteTenant(r.Context(), actorOf(r.Context()), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, backend.DeleteTenantResponse{TenantID: id, Deleted: true})
}

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathID(w, r, "tenant")
	if !ok {
		return
	}
	keys, err := s.store.ListKeys(r.Context(), actorOf(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, backend.KeysResponse{Keys: keys})
}

func (s *Server) handleCreateKey(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathID(w, r, "tenant")
	if !ok {
		return
	}
	var req backend.CreateKeyRequest
	if err := s.readOptionalJSON(r, &req, &backend.CreateKeyRequest{}); err != nil {
		s.writeError(w, r, err)
		return
	}
	scopes, err := parseScopes(req.Scopes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	k, raw, err := s.store.CreateKey(r.Context(), actorOf(r.Context()), id, scopes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, backend.CreateKeyResponse{
		KeyID: k.ID, TenantID: k.TenantID, Prefix: k.Prefix, Scopes: k.Scopes, CreatedAt: k.CreatedAt, APIKey: raw,
	})
}

func (s *Server) handleRevokeKey(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathID(w, r, "key")
	if !ok {
		return
	}
	k, err := s.store.RevokeKey(r.Context(), actorOf(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, backend.RevokeKeyResponse{KeyID: k.ID, TenantID: k.TenantID, Revoked: true, RevokedAt: k.RevokedAt})
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	pq, err := pageQuery(v)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := backend.AuditQuery{PageQuery: pq, TenantID: v.Get("tenant")}
	page, err := s.store.Audit(r.Context(), actorOf(r.Context()), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// handleMaintenance runs the maintenance job now (POST
// /api/admin/maintenance); the scheduled runs call the store directly.
func (s *Server) handleMaintenance(w http.ResponseWriter, r *http.Request) {
	res, err := s.store.Maintain(r.Context(), actorOf(r.Context()))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
