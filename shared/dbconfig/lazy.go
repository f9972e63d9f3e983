package dbconfig

import (
	"context"
	"fmt"
	"sync"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// OpenFunc opens a store (postgres.Open over a resolved DSN).
type OpenFunc func(ctx context.Context) (backend.Store, error)

// LazyStore is a backend.Store that opens the real one on first use and,
// when that fails, on the next use again. A Lambda function builds it at
// init, so a cold start while the database is down answers 503 and later
// requests recover without a new cold start.
type LazyStore struct {
	open OpenFunc

	mu    sync.Mutex
	store backend.Store
}

// NewLazyStore returns a LazyStore over open.
func NewLazyStore(open OpenFunc) *LazyStore { return &LazyStore{open: open} }

var _ backend.Store = (*LazyStore)(nil)

func (l *LazyStore) get(ctx context.Context) (backend.Store, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.store != nil {
		return l.store, nil
	}
	s, err := l.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("open store: %w: %w", backend.Errorf(backend.EUNAVAILABLE, "the database is unavailable; try again later"), err)
	}
	l.store = s
	return s, nil
}

// Close closes the underlying store if it was opened and can be closed.
func (l *LazyStore) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.store.(interface{ Close() }); ok {
		c.Close()
	}
	l.store = nil
}

func (l *LazyStore) Ping(ctx context.Context) error {
	s, err := l.get(ctx)
	if err != nil {
		return err
	}
	return s.Ping(ctx)
}

func (l *LazyStore) Ingest(ctx context.Context, tenantID string, b event.Batch) (backend.IngestResult, error) {
	s, err := l.get(ctx)
	if err != nil {
		return backend.IngestResult{}, err
	}
	return s.Ingest(ctx, tenantID, b)
}

func (l *LazyStore) Activity(ctx context.Context, tenantID string, q activity.Query) (activity.Page, error) {
	s, err := l.get(ctx)
	if err != nil {
		return activity.Page{}, err
	}
	return s.Activity(ctx, tenantID, q)
}

func (l *LazyStore) Stats(ctx context.Context, tenantID string, q stats.Query) (stats.Stats, error) {
	s, err := l.get(ctx)
	if err != nil {
		return stats.Stats{}, err
	}
	return s.Stats(ctx, tenantID, q)
}

// Postgres returns an OpenFunc that resolves the DSN with r and opens it
// with postgres.OpenRefreshing, which reads the secret again when the
// database refuses its credentials. The pool connects lazily, so opening
// fails only when the DSN cannot be resolved (a secret that cannot be read
// yet).
func Postgres(r *Resolver) OpenFunc {
	return func(ctx context.Context) (backend.Store, error) {
		db, err := postgres.OpenRefreshing(ctx, func(ctx context.Context, fresh bool) (string, error) {
			if fresh {
				return r.FreshDSN(ctx)
			}
			return r.DSN(ctx)
		})
		if err != nil {
			return nil, err
		}
		return db, nil
	}
}
