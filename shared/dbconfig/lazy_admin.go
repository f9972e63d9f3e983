package dbconfig

import (
	"context"
	"time"

	"github.com/kilometers-ai/kilometers/shared/backend"
)

// The key and admin methods of LazyStore (backend.Store and backend.Admin),
// each opening the store first like the others.

func (l *LazyStore) Authenticate(ctx context.Context, rawKey string) (backend.Key, error) {
	s, err := l.get(ctx)
	if err != nil {
		return backend.Key{}, err
	}
	return s.Authenticate(ctx, rawKey)
}

func (l *LazyStore) CountRead(ctx context.Context, k backend.Key, now time.Time) (backend.ReadWindow, error) {
	s, err := l.get(ctx)
	if err != nil {
		return backend.ReadWindow{}, err
	}
	return s.CountRead(ctx, k, now)
}

func (l *LazyStore) AddTenant(ctx context.Context, a backend.Actor, name string, scopes []backend.Scope) (backend.Tenant, backend.APIKey, string, error) {
	s, err := l.get(ctx)
	if err != nil {
		return backend.Tenant{}, backend.APIKey{}, "", err
	}
	return s.AddTenant(ctx, a, name, scopes)
}

func (l *LazyStore) ListTenants(ctx context.Context, a backend.Actor, q backend.PageQuery) (backend.TenantPage, error) {
	s, err := l.get(ctx)
	if err != nil {
		return backend.TenantPage{}, err
	}
	return s.ListTenants(ctx, a, q)
}

func (l *LazyStore) GetTenant(ctx context.Context, a backend.Actor, tenantID string) (backend.Tenant, error) {
	s, err := l.get(ctx)
	if err != nil {
		return backend.Tenant{}, err
	}
	return s.GetTenant(ctx, a, tenantID)
}

func (l *LazyStore) UpdateTenant(ctx context.Context, a backend.Actor, tenantID string, u backend.TenantUpdate) (backend.Tenant, error) {
	s, err := l.get(ctx)
	if err != nil {
		return backend.Tenant{}, err
	}
	return s.UpdateTenant(ctx, a, tenantID, u)
}

func (l *LazyStore) DeleteTenant(ctx context.Context, a backend.Actor, tenantID string) error {
	s, err := l.get(ctx)
	if err != nil {
		return err
	}
	return s.DeleteTenant(ctx, a, tenantID)
}

func (l *LazyStore) ListKeys(ctx context.Context, a backend.Actor, tenantID string) ([]backend.APIKey, error) {
	s, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.ListKeys(ctx, a, tenantID)
}

func (l *LazyStore) CreateKey(ctx context.Context, a backend.Actor, tenantID string, scopes []backend.Scope) (backend.APIKey, string, error) {
	s, err := l.get(ctx)
	if err != nil {
		return backend.APIKey{}, "", err
	}
	return s.CreateKey(ctx, a, tenantID, scopes)
}

func (l *LazyStore) RevokeKey(ctx context.Context, a backend.Actor, keyID string) (backend.APIKey, error) {
	s, err := l.get(ctx)
	if err != nil {
		return backend.APIKey{}, err
	}
	return s.RevokeKey(ctx, a, keyID)
}

func (l *LazyStore) Audit(ctx context.Context, a backend.Actor, q backend.AuditQuery) (backend.AuditPage, error) {
	s, err := l.get(ctx)
	if err != nil {
		return backend.AuditPage{}, err
	}
	return s.Audit(ctx, a, q)
}

func (l *LazyStore) Maintain(ctx context.Context, a backend.Actor) (backend.MaintenanceResult, error) {
	s, err := l.get(ctx)
	if err != nil {
		return backend.MaintenanceResult{}, err
	}
	return s.Maintain(ctx, a)
}
