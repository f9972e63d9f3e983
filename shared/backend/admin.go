package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Scope is what an API key may do.
type Scope string

const (
	// ScopeIngest posts events (POST /api/events, POST /api/events/batch).
	ScopeIngest Scope = "ingest"
	// ScopeRead reads the tenant's data: every data route that is not
	// ingest (activity, stats, sessions, events, export).
	ScopeRead Scope = "read"
)

// DefaultScopes are a new key's scopes when none are asked for: a
// tenant's first key and the CLI's key both ship and read.
func DefaultScopes() []Scope { return []Scope{ScopeIngest, ScopeRead} }

// ParseScopes checks a list of scope names and returns it sorted without
// repeats. An empty list is EINVALID: a key that may do nothing is a
// mistake, not a choice.
func ParseScopes(names []string) ([]Scope, error) {
	if len(names) == 0 {
		return nil, Errorf(EINVALID, "scopes: want at least one of %q, %q", ScopeIngest, ScopeRead)
	}
	out := make([]Scope, 0, len(names))
	for _, n := range names {
		s := Scope(n)
		if s != ScopeIngest && s != ScopeRead {
			return nil, Errorf(EINVALID, "scopes: unknown scope %q; want %q or %q", n, ScopeIngest, ScopeRead)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Key is an authenticated API key: whose it is and what it may do.
type Key struct {
	ID       string
	TenantID string
	Scopes   []Scope
	// ReadLimit is the tenant's read requests per minute per key; 0 means
	// no limit.
	ReadLimit int
}

// Allows reports whether the key has scope s.
func (k Key) Allows(s Scope) bool { return slices.Contains(k.Scopes, s) }

// ReadWindow is one key's fixed one-minute window of read requests.
type ReadWindow struct {
	// Limit is the requests the window allows; Used counts this one too.
	Limit, Used int
	// Reset is when the next window starts.
	Reset time.Time
}

// Exceeded reports whether the request just counted is over the limit.
func (w ReadWindow) Exceeded() bool { return w.Limit > 0 && w.Used > w.Limit }

// Settings are a tenant's limits. Retention and ingest limits are stored
// and returned for the data lifecycle and quota enforcement, which do not
// act on them yet; the read limit is enforced (see CountRead).
type Settings struct {
	EventRetentionDays    int   `json:"event_retention_days"`
	RollupRetentionDays   int   `json:"rollup_retention_days"`
	IngestEventsPerMinute int64 `json:"ingest_events_per_minute"`
	IngestEventsPerDay    int64 `json:"ingest_events_per_day"`
	ReadRequestsPerMinute int   `json:"read_requests_per_minute"`
}

// Bounds of Settings, checked by TenantUpdate.Validate. A limit of 0 means
// no limit.
const (
	MaxRetentionDays         = 3660
	MaxIngestEventsPerMinute = 1_000_000_000
	MaxIngestEventsPerDay    = 1_000_000_000_000
	MaxReadRequestsPerMinute = 1_000_000
)

// TenantUpdate changes some of a tenant's fields; nil fields are kept.
type TenantUpdate struct {
	Name                  *string
	EventRetentionDays    *int
	RollupRetentionDays   *int
	IngestEventsPerMinute *int64
	IngestEventsPerDay    *int64
	ReadRequestsPerMinute *int
}

// MaxTenantName bounds a tenant name, in bytes.
const MaxTenantName = 256

// Validate checks the new values; the message names the field.
func (u TenantUpdate) Validate() error {
	if u.Name != nil {
		if err := ValidateTenantName(*u.Name); err != nil {
			return err
		}
	}
	days := func(name string, v *int) error {
		if v != nil && (*v < 1 || *v > MaxRetentionDays) {
			return Errorf(EINVALID, "%s: want 1-%d days, got %d", name, MaxRetentionDays, *v)
		}
		return nil
	}
	limit := func(name string, v *int64, hi int64) error {
		if v != nil && (*v < 0 || *v > hi) {
			return Errorf(EINVALID, "%s: want 0 (no limit) to %d, got %d", name, hi, *v)
		}
		return nil
	}
	var rpm *int64
	if u.ReadRequestsPerMinute != nil {
		v := int64(*u.ReadRequestsPerMinute)
		rpm = &v
	}
	for _, err := range []error{
		days("event_retention_days", u.EventRetentionDays),
		days("rollup_retention_days", u.RollupRetentionDays),
		limit("ingest_events_per_minute", u.IngestEventsPerMinute, MaxIngestEventsPerMinute),
		limit("ingest_events_per_day", u.IngestEventsPerDay, MaxIngestEventsPerDay),
		limit("read_requests_per_minute", rpm, MaxReadRequestsPerMinute),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// Empty reports whether the update changes nothing.
func (u TenantUpdate) Empty() bool { return u == TenantUpdate{} }

// ValidateTenantName checks a tenant name (already trimmed by the caller).
func ValidateTenantName(name string) error {
	if name == "" || len(name) > MaxTenantName || !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
		return Errorf(EINVALID, "name: want 1-%d bytes of text without NUL characters", MaxTenantName)
	}
	return nil
}

// Actor is who performs an admin action, as the audit trail records it.
type Actor struct {
	// Admin is the Fingerprint of the admin credential.
	Admin string
	// Address is the caller's network address.
	Address string
}

// Fingerprint names an admin credential without revealing it: the first
// 12 hex digits of its SHA-256. Operators compute the same with
// `printf %s "$KILOMETERS_ADMIN_TOKEN" | sha256sum | cut -c1-12`.
func Fingerprint(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])[:12]
}

// Audit actions, one per admin route.
const (
	ActionTenantCreate = "tenant.create"
	ActionTenantList   = "tenant.list"
	ActionTenantGet    = "tenant.get"
	ActionTenantUpdate = "tenant.update"
	ActionTenantDelete = "tenant.delete"
	ActionKeyList      = "key.list"
	ActionKeyCreate    = "key.create"
	ActionKeyRevoke    = "key.revoke"
	ActionAuditList    = "audit.list"
	ActionMaintenance  = "maintenance.run"
)

// AuditEntry is one admin action.
type AuditEntry struct {
	ID       int64           `json:"id"`
	At       time.Time       `json:"at"`
	Admin    string          `json:"admin"`
	Action   string          `json:"action"`
	TenantID string          `json:"tenant_id,omitempty"`
	KeyID    string          `json:"key_id,omitempty"`
	Address  string          `json:"address"`
	Detail   json.RawMessage `json:"detail,omitempty"`
}

// PageQuery pages through a list: at most Limit items after Cursor (the
// next_cursor of the previous page; empty for the first page).
type PageQuery struct {
	Limit  int
	Cursor string
}

// Page sizes of the admin lists.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	PageQuery
	// TenantID keeps only the entries about one tenant.
	TenantID string
}

// AuditPage is one page of the audit trail.
type AuditPage struct {
	Entries    []AuditEntry `json:"entries"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// TenantPage is one page of tenants, oldest first.
type TenantPage struct {
	Tenants    []Tenant `json:"tenants"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

// Admin is what the admin routes do. Every method records one entry in the
// audit trail, in the same transaction as the action, so an action is
// never done without its entry. Unknown or malformed ids are ENOTFOUND.
type Admin interface {
	// AddTenant creates a tenant and its first key (with scopes, or
	// DefaultScopes when nil) and returns the raw key, shown this once.
	AddTenant(ctx context.Context, a Actor, name string, scopes []Scope) (Tenant, APIKey, string, error)
	ListTenants(ctx context.Context, a Actor, q PageQuery) (TenantPage, error)
	GetTenant(ctx context.Context, a Actor, tenantID string) (Tenant, error)
	// UpdateTenant applies u (validated) and returns the tenant after it.
	UpdateTenant(ctx context.Context, a Actor, tenantID string, u TenantUpdate) (Tenant, error)
	// DeleteTenant deletes a tenant, its keys and all of its data. The
	// audit trail keeps its entries.
	DeleteTenant(ctx context.Context, a Actor, tenantID string) error
	// ListKeys lists a tenant's keys, revoked ones included, oldest first.
	ListKeys(ctx context.Context, a Actor, tenantID string) ([]APIKey, error)
	// CreateKey adds a key to a tenant (scopes nil: DefaultScopes).
	CreateKey(ctx context.Context, a Actor, tenantID string, scopes []Scope) (APIKey, string, error)
	// RevokeKey revokes a key; revoking twice keeps the first time.
	RevokeKey(ctx context.Context, a Actor, keyID string) (APIKey, error)
	// Audit pages through the audit trail, newest first.
	Audit(ctx context.Context, a Actor, q AuditQuery) (AuditPage, error)
	// Maintain runs the maintenance job now (docs/deploy.md, "Data
	// lifecycle"): time partitions made ahead, those past every tenant's
	// retention dropped. Safe to run twice at once.
	Maintain(ctx context.Context, a Actor) (MaintenanceResult, error)
}

// MaintenanceResult is what one maintenance run did.
type MaintenanceResult struct {
	// Created and Dropped name the partitions made and dropped.
	Created []string `json:"created"`
	Dropped []string `json:"dropped"`
	// DurationMS is how long the run took.
	DurationMS float64 `json:"duration_ms"`
}
