package ui

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/webui"
)

// TokenParam is the query parameter of the URL `kilometers ui` prints.
const TokenParam = "token"

// NewHandler serves the dashboard's page and the API's read routes over
// the read-only store st, for one browser that knows token, on the
// loopback address listen (host:port). It refuses:
//   - a Host header other than listen's (or localhost with its port): 403,
//     so a web page that rebinds its own name to 127.0.0.1 cannot read it;
//   - a request without the token, as ?token= or as the cookie set on the
//     first visit: 401, so other local users and other sites cannot;
//   - anything but GET and HEAD: 405, it changes nothing.
func NewHandler(st *store.Store, token, listen string, now func() time.Time, logger *slog.Logger) http.Handler {
	api := httpapi.New(httpapi.Config{
		Store: Local(st, token),
		// Alerts answers GET /api/alerts with none: local rules fire from
		// the alerts file (kilometers alerts), not from this store.
		Routes: httpapi.Activity | httpapi.Stats | httpapi.Alerts,
		Logger: logger,
		Now:    now,
	})
	_, port, _ := net.SplitHostPort(listen)
	g := &guard{
		token:  sha256.Sum256([]byte(token)),
		hosts:  map[string]bool{listen: true, "localhost:" + port: true},
		cookie: "kilometers_ui_" + port, // cookies ignore ports: one per server
		raw:    token,
		api:    api,
		page:   webui.Handler(),
	}
	return g
}

type guard struct {
	token  [sha256.Size]byte
	raw    string
	hosts  map[string]bool
	cookie string
	api    http.Handler
	page   http.Handler
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	webui.SetSecurityHeaders(w.Header())
	if !g.hosts[strings.ToLower(r.Host)] {
		refuse(w, http.StatusForbidden, backend.EUNAUTHORIZED,
			"host "+r.Host+" is not the address this dashboard listens on; open the URL `kilometers ui` printed")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		refuse(w, http.StatusMethodNotAllowed, backend.EMETHOD, "the local dashboard is read-only; use GET")
		return
	}
	if t, ok := r.URL.Query()[TokenParam]; ok {
		if len(t) != 1 || !g.valid(t[0]) {
			refuse(w, http.StatusUnauthorized, backend.EUNAUTHORIZED, "wrong token; open the URL `kilometers ui` printed for this run")
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name: g.cookie, Value: g.raw, Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode,
		})
		// Take the token out of the address bar and the history.
		q := r.URL.Query()
		q.Del(TokenParam)
		u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return
	}
	c, err := r.Cookie(g.cookie)
	if err != nil || !g.valid(c.Value) {
		refuse(w, http.StatusUnauthorized, backend.EUNAUTHORIZED, "missing or expired dashboard token; open the URL `kilometers ui` printed for this run")
		return
	}
	if webui.IsAPIPath(r.URL.Path) {
		// The store adapter checks this token too (httpapi asks it to
		// authenticate every data request): a request reaches the data
		// only through this guard.
		r.Header.Set("Authorization", "Bearer "+g.raw)
		// Recorded payloads stay out of the browser's disk cache.
		w.Header().Set("Cache-Control", "no-store")
		g.api.ServeHTTP(w, r)
		return
	}
	g.page.ServeHTTP(w, r)
}

func (g *guard) valid(s string) bool {
	sum := sha256.Sum256([]byte(s))
	return subtle.ConstantTimeCompare(sum[:], g.token[:]) == 1
}

// refuse answers in the API's error shape, which the page also shows.
func refuse(w http.ResponseWriter, status int, code backend.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(httpapi.ErrorBody{Error: httpapi.ErrorDetail{Code: code, Message: msg}})
}
