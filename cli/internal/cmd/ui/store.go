package ui

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"

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

// Authenticate accepts the per-run token only.
func (l *LocalStore) Authenticate(_ context.Context, key string) (string, error) {
	a, b := sha256.Sum256([]byte(key)), sha256.Sum256([]byte(l.token))
	if l.token == "" || subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return "", backend.Errorf(backend.EUNAUTHORIZED, "wrong dashboard token")
	}
	return LocalTenant, nil
}

func (l *LocalStore) CreateTenant(context.Context, string) (backend.Tenant, string, error) {
	return backend.Tenant{}, "", errReadOnly()
}

func (l *LocalStore) CreateKey(context.Context, string) (backend.APIKey, string, error) {
	return backend.APIKey{}, "", errReadOnly()
}

func (l *LocalStore) RevokeKey(context.Context, string) error { return errReadOnly() }

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
