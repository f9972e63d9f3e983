package webui

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// maxGzipped bounds the whole page, every file gzipped. The files are
// embedded in the kilometers binary, which runs in front of every MCP
// server, so they stay small.
const maxGzipped = 60 << 10

func TestPageWeight(t *testing.T) {
	var total, raw int
	err := fs.WalkDir(FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(FS(), p)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		raw += len(b)
		total += buf.Len()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("page: %d bytes, %d gzipped", raw, total)
	if total > maxGzipped {
		t.Errorf("page weighs %d bytes gzipped, over %d", total, maxGzipped)
	}
}

// TestLoadsNothingFromElsewhere: no file names another origin (the CSP
// would block it anyway, and the page must work offline), and nothing
// uses inline code the CSP forbids.
func TestLoadsNothingFromElsewhere(t *testing.T) {
	url := regexp.MustCompile(`(?i)\b(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	allowed := map[string]bool{"http://www.w3.org": true} // SVG's XML namespace, not a fetch
	inline := regexp.MustCompile(`(?i)<script>|<style|\sstyle=|\son[a-z]+=|javascript:|innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`)
	_ = fs.WalkDir(FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(FS(), p)
		for _, m := range url.FindAll(b, -1) {
			if !allowed[strings.ToLower(string(m))] {
				t.Errorf("%s names another origin: %s", p, m)
			}
		}
		if p != "favicon.svg" {
			// Comments may say what is not done; code may not do it.
			code := regexp.MustCompile(`(?m)^\s*//.*$`).ReplaceAll(b, nil)
			for _, m := range inline.FindAll(code, -1) {
				t.Errorf("%s uses %q, which the Content-Security-Policy forbids or which would let payload text run", p, m)
			}
		}
		return nil
	})
}

func TestHandler(t *testing.T) {
	h := Handler()
	get := func(method, path string, header map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	for _, c := range []struct {
		method, path string
		status       int
		ctype        string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8"},
		{"HEAD", "/", 200, "text/html; charset=utf-8"},
		{"GET", "/app.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/app.css", 200, "text/css; charset=utf-8"},
		{"GET", "/favicon.svg", 200, "image/svg+xml"},
		{"GET", "/index.html", 404, ""},
		{"GET", "/../embed.go", 404, ""},
		{"GET", "/static/app.js", 404, ""},
		{"POST", "/", 405, ""},
	} {
		w := get(c.method, c.path, nil)
		if w.Code != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, w.Code, c.status)
		}
		if c.ctype != "" && w.Header().Get("Content-Type") != c.ctype {
			t.Errorf("%s %s: Content-Type %q, want %q", c.method, c.path, w.Header().Get("Content-Type"), c.ctype)
		}
		if w.Header().Get("Content-Security-Policy") != ContentSecurityPolicy || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: security headers missing: %v", c.method, c.path, w.Header())
		}
	}
	w := get("GET", "/app.js", nil)
	tag := w.Header().Get("ETag")
	if tag == "" || w.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("app.js: ETag %q Cache-Control %q", tag, w.Header().Get("Cache-Control"))
	}
	if w := get("GET", "/app.js", map[string]string{"If-None-Match": tag}); w.Code != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", w.Code)
	}
}

func TestWithAPI(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api "+r.URL.Path) })
	h := WithAPI(api)
	for path, want := range map[string]string{
		"/api/stats":      "api /api/stats",
		"/api/events/x":   "api /api/events/x",
		"/health":         "api /health",
		"/api":            "api /api",
		"/":               "<!doctype html>",
		"/apis":           "not found",
		"/healthz":        "not found",
		"/favicon.svg":    "<svg",
		"/api-docs/x.txt": "not found",
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if !strings.HasPrefix(w.Body.String(), want) {
			t.Errorf("%s: %.40q, want %q...", path, w.Body.String(), want)
		}
	}
}
