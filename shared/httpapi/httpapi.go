// Package httpapi serves the Kilometers API (see docs/api.md) over any
// backend.Store as a plain net/http handler. The Lambda functions mount
// parts of it behind the API Gateway adapter (package lambdahttp) and
// functions/local mounts all of it on one port.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kilometers-ai/kilometers/shared/backend"
)

// Group selects a set of routes.
type Group uint

const (
	// Health is GET /health.
	Health Group = 1 << iota
	// Ingest is POST /api/events and POST /api/events/batch.
	Ingest
	// Activity is the reads of recorded traffic: GET /api/activity,
	// GET /api/sessions and GET /api/events/{id}.
	Activity
	// Stats is GET /api/stats.
	Stats
	// Admin is every route under /api/admin/ (tenants, keys, audit,
	// maintenance, the alerts' scheduled run).
	Admin
	// Export is GET /api/export.
	Export
	// Alerts is the team alerts: GET/POST/DELETE /api/alerts/rules,
	// DELETE /api/alerts/rules/{id} and GET /api/alerts.
	Alerts

	// All is every route, as functions/local serves them.
	All = Health | Ingest | Activity | Stats | Admin | Export | Alerts
)

// TokenFunc returns the admin token. An empty token with a nil error means
// none is configured, and the admin routes answer 404. An error (a secret
// that cannot be read right now) answers 503.
type TokenFunc func(ctx context.Context) (string, error)

// StaticToken is a TokenFunc for a token known up front.
func StaticToken(token string) TokenFunc {
	return func(context.Context) (string, error) { return token, nil }
}

// Config configures a Server.
type Config struct {
	// Store is required.
	Store backend.Store
	// Routes selects the routes served; zero means All.
	Routes Group
	// AdminToken authorizes the admin routes; nil disables them.
	AdminToken TokenFunc
	// Logger receives one line per request and the detail of internal
	// errors; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// PingTimeout bounds the database check of /health; zero means 3s.
	PingTimeout time.Duration
}

// Server is the API as an http.Handler.
type Server struct {
	store       backend.Store
	adminToken  TokenFunc
	logger      *slog.Logger
	now         func() time.Time
	pingTimeout time.Duration
	mux         *http.ServeMux
	bodies      bodyPools
}

// New returns the API server for cfg.
func New(cfg Config) *Server {
	s := &Server{
		store:       cfg.Store,
		adminToken:  cfg.AdminToken,
		logger:      cfg.Logger,
		now:         cfg.Now,
		pingTimeout: cfg.PingTimeout,
		mux:         http.NewServeMux(),
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		// UTC: a date in since/until is midnight in the clock's zone, and
		// the API's answer must not depend on the host's.
		s.now = func() time.Time { return time.Now().UTC() }
	}
	if s.pingTimeout <= 0 {
		s.pingTimeout = 3 * time.Second
	}
	routes := cfg.Routes
	if routes == 0 {
		routes = All
	}
	// Paths are registered without methods so that a wrong method answers
	// a JSON 405 from methods() rather than ServeMux's plain-text one.
	if routes&Health != 0 {
		s.mux.Handle("/health", methods{http.MethodGet: s.handleHealth})
	}
	if routes&Ingest != 0 {
		s.mux.Handle("/api/events", methods{http.MethodPost: s.ingestAuthed(s.handleEvent)})
		s.mux.Handle("/api/events/batch", methods{http.MethodPost: s.ingestAuthed(s.handleBatch)})
	}
	if routes&Activity != 0 {
		s.mux.Handle("/api/activity", methods{http.MethodGet: s.authed(s.handleActivity)})
		s.mux.Handle("/api/sessions", methods{http.MethodGet: s.authed(s.handleSessions)})
		s.mux.Handle("/api/events/{id}", methods{http.MethodGet: s.authed(s.handleCall)})
	}
	if routes&Export != 0 {
		s.mux.Handle("/api/export", methods{http.MethodGet: s.authed(s.handleExport)})
	}
	if routes&Stats != 0 {
		s.mux.Handle("/api/stats", methods{http.MethodGet: s.authed(s.handleStats)})
	}
	if routes&Admin != 0 {
		s.mux.Handle("/api/admin/tenants", methods{
			http.MethodGet:  s.admin(s.handleListTenants),
			http.MethodPost: s.admin(s.handleCreateTenant),
		})
		s.mux.Handle("/api/admin/tenants/{id}", methods{
			http.MethodGet:    s.admin(s.handleGetTenant),
			http.MethodPatch:  s.admin(s.handleUpdateTenant),
			http.MethodDelete: s.admin(s.handleDeleteTenant),
		})
		s.mux.Handle("/api/admin/tenants/{id}/keys", methods{
			http.MethodGet:  s.admin(s.handleListKeys),
			http.MethodPost: s.admin(s.handleCreateKey),
		})
		s.mux.Handle("/api/admin/keys/{id}", methods{http.MethodDelete: s.admin(s.handleRevokeKey)})
		s.mux.Handle("/api/admin/audit", methods{http.MethodGet: s.admin(s.handleAudit)})
		s.mux.Handle("/api/admin/maintenance", methods{http.MethodPost: s.admin(s.handleMaintenance)})
		s.mux.Handle("/api/admin/alerts/evaluate", methods{http.MethodPost: s.admin(s.handleEvaluateAlerts)})
	}
	if routes&Alerts != 0 {
		s.mux.Handle("/api/alerts/rules", methods{
			http.MethodGet:    s.authed(s.handleListAlertRules),
			http.MethodPost:   s.authed(s.handleCreateAlertRule),
			http.MethodDelete: s.authed(s.handleDeleteAlertRules),
		})
		s.mux.Handle("/api/alerts/rules/{id}", methods{http.MethodDelete: s.authed(s.handleDeleteAlertRule)})
		s.mux.Handle("/api/alerts", methods{http.MethodGet: s.authed(s.handleFiredAlerts)})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, backend.Errorf(backend.ENOTFOUND, "no route %s %s", r.Method, r.URL.Path))
	})
	return s
}

// ServeHTTP serves one request: it logs it, turns a panic into a JSON 500
// and dispatches to the route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.logger.ErrorContext(r.Context(), "panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if sw.status == 0 {
				writeJSON(sw, http.StatusInternalServerError, ErrorBody{Error: ErrorDetail{Code: backend.EINTERNAL, Message: "internal error"}})
			}
		}
		s.logger.InfoContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path,
			"status", sw.status, "bytes", sw.bytes, "duration_ms", float64(time.Since(start).Microseconds())/1000)
	}()
	s.mux.ServeHTTP(sw, r)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// methods dispatches on the request method; others answer 405 with Allow.
type methods map[string]http.HandlerFunc

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := m[r.Method]; ok {
		h(w, r)
		return
	}
	allow := make([]string, 0, len(m))
	for k := range m {
		allow = append(allow, k)
	}
	sort.Strings(allow)
	w.Header().Set("Allow", strings.Join(allow, ", "))
	// Routing errors are written without a Server, so no logging here.
	writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: ErrorDetail{
		Code:    backend.EMETHOD,
		Message: "method " + r.Method + " not allowed on " + r.URL.Path + "; use " + strings.Join(allow, ", "),
	}})
}

type keyKey struct{}

// keyOf returns the key authenticated by authed or ingestAuthed.
func keyOf(ctx context.Context) backend.Key {
	k, _ := ctx.Value(keyKey{}).(backend.Key)
	return k
}

// tenantOf returns the tenant of the authenticated key.
func tenantOf(ctx context.Context) string { return keyOf(ctx).TenantID }

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// authed guards a read route: it requires an API key with the read scope
// and counts the request against the key's read rate limit. Every data
// route is a read unless it is registered with ingestAuthed, so a new
// route that reads gets the scope and the limit by being registered here.
func (s *Server) authed(next http.HandlerFunc) http.HandlerFunc {
	return s.keyed(backend.ScopeRead, next)
}

// ingestAuthed guards the routes that post events: it requires an API key
// with the ingest scope. Ingest volume is not rate limited per key: its
// limits are per tenant (tenant settings).
func (s *Server) ingestAuthed(next http.HandlerFunc) http.HandlerFunc {
	return s.keyed(backend.ScopeIngest, next)
}

// keyed requires a valid API key with scope and puts it in the context.
func (s *Server) keyed(scope backend.Scope, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearer(r)
		if !ok {
			s.writeError(w, r, backend.Errorf(backend.EUNAUTHORIZED, "missing API key: send Authorization: Bearer <key>"))
			return
		}
		k, err := s.store.Authenticate(r.Context(), raw)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !k.Allows(scope) {
			s.writeError(w, r, errScope(k, scope))
			return
		}
		if scope == backend.ScopeRead && k.ReadLimit > 0 {
			if err := s.countRead(w, r, k); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), keyKey{}, k)))
	}
}

func errScope(k backend.Key, need backend.Scope) error {
	have := make([]string, len(k.Scopes))
	for i, sc := range k.Scopes {
		have[i] = string(sc)
	}
	what := "read this tenant's data"
	if need == backend.ScopeIngest {
		what = "post events"
	}
	return backend.Errorf(backend.EFORBIDDEN, "this API key may not %s: it has scope %s, and this route needs %q (an admin can create a key with that scope)",
		what, strings.Join(have, ", "), need)
}

// countRead counts the request in the key's read window, says where the
// window stands in RateLimit-* headers, and refuses the request with
// ERATELIMIT, naming when to retry, once the window is full.
func (s *Server) countRead(w http.ResponseWriter, r *http.Request, k backend.Key) error {
	now := s.now()
	win, err := s.store.CountRead(r.Context(), k, now)
	if err != nil {
		return err
	}
	wait := win.Reset.Sub(now)
	secs := max(1, int((wait+time.Second-1)/time.Second))
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(win.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(0, win.Limit-win.Used)))
	h.Set("RateLimit-Reset", strconv.Itoa(secs))
	if !win.Exceeded() {
		return nil
	}
	e := backend.Errorf(backend.ERATELIMIT, "this API key made more than %d read requests this minute (the tenant's read_requests_per_minute); retry in %d s", win.Limit, secs)
	e.RetryAfter = time.Duration(secs) * time.Second
	return e
}

// admin requires the admin token. With no token configured the admin
// routes do not exist (404 saying so).
func (s *Server) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.adminToken == nil {
			s.writeError(w, r, errAdminDisabled())
			return
		}
		want, err := s.adminToken(r.Context())
		if err != nil {
			s.logger.ErrorContext(r.Context(), "admin token unavailable", "err", err)
			s.writeError(w, r, backend.Errorf(backend.EUNAVAILABLE, "admin token is unavailable; try again later"))
			return
		}
		if want == "" {
			s.writeError(w, r, errAdminDisabled())
			return
		}
		got, ok := bearer(r)
		if !ok {
			s.writeError(w, r, backend.Errorf(backend.EUNAUTHORIZED, "missing admin token: send Authorization: Bearer <admin token>"))
			return
		}
		// Compare digests so that neither the content nor the length of
		// the token leaks through timing.
		g, x := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
		if subtle.ConstantTimeCompare(g[:], x[:]) != 1 {
			s.writeError(w, r, backend.Errorf(backend.EUNAUTHORIZED, "invalid admin token"))
			return
		}
		a := backend.Actor{Admin: backend.Fingerprint(got), Address: clientAddress(r)}
		next(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, a)))
	}
}

type actorKey struct{}

// actorOf returns who is performing an admin request, for the audit trail.
func actorOf(ctx context.Context) backend.Actor {
	a, _ := ctx.Value(actorKey{}).(backend.Actor)
	return a
}

// clientAddress is the caller's IP: RemoteAddr without its port. Behind
// API Gateway the adapter sets RemoteAddr to the gateway's source IP;
// X-Forwarded-For is not trusted, as anyone can send it.
func clientAddress(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func errAdminDisabled() error {
	return backend.Errorf(backend.ENOTFOUND, "admin routes are disabled: no admin token is configured (set KILOMETERS_ADMIN_TOKEN, or ADMIN_TOKEN_SECRET_ARN on AWS)")
}
