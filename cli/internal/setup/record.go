package setup

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Record is setup's own account of what it changed, kept in the Kilometers
// home: undo works from it, never from guessing which entries look wrapped.
type Record struct {
	Version int          `json:"version"`
	Files   []FileRecord `json:"files"`
}

// FileRecord is one file setup changed.
type FileRecord struct {
	Path   string `json:"path"`
	Client string `json:"client"`
	Scope  Scope  `json:"scope"`
	Format Format `json:"format"`
	// Key and Projects say where the servers are in the file, so undo
	// reads it the way setup did even if the environment changed since.
	Key      string `json:"key"`
	Projects bool   `json:"projects,omitempty"`
	// Backup is the copy of the file taken before setup's first change.
	Backup string `json:"backup"`
	// Exact is true while the file holds nothing but Backup plus setup's
	// own wraps, as far as setup knows: every later change setup made
	// started from the bytes it had written itself.
	Exact bool `json:"exact"`
	// Written is the SHA-256 of the bytes setup last wrote.
	Written string `json:"written_sha256"`
	// Servers are the entries setup wrapped.
	Servers []WrapRecord `json:"servers"`
}

// WrapRecord is one wrapped entry.
type WrapRecord struct {
	Ref
	// ArgsAdded is true when the entry had no args before setup.
	ArgsAdded bool      `json:"args_added,omitempty"`
	At        time.Time `json:"at"`
}

func (r *Record) file(path string) *FileRecord {
	for i := range r.Files {
		if r.Files[i].Path == path {
			return &r.Files[i]
		}
	}
	return nil
}

func (r *Record) drop(path string) {
	for i := range r.Files {
		if r.Files[i].Path == path {
			r.Files = append(r.Files[:i], r.Files[i+1:]...)
			return
		}
	}
}

func (f *FileRecord) location() Location {
	return Location{Client: f.Client, Scope: f.Scope, Path: f.Path, Format: f.Format, Key: f.Key, Projects: f.Projects}
}

func (f *FileRecord) wrap(ref Ref) *WrapRecord {
	for i := range f.Servers {
		if f.Servers[i].Ref == ref {
			return &f.Servers[i]
		}
	}
	return nil
}

func setupDir(home string) string   { return filepath.Join(home, "setup") }
func recordPath(home string) string { return filepath.Join(setupDir(home), "record.json") }
func lockPath(home string) string   { return filepath.Join(setupDir(home), "lock") }
func backupDir(home string) string  { return filepath.Join(setupDir(home), "backups") }

// LoadRecord reads the record; a missing one is empty.
func LoadRecord(home string) (*Record, error) {
	b, err := os.ReadFile(recordPath(home))
	if errors.Is(err, fs.ErrNotExist) {
		return &Record{Version: 1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read setup record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("setup record %s is damaged (%w); the backups beside it still hold every file's original", recordPath(home), err)
	}
	return &r, nil
}

func saveRecord(home string, r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(setupDir(home), 0o700); err != nil {
		return fmt.Errorf("save setup record: %w", err)
	}
	return writeAtomic(recordPath(home), append(b, '\n'), 0o600)
}

// backup copies data into the backups folder under a name that tells the
// time, the client and the file.
func backup(home string, now time.Time, client, path string, data []byte) (string, error) {
	dir := backupDir(home)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("back up %s: %w", path, err)
	}
	base := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' {
			return '_'
		}
		return r
	}, filepath.Base(path))
	stamp := now.UTC().Format("20060102T150405.000000000Z")
	name := filepath.Join(dir, stamp+"-"+client+"-"+base)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("back up %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", fmt.Errorf("back up %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("back up %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("back up %s: %w", path, err)
	}
	return name, nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
