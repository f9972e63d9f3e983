// Package webui holds the dashboard's browser files (static/: one HTML
// page, its stylesheet and its script, no third-party code) embedded in
// the binaries that serve it, so that `go build` and `go install` need no
// Node toolchain and the page loads nothing from anywhere else.
//
// The page reads only the public JSON API (GET /api/stats, /api/activity,
// /api/sessions, /api/events/{id}); whoever serves these files also serves
// those routes on the same origin. See docs/dashboard.md.
package webui

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// FS returns the page's files, rooted at the directory that holds
// index.html.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// fs.Sub fails only on an invalid name, and "static" is valid.
		panic(err)
	}
	return sub
}
