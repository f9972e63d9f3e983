package webui

import (
	"bytes"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// ContentSecurityPolicy is sent with every file of the page: scripts,
// styles, images and API calls from this origin only, no inline code, no
// frames, no forms posting anywhere. The page works on a machine with no
// network, and an injected payload in an event cannot run or phone home.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// SetSecurityHeaders sets the headers every answer of a dashboard origin
// carries, the page's files and the API's answers alike.
func SetSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// Handler serves the page: "/" is index.html, the other files by name.
// Anything else is a 404, and only GET and HEAD are allowed. Answers are
// revalidated on every load (no-cache with an ETag), so a new binary's page
// is never mixed with an old script.
func Handler() http.Handler {
	fsys := FS()
	files := map[string]file{}
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files["/"+p] = file{body: b, etag: etag(b), ctype: contentType(p)}
		return nil
	})
	files["/"] = files["/index.html"]
	delete(files, "/index.html")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetSecurityHeaders(w.Header())
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		f, ok := files[r.URL.Path]
		if !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", f.ctype)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", f.etag)
		// The modification time is zero: ServeContent then decides on the
		// ETag alone.
		http.ServeContent(w, r, path.Base(r.URL.Path), time.Time{}, bytes.NewReader(f.body))
	})
}

type file struct {
	body  []byte
	etag  string
	ctype string
}

func contentType(p string) string {
	switch {
	case strings.HasSuffix(p, ".html"):
		return "text/html; charset=utf-8"
	case strings.HasSuffix(p, ".css"):
		return "text/css; charset=utf-8"
	case strings.HasSuffix(p, ".js"):
		return "text/javascript; charset=utf-8"
	case strings.HasSuffix(p, ".svg"):
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// IsAPIPath reports whether path belongs to the API (/api/..., /health)
// rather than to the page.
func IsAPIPath(path string) bool {
	return path == "/health" || path == "/api" || strings.HasPrefix(path, "/api/")
}

// WithAPI serves the page and, on the API's paths (IsAPIPath), api: one
// origin for both, as the page's Content-Security-Policy requires.
func WithAPI(api http.Handler) http.Handler {
	page := Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsAPIPath(r.URL.Path) {
			api.ServeHTTP(w, r)
			return
		}
		page.ServeHTTP(w, r)
	})
}
