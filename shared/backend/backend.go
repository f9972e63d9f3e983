// Package backend is the domain of the Kilometers API: what the store must
// do, who may do it, and the error codes every failure maps to. Storage
// (package postgres) implements Store; package httpapi serves it over HTTP
// and maps error codes to statuses in one place.
package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/stats"
)

// Code is an application error code.
type Code string

const (
	EINVALID      Code = "invalid"      // 400
	EUNAUTHORIZED Code = "unauthorized" // 401
	EFORBIDDEN    Code = "forbidden"    // 403
	ENOTFOUND     Code = "not_found"    // 404
	ETOOLARGE     Code = "too_large"    // 413
	ERATELIMIT    Code = "rate_limited" // 429
	EUNAVAILABLE  Code = "unavailable"  // 503
	EINTERNAL     Code = "internal"     // 500
	EMETHOD       Code = "bad_method"   // 405
	EUNSUPPORTED  Code = "unsupported"  // 415
)

// Error is an error the API may show its caller: Message must never carry
// internal detail (SQL, hosts, stack), only what the caller can act on.
type Error struct {
	Code    Code
	Message string
	// RetryAfter, when set on an ERATELIMIT or EUNAVAILABLE error, is how
	// long the caller should wait; the HTTP layer sends it as Retry-After.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf builds an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err: the code of an *Error in its chain,
// else EINTERNAL.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Tenant is one customer: every stored row belongs to exactly one.
type Tenant struct {
	ID        string    `json:"tenant_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Settings  Settings  `json:"settings"`
}

// APIKey describes a key; the secret itself is shown once at creation and
// stored only as a hash.
type APIKey struct {
	ID         string     `json:"key_id"`
	TenantID   string     `json:"tenant_id"`
	Prefix     string     `json:"prefix"`
	Scopes     []Scope    `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// IngestResult answers an ingest.
type IngestResult struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// Store is the backend's storage. Every method that takes a tenantID sees
// that tenant's rows and no others.
type Store interface {
	// Ping checks the database; EUNAVAILABLE when it cannot be reached.
	Ping(ctx context.Context) error

	// Authenticate maps a raw API key to its tenant, its scopes and its
	// tenant's read rate limit. Unknown or revoked keys are EUNAUTHORIZED.
	// Whether the key may use a route is the caller's rule (Key.Allows).
	Authenticate(ctx context.Context, rawKey string) (Key, error)
	// CountRead counts one read request of key k in the fixed one-minute
	// window holding now, shared by every process on the database, and
	// returns the window's state. Callers skip it when k.ReadLimit is 0.
	CountRead(ctx context.Context, k Key, now time.Time) (ReadWindow, error)

	Admin
	Alerting

	// Ingest stores a validated batch, idempotent on (tenant, event id):
	// events already stored count as duplicates and change nothing. It
	// stores all of the batch or none of it, and keeps no reference to
	// b.Events once it returns (the API decodes the next batch into it).
	Ingest(ctx context.Context, tenantID string, b event.Batch) (IngestResult, error)
	// Activity pages through events newest first.
	Activity(ctx context.Context, tenantID string, q activity.Query) (activity.Page, error)
	// Sessions pages through sessions newest start first, each with the
	// counts of its tool calls and failed replies.
	Sessions(ctx context.Context, tenantID string, q activity.SessionQuery) (activity.SessionPage, error)
	// Call returns the event with id eventID (either half of a call) with
	// its request or reply, paired as activity.Answers says; ENOTFOUND
	// when the tenant has no such event.
	Call(ctx context.Context, tenantID, eventID string) (activity.Call, error)
	// Stats summarises an aligned window (stats.Query.Align); the answer
	// equals stats.Aggregator's over the same events.
	Stats(ctx context.Context, tenantID string, q stats.Query) (stats.Stats, error)
}

// Limits of the API, documented in the README.
const (
	// MaxBodyBytes bounds a request body after gzip inflation.
	MaxBodyBytes = 10 << 20
	// MaxBatchEvents bounds the events of one batch.
	MaxBatchEvents = 5000
)
