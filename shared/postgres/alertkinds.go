package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// ruleKindsTTL is how long a process trusts what it read of a tenant's
// alert rule kinds. A rule created through another process (another Lambda
// instance) takes effect on this one's ingest within it; through this one,
// at once.
const ruleKindsTTL = 5 * time.Second

// ruleKinds caches, per tenant, which kinds of alert rules exist, so that
// ingest builds the per-event conditions only for kinds some rule watches:
// most batches of most tenants match no rule, and building and sending a
// condition for every risky event cost ingest a fifth of its speed.
type ruleKinds struct {
	mu sync.Mutex
	m  map[string]ruleKindsEntry
}

type ruleKindsEntry struct {
	kinds map[string]bool
	at    time.Time
}

// alertRuleKinds returns the kinds of the tenant's alert rules, from the
// cache while it is fresh.
func (db *DB) alertRuleKinds(ctx context.Context, tenantID string) (map[string]bool, error) {
	now := db.clock()
	db.kinds.mu.Lock()
	e, ok := db.kinds.m[tenantID]
	db.kinds.mu.Unlock()
	if ok && now.Sub(e.at) >= 0 && now.Sub(e.at) < ruleKindsTTL {
		return e.kinds, nil
	}
	kinds := map[string]bool{}
	err := db.inTx(ctx, roleApp, tenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT DISTINCT kind FROM alert_rules`)
		if err != nil {
			return dbError("alert rule kinds", err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, k := range names {
			kinds[k] = true
		}
		return dbErrorOr("alert rule kinds", err)
	})
	if err != nil {
		return nil, err
	}
	db.kinds.mu.Lock()
	if db.kinds.m == nil {
		db.kinds.m = map[string]ruleKindsEntry{}
	}
	db.kinds.m[tenantID] = ruleKindsEntry{kinds: kinds, at: now}
	db.kinds.mu.Unlock()
	return kinds, nil
}

// forgetRuleKinds drops the tenant's cached kinds after its rules changed.
func (db *DB) forgetRuleKinds(tenantID string) {
	db.kinds.mu.Lock()
	delete(db.kinds.m, tenantID)
	db.kinds.mu.Unlock()
}
