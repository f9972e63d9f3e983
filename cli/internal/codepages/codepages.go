// Package codepages releases the resident pages of the running binary's
// code that startup touched and the rest of the process will not need.
//
// Go runs every package's initialisation before main, and the kernel maps
// a file page with its neighbours (fault-around, 64 KiB at a time), so a
// process that only relays a pipe still starts with most of a 12 MB
// binary's text and read-only data in its resident set. The monitor runs
// for hours beside every MCP server, so it gives those pages back once
// startup is over: they stay in the page cache, shared, and the few the
// relay uses come back on their first touch.
package codepages

// Release drops the resident pages of the executable's read-only file
// mappings (text, read-only data) that hold nothing private, and returns
// how many KiB were resident in them before. It never touches writable
// mappings or a page the process has written (copy-on-write), so nothing
// can be lost; where the platform has no such control it does nothing.
func Release() (int64, error) { return release() }

// Releaser releases the same pages again and again: the ranges are found
// once, so each later release is a few system calls instead of a walk of
// the whole memory map.
//
// Released once, the pages a long-running monitor touches come back and
// stay: rarer paths (a collection's stack walk, a segment sealed, a large
// result recorded) make more of the binary resident over a session, 64 KiB
// around each touch, until its file-backed pages were twice what it uses
// in any second. Released again now and then, the resident set is what the
// last interval touched.
type Releaser struct{ r releaser }

// NewReleaser releases the pages as Release does and returns a Releaser
// for those same ranges, and how many KiB were resident in them before.
func NewReleaser() (*Releaser, int64, error) {
	r, kb, err := newReleaser()
	return &Releaser{r: r}, kb, err
}

// Again releases the ranges once more. It does nothing while a debugger
// traces the process: the breakpoints it wrote are private pages in them.
func (r *Releaser) Again() error { return r.r.again() }
