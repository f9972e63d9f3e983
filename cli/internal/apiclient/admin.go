package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kilometers-ai/kilometers/shared/backend"
)

// Admin calls the admin routes of one Kilometers API with the admin token.
// It does not retry: creating a tenant or a key twice is not harmless, and
// an operator at a terminal would rather see the error.
type Admin struct {
	c *Client
}

// NewAdmin returns an admin client for the API at baseURL.
func NewAdmin(baseURL, token string, o Options) *Admin {
	o.RetryMax = -1
	return &Admin{c: New(baseURL, token, o)}
}

func (a *Admin) send(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	var h http.Header
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		h = http.Header{"Content-Type": {"application/json"}}
	}
	return a.c.do(ctx, method, path, h, body, out)
}

func pageValues(q backend.PageQuery) url.Values {
	v := url.Values{}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	return v
}

// Tenants is one page of GET /api/admin/tenants.
func (a *Admin) Tenants(ctx context.Context, q backend.PageQuery) (backend.TenantPage, error) {
	var p backend.TenantPage
	err := a.send(ctx, http.MethodGet, "/api/admin/tenants?"+pageValues(q).Encode(), nil, &p)
	return p, err
}

// Tenant is GET /api/admin/tenants/{id}.
func (a *Admin) Tenant(ctx context.Context, id string) (backend.Tenant, error) {
	var t backend.Tenant
	err := a.send(ctx, http.MethodGet, "/api/admin/tenants/"+url.PathEscape(id), nil, &t)
	return t, err
}

// CreateTenant is POST /api/admin/tenants.
func (a *Admin) CreateTenant(ctx context.Context, req backend.CreateTenantRequest) (backend.CreateTenantResponse, error) {
	var r backend.CreateTenantResponse
	err := a.send(ctx, http.MethodPost, "/api/admin/tenants", req, &r)
	return r, err
}

// UpdateTenant is PATCH /api/admin/tenants/{id}.
func (a *Admin) UpdateTenant(ctx context.Context, id string, req backend.UpdateTenantRequest) (backend.Tenant, error) {
	var t backend.Tenant
	err := a.send(ctx, http.MethodPatch, "/api/admin/tenants/"+url.PathEscape(id), req, &t)
	return t, err
}

// DeleteTenant is DELETE /api/admin/tenants/{id}.
func (a *Admin) DeleteTenant(ctx context.Context, id string) (backend.DeleteTenantResponse, error) {
	var r backend.DeleteTenantResponse
	err := a.send(ctx, http.MethodDelete, "/api/admin/tenants/"+url.PathEscape(id), nil, &r)
	return r, err
}

// Keys is GET /api/admin/tenants/{id}/keys.
func (a *Admin) Keys(ctx context.Context, tenantID string) (backend.KeysResponse, error) {
	var r backend.KeysResponse
	err := a.send(ctx, http.MethodGet, "/api/admin/tenants/"+url.PathEscape(tenantID)+"/keys", nil, &r)
	return r, err
}

// CreateKey is POST /api/admin/tenants/{id}/keys.
func (a *Admin) CreateKey(ctx context.Context, tenantID string, req backend.CreateKeyRequest) (backend.CreateKeyResponse, error) {
	var r backend.CreateKeyResponse
	err := a.send(ctx, http.MethodPost, "/api/admin/tenants/"+url.PathEscape(tenantID)+"/keys", req, &r)
	return r, err
}

// RevokeKey is DELETE /api/admin/keys/{id}.
func (a *Admin) RevokeKey(ctx context.Context, keyID string) (backend.RevokeKeyResponse, error) {
	var r backend.RevokeKeyResponse
	err := a.send(ctx, http.MethodDelete, "/api/admin/keys/"+url.PathEscape(keyID), nil, &r)
	return r, err
}

// Audit is one page of GET /api/admin/audit.
func (a *Admin) Audit(ctx context.Context, q backend.AuditQuery) (backend.AuditPage, error) {
	v := pageValues(q.PageQuery)
	if q.TenantID != "" {
		v.Set("tenant", q.TenantID)
	}
	var p backend.AuditPage
	err := a.send(ctx, http.MethodGet, "/api/admin/audit?"+v.Encode(), nil, &p)
	return p, err
}

// Maintenance is POST /api/admin/maintenance: the maintenance job, now.
func (a *Admin) Maintenance(ctx context.Context) (backend.MaintenanceResult, error) {
	var r backend.MaintenanceResult
	err := a.send(ctx, http.MethodPost, "/api/admin/maintenance", nil, &r)
	return r, err
}
