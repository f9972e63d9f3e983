package ui

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// LocalTenant is the one tenant of the local store.
const LocalTenant = "local"

// LocalStore is the local store seen as a read-only backend.Store, so that
// the dashboard's JSON is written by the API's own handlers and has the
// API's shapes exactly. It authenticates the per-run token only, and
// refuses every write.
type LocalStore struct {
	noAdmin
	noAlerts
	st    *store.Store
	token string
}

var _ backend.Store = (*LocalStore)(nil)

// Local wraps st for the holder of token.
func Local(st *store.Store, token string) *LocalStore { return &LocalStore{st: st, token: token} }

func errReadOnly() error {
	return backend.Errorf(backend.EMETHOD, "the local dashboard is read-only")
}

// Ping reports the store as up: it is a directory, read on each request.
func (l *LocalStore) Ping(context.Context) error { return nil }

// Authenticate accepts the per-run token only, as a read-only key: the
// API's own scope check then refuses every write.
func (l *LocalStore) Authenticate(_ context.Context, key string) (backend.Key, error) {
	a, b := sha256.Sum256([]byte(key)), sha256.Sum256([]byte(l.token))
	if l.token == "" || subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return backend.Key{}, backend.Errorf(backend.EUNAUTHORIZED, "wrong dashboard token")
	}
	return backend.Key{ID: LocalTenant, TenantID: LocalTenant, Scopes: []backend.Scope{backend.ScopeRead}}, nil
}

// CountRead counts nothing: the local dashboard has no read limit
// (Key.ReadLimit is 0, so the API never asks).
func (l *LocalStore) CountRead(context.Context, backend.Key, time.Time) (backend.ReadWindow, error) {
	return backend.ReadWindow{}, nil
}

func (l *LocalStore) Ingest(context.Context, string, event.Batch) (backend.IngestResult, error) {
	return backend.IngestResult{}, errReadOnly()
}

// Activity reads the store.
func (l *LocalStore) Activity(ctx context.Context, _ string, q activity.Query) (activity.Page, error) {
	return l.st.Activity(ctx, q)
}

// Stats reads the store.
func (l *LocalStore) Stats(ctx context.Context, _ string, q stats.Query) (stats.Stats, error) {
	return l.st.Stats(ctx, q)
}

// Sessions reads the store.
func (l *LocalStore) Sessions(ctx context.Context, _ string, q activity.SessionQuery) (activity.SessionPage, error) {
	return l.st.Sessions(ctx, q)
}

// Call reads the store; an id it does not hold is the API's 404.
func (l *LocalStore) Call(ctx context.Context, _ string, id string) (activity.Call, error) {
	c, err := l.st.Call(ctx, id)
	if errors.Is(err, activity.ErrNotFound) {
		return c, backend.Errorf(backend.ENOTFOUND, "no event %s in the local store", id)
	}
	return c, err
}

// noAdmin refuses every admin action: the local dashboard serves no admin
// routes (no admin token), and would change nothing if it did.
type noAdmin struct{}

func (noAdmin) AddTenant(context.Context, backend.Actor, string, []backend.Scope) (backend.Tenant, backend.APIKey, string, error) {
	return backend.Tenant{}, backend.APIKey{}, "", errReadOnly()
}

func (noAdmin) ListTenants(context.Context, backend.Actor, backend.PageQuery) (backend.TenantPage, error) {
	return backend.TenantPage{}, errReadOnly()
}

func (noAdmin) GetTenant(context.Context, backend.Actor, string) (backend.Tenant, error) {
	return backend.Tenant{}, errReadOnly()
}

func (noAdmin) UpdateTenant(context.Context, backend.Actor, string, backend.TenantUpdate) (backend.Tenant, error) {
	return backend.Tenant{}, errReadOnly()
}

func (noAdmin) DeleteTenant(context.Context, backend.Actor, string) error { return errReadOnly() }

func (noAdmin) ListKeys(context.Context, backend.Actor, string) ([]backend.APIKey, error) {
	return nil, errReadOnly()
}

func (noAdmin) CreateKey(context.Context, backend.Actor, string, []backend.Scope) (backend.APIKey, string, error) {
	return backend.APIKey{}, "", errReadOnly()
}

func (noAdmin) RevokeKey(context.Context, backend.Actor, string) (backend.APIKey, error) {
	return backend.APIKey{}, errReadOnly()
}

func (noAdmin) Audit(context.Context, backend.Actor, backend.AuditQuery) (backend.AuditPage, error) {
	return backend.AuditPage{}, errReadOnly()
}

func (noAdmin) Maintain(context.Context, backend.Actor) (backend.MaintenanceResult, error) {
	return backend.MaintenanceResult{}, errReadOnly()
}
