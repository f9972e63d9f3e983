package backend

import (
	"strings"
	"time"
)

// The bodies of the admin routes (docs/api.md, "Admin"), shared by the
// server (package httpapi) and its clients.

// CreateTenantRequest is the body of POST /api/admin/tenants. Scopes of the
// first key default to DefaultScopes.
type CreateTenantRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes,omitempty"`
}

// CreateTenantResponse answers POST /api/admin/tenants. APIKey is shown
// this once; KeyID names it for listing and revoking.
type CreateTenantResponse struct {
	TenantID  string    `json:"tenant_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Settings  Settings  `json:"settings"`
	KeyID     string    `json:"key_id"`
	Prefix    string    `json:"prefix"`
	Scopes    []Scope   `json:"scopes"`
	APIKey    string    `json:"api_key"`
}

// CreateKeyRequest is the optional body of POST /api/admin/tenants/{id}/keys.
type CreateKeyRequest struct {
	Scopes []string `json:"scopes,omitempty"`
}

// CreateKeyResponse answers POST /api/admin/tenants/{id}/keys.
type CreateKeyResponse struct {
	KeyID     string    `json:"key_id"`
	TenantID  string    `json:"tenant_id"`
	Prefix    string    `json:"prefix"`
	Scopes    []Scope   `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	APIKey    string    `json:"api_key"`
}

// RevokeKeyResponse answers DELETE /api/admin/keys/{id}.
type RevokeKeyResponse struct {
	KeyID     string     `json:"key_id"`
	TenantID  string     `json:"tenant_id"`
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// KeysResponse answers GET /api/admin/tenants/{id}/keys.
type KeysResponse struct {
	Keys []APIKey `json:"keys"`
}

// DeleteTenantResponse answers DELETE /api/admin/tenants/{id}.
type DeleteTenantResponse struct {
	TenantID string `json:"tenant_id"`
	Deleted  bool   `json:"deleted"`
}

// UpdateTenantRequest is the body of PATCH /api/admin/tenants/{id}: the
// fields to change, in the shape GET answers; absent (or null) fields are
// kept. Unknown fields are refused, so a misspelt setting is not silently
// ignored.
type UpdateTenantRequest struct {
	Name     *string         `json:"name"`
	Settings *SettingsUpdate `json:"settings"`
}

// SettingsUpdate is the settings part of UpdateTenantRequest.
type SettingsUpdate struct {
	EventRetentionDays    *int   `json:"event_retention_days"`
	RollupRetentionDays   *int   `json:"rollup_retention_days"`
	IngestEventsPerMinute *int64 `json:"ingest_events_per_minute"`
	IngestEventsPerDay    *int64 `json:"ingest_events_per_day"`
	ReadRequestsPerMinute *int   `json:"read_requests_per_minute"`
}

// Update converts the request for the store.
func (req UpdateTenantRequest) Update() TenantUpdate {
	u := TenantUpdate{Name: req.Name}
	if st := req.Settings; st != nil {
		u.EventRetentionDays, u.RollupRetentionDays = st.EventRetentionDays, st.RollupRetentionDays
		u.IngestEventsPerMinute, u.IngestEventsPerDay = st.IngestEventsPerMinute, st.IngestEventsPerDay
		u.ReadRequestsPerMinute = st.ReadRequestsPerMinute
	}
	if u.Name != nil {
		name := strings.TrimSpace(*u.Name)
		u.Name = &name
	}
	return u
}
