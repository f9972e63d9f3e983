package setup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// Filter picks what an operation touches; the zero Filter is everything.
type Filter struct {
	// Client is a client ID (see ClientIDs); empty means every client.
	Client string
	// Server is a server's key in the config; empty means every server.
	Server string
	// Project, when set, limits ~/.claude.json's per-project entries to
	// that directory's.
	Project string
}

func (f Filter) validate() error {
	if f.Client != "" {
		if _, ok := ClientByID(f.Client); !ok {
			return fmt.Errorf("unknown client %q (known: %s)", f.Client, strings.Join(ClientIDs(), ", "))
		}
	}
	return nil
}

func (f Filter) wants(s Server) bool {
	if f.Server != "" && s.Name != f.Server {
		return false
	}
	return f.Project == "" || s.Section == "" || s.Section == f.Project
}

// File is one client config file found on the machine.
type File struct {
	Location
	ClientName string   `json:"client_name"`
	Servers    []Server `json:"servers"`
	// Error says why the file could not be read or parsed (with
	// file:line:column for a syntax error); setup never writes it then.
	Error string `json:"error,omitempty"`
	// Running is true when the client seems to be running.
	Running bool `json:"client_running,omitempty"`
}

// Wrapped counts the file's wrapped servers and those setup could wrap.
func (f File) Wrapped() (wrapped, wrappable int) {
	for _, s := range f.Servers {
		if s.Wrapped {
			wrapped++
		}
		if s.Unwrappable == "" {
			wrappable++
		}
	}
	return wrapped, wrappable
}

// Status is what `kilometers doctor` reports of the MCP clients: every
// config file found on the machine, its servers and which of them already
// run through the monitor.
func Status(env Env) []File {
	files, _ := Scan(env, Filter{})
	return files
}

// Scan reads every config file of the clients f selects that exists.
func Scan(env Env, f Filter) ([]File, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	running := runningClients(env)
	var out []File
	for _, loc := range Locations(env) {
		if f.Client != "" && loc.Client != f.Client {
			continue
		}
		data, err := os.ReadFile(loc.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		file := newFile(loc, running)
		if err != nil {
			file.Error = err.Error()
			out = append(out, file)
			continue
		}
		doc, err := parseDocument(loc, data, env.Executable)
		if err != nil {
			file.Error = err.Error()
			out = append(out, file)
			continue
		}
		for _, s := range doc.servers() {
			if f.wants(s) {
				file.Servers = append(file.Servers, s)
			}
		}
		out = append(out, file)
	}
	return out, nil
}

func newFile(loc Location, running map[string]bool) File {
	c, _ := ClientByID(loc.Client)
	return File{Location: loc, ClientName: c.Name, Running: running[loc.Client]}
}

// runningClients tells which clients have a process running, by name; an
// empty map when it cannot tell.
func runningClients(env Env) map[string]bool {
	out := map[string]bool{}
	if env.Processes == nil {
		return out
	}
	names, err := env.Processes()
	if err != nil {
		return out
	}
	for _, c := range knownClients() {
		for _, p := range c.Processes {
			if slices.Contains(names, p) {
				out[c.ID] = true
			}
		}
	}
	return out
}

// Change is what setup will do (or did) to one file.
type Change struct {
	File File
	Undo bool
	// Before is the file as read; After what setup writes.
	Before, After []byte
	// Changed are the entries wrapped (or unwrapped).
	Changed []Ref
	// Notes tell of entries left alone, and why.
	Notes []string
	// Err is set when the file is refused: it is not written.
	Err error
	// Restored is true for an undo that put back the backup byte for byte.
	Restored bool
	// Backup is the copy taken before writing.
	Backup string
	// Replanned is true when the file changed between Plan and Apply (a
	// client wrote it) and the change was worked out again from it.
	Replanned bool

	argsAdded map[Ref]bool
	forget    []Ref // recorded entries that are no longer wrapped
	filter    Filter
}

// Diff is the change as a unified diff; empty when nothing changes.
func (c *Change) Diff() string { return unifiedDiff(c.File.Path, c.Before, c.After) }

// Pending is true when applying the change would write the file.
func (c *Change) Pending() bool {
	return c.Err == nil && !bytes.Equal(c.Before, c.After) && (c.Undo || len(c.Changed) > 0)
}

// RestartNote says what the user must do for the client to see the change.
func (c *Change) RestartNote() string {
	cl, _ := ClientByID(c.File.Client)
	if !c.File.Running {
		return ""
	}
	note := cl.Name + " seems to be running: restart it to load the change."
	if cl.RewritesConfig {
		note += " It rewrites " + c.File.Path + " often while it runs, which can undo this edit: quit it, or check with 'kilometers setup' after it exits."
	}
	return note
}

// Plan works out, without writing anything, what setup (or, with undo,
// setup --undo) does to each file f selects.
func Plan(env Env, undo bool, f Filter) ([]*Change, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	if !undo && env.Executable == "" {
		return nil, errors.New("the kilometers binary's path is unknown")
	}
	rec, err := LoadRecord(env.Home)
	if err != nil {
		return nil, err
	}
	running := runningClients(env)
	var changes []*Change
	if undo {
		for i := range rec.Files {
			fr := &rec.Files[i]
			if f.Client != "" && fr.Client != f.Client {
				continue
			}
			c := &Change{File: newFile(fr.location(), running), Undo: true, filter: f}
			planUndo(env, c, fr)
			changes = append(changes, c)
		}
		return changes, nil
	}
	for _, loc := range Locations(env) {
		if f.Client != "" && loc.Client != f.Client {
			continue
		}
		data, err := os.ReadFile(loc.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		c := &Change{File: newFile(loc, running), filter: f}
		if err != nil {
			c.Err = err
		} else {
			planWrap(env, rec, c, data)
		}
		changes = append(changes, c)
	}
	// A file that could not be read may hold the server: its refusal is
	// the report then.
	if f.Server != "" && !slices.ContainsFunc(changes, func(c *Change) bool {
		return c.Err != nil || slices.ContainsFunc(c.File.Servers, func(s Server) bool { return s.Name == f.Server })
	}) {
		return changes, fmt.Errorf("no server named %q in %s", f.Server, clientsPhrase(f.Client))
	}
	return changes, nil
}

func clientsPhrase(id string) string {
	if c, ok := ClientByID(id); ok {
		return c.Name + "'s config files"
	}
	return "any client's config files"
}

func planWrap(env Env, rec *Record, c *Change, data []byte) {
	c.Before, c.After, c.Changed, c.Notes, c.Err = data, data, nil, nil, nil
	c.argsAdded = map[Ref]bool{}
	doc, err := parseDocument(c.File.Location, data, env.Executable)
	if err != nil {
		c.Err = err
		return
	}
	c.File.Servers = c.File.Servers[:0]
	for _, s := range doc.servers() {
		if !c.filter.wants(s) {
			continue
		}
		c.File.Servers = append(c.File.Servers, s)
		switch {
		case s.Unwrappable != "":
			c.Notes = append(c.Notes, fmt.Sprintf("%s: not wrapped: %s", label(s.Ref()), s.Unwrappable))
		case s.Wrapped && s.Command != env.Executable && recorded(rec, c.File.Path, s.Ref()) && !exists(s.Command):
			// Setup's own wrap, pointing at a kilometers binary that has
			// gone (moved, reinstalled elsewhere): point it at this one.
			if err := doc.setCommand(s.Ref(), env.Executable); err != nil {
				c.Err = fmt.Errorf("%s: %w", c.File.Path, err)
				return
			}
			c.Notes = append(c.Notes, fmt.Sprintf("%s: wrapped by %s, which is gone; now %s", label(s.Ref()), s.Command, env.Executable))
			c.Changed = append(c.Changed, s.Ref())
		case s.Wrapped:
			c.Notes = append(c.Notes, fmt.Sprintf("%s: already wrapped", label(s.Ref())))
		default:
			added, err := doc.wrap(s.Ref(), env.Executable)
			if err != nil {
				c.Err = fmt.Errorf("%s: %w", c.File.Path, err)
				return
			}
			c.argsAdded[s.Ref()] = added
			c.Changed = append(c.Changed, s.Ref())
		}
	}
	c.After = doc.bytes()
}

func label(r Ref) string { return r.String() }

func recorded(rec *Record, path string, ref Ref) bool {
	fr := rec.file(path)
	return fr != nil && fr.wrap(ref) != nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// String names the entry for people: its key, and its project for
// ~/.claude.json's per-project entries.
func (r Ref) String() string {
	if r.Section != "" {
		return r.Name + " (project " + r.Section + ")"
	}
	return r.Name
}

func planUndo(env Env, c *Change, fr *FileRecord) {
	data, err := os.ReadFile(fr.Path)
	if errors.Is(err, fs.ErrNotExist) {
		c.Notes = append(c.Notes, "the file no longer exists: nothing to undo")
		for _, w := range fr.Servers {
			if c.filter.wants(Server{Section: w.Section, Name: w.Name}) {
				c.forget = append(c.forget, w.Ref)
			}
		}
		return
	}
	if err != nil {
		c.Err = err
		return
	}
	undoBytes(env, c, fr, data)
}

func undoBytes(env Env, c *Change, fr *FileRecord, data []byte) {
	c.Before, c.After, c.Changed, c.Notes, c.forget, c.Err, c.Restored = data, data, nil, nil, nil, nil, false
	doc, err := parseDocument(c.File.Location, data, env.Executable)
	if err != nil {
		c.Err = err
		return
	}
	c.File.Servers = doc.servers()
	all := true
	for _, w := range fr.Servers {
		if !c.filter.wants(Server{Section: w.Section, Name: w.Name}) {
			all = false
			continue
		}
		err := doc.unwrap(w.Ref, w.ArgsAdded)
		switch {
		case err == nil:
			c.Changed = append(c.Changed, w.Ref)
		case errors.Is(err, errNotWrapped):
			c.Notes = append(c.Notes, fmt.Sprintf("%s: no longer wrapped; left as it is", label(w.Ref)))
			c.forget = append(c.forget, w.Ref)
		default:
			c.Notes = append(c.Notes, fmt.Sprintf("%s: %v; left as it is", label(w.Ref), err))
			c.forget = append(c.forget, w.Ref)
		}
	}
	c.After = doc.bytes()
	// Untouched since setup wrote it: the backup is the file as it was,
	// byte for byte (the unwrap above should agree; the backup is the
	// authority).
	if all && fr.Exact && fr.Written == sum(data) {
		if b, err := os.ReadFile(fr.Backup); err == nil {
			c.After, c.Restored = b, true
		}
	}
}

// Apply carries out the changes: for each file it re-reads it, plans again
// if it changed since Plan read it, keeps a backup, writes atomically and
// updates the record. A file that fails gets its Err set; the others are
// still done. The error is for what stops every file (the record, the lock).
func Apply(env Env, changes []*Change) error {
	if err := os.MkdirAll(setupDir(env.Home), 0o700); err != nil {
		return fmt.Errorf("setup folder: %w", err)
	}
	lock := flock.New(lockPath(env.Home))
	if err := lock.Lock(); err != nil {
		return fmt.Errorf("lock %s: %w", lockPath(env.Home), err)
	}
	defer lock.Unlock()
	rec, err := LoadRecord(env.Home)
	if err != nil {
		return err
	}
	now := time.Now
	if env.Now != nil {
		now = env.Now
	}
	for _, c := range changes {
		if c.Err != nil {
			continue
		}
		if err := apply(env, rec, c, now()); err != nil {
			c.Err = err
		}
	}
	return nil
}

func apply(env Env, rec *Record, c *Change, now time.Time) error {
	fr := rec.file(c.File.Path)
	if c.Undo && fr == nil {
		return errors.New("no record of this file any more (another setup --undo ran?)")
	}
	path, err := filepath.EvalSymlinks(c.File.Path)
	if errors.Is(err, fs.ErrNotExist) && c.Undo {
		return forget(env, rec, c, fr)
	}
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	// Read again right before writing: a running client may have written
	// the file since it was planned, and its edit must not be lost.
	cur, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.Equal(cur, c.Before) {
		if c.Undo {
			undoBytes(env, c, fr, cur)
		} else {
			planWrap(env, rec, c, cur)
		}
		if c.Err != nil {
			return c.Err
		}
		c.Replanned = true
	}
	if bytes.Equal(c.Before, c.After) || (!c.Undo && len(c.Changed) == 0) {
		return forget(env, rec, c, fr)
	}
	bk, err := backup(env.Home, now, c.File.Client, c.File.Path, cur)
	if err != nil {
		return err
	}
	c.Backup = bk
	if err := writeAtomic(path, c.After, fi.Mode()); err != nil {
		return err
	}
	if c.Undo {
		fr.Servers = slices.DeleteFunc(fr.Servers, func(w WrapRecord) bool {
			return slices.Contains(c.Changed, w.Ref) || slices.Contains(c.forget, w.Ref)
		})
		if len(fr.Servers) == 0 {
			rec.drop(c.File.Path)
		} else {
			fr.Written = sum(c.After)
		}
		return saveRecord(env.Home, rec)
	}
	if fr == nil || len(fr.Servers) == 0 {
		rec.drop(c.File.Path)
		l := c.File.Location
		rec.Files = append(rec.Files, FileRecord{Path: l.Path, Client: l.Client, Scope: l.Scope, Format: l.Format, Key: l.Key, Projects: l.Projects, Backup: bk, Exact: true})
		fr = &rec.Files[len(rec.Files)-1]
	} else if fr.Written != sum(cur) {
		fr.Exact = false
	}
	for _, ref := range c.Changed {
		if fr.wrap(ref) == nil {
			fr.Servers = append(fr.Servers, WrapRecord{Ref: ref, ArgsAdded: c.argsAdded[ref], At: now.UTC()})
		}
	}
	fr.Written = sum(c.After)
	return saveRecord(env.Home, rec)
}

// forget drops from the record the entries an undo found already gone.
func forget(env Env, rec *Record, c *Change, fr *FileRecord) error {
	if !c.Undo || fr == nil || len(c.forget) == 0 {
		return nil
	}
	fr.Servers = slices.DeleteFunc(fr.Servers, func(w WrapRecord) bool { return slices.Contains(c.forget, w.Ref) })
	if len(fr.Servers) == 0 {
		rec.drop(c.File.Path)
	}
	return saveRecord(env.Home, rec)
}
