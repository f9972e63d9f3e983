// Package defs is the local store of tool-definition hashes that rug-pull
// detection compares against (analysis.DefinitionStore): one small JSON file
// per server under <home>/definitions/.
//
// Several monitors of the same server may run at once (one per client
// window), in separate processes. Every save writes a complete file beside
// the target and renames it into place, so a reader sees the old file or
// the new one, never half of either; when two monitors save at once the
// last rename wins, which is fine: both hold the server's current
// definitions. No lock is taken: load-compare-save is not atomic across
// monitors, and the worst an interleaving does is report a change in every
// session that saw it rather than in the first one only; a lock held
// across a server's start-up would cost more than that.
package defs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kilometers-ai/kilometers/shared/analysis"
)

// Dir is the store's directory under the Kilometers home.
const Dir = "definitions"

// Store keeps definition hashes as files under a directory.
type Store struct {
	dir string
}

var _ analysis.DefinitionStore = (*Store)(nil)

// New returns the store under home (the Kilometers home directory). The
// directory is created on first save.
func New(home string) *Store {
	return &Store{dir: filepath.Join(home, Dir)}
}

// file is the on-disk form. The key itself is not written: it holds the
// server's command line, which may carry tokens; its hash names the file.
type file struct {
	Version   int               `json:"version"`
	UpdatedAt time.Time         `json:"updated_at"`
	Tools     map[string]string `json:"tools"`
}

const fileVersion = 1

func (s *Store) path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(s.dir, hex.EncodeToString(sum[:16])+".json")
}

// Load returns the definitions saved under key; found is false when there
// are none.
func (s *Store) Load(ctx context.Context, key string) (map[string]string, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	b, err := os.ReadFile(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("load tool definitions: %w", err)
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, false, fmt.Errorf("load tool definitions %s: %w", s.path(key), err)
	}
	if f.Version != fileVersion {
		// A file from another version is no reference: start over rather
		// than report every tool as changed.
		return nil, false, nil
	}
	if f.Tools == nil {
		f.Tools = map[string]string{}
	}
	return f.Tools, true, nil
}

// Save replaces the definitions saved under key, atomically.
func (s *Store) Save(ctx context.Context, key string, defs map[string]string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(file{Version: fileVersion, UpdatedAt: time.Now().UTC(), Tools: defs}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("save tool definitions: %w", err)
	}
	// CreateTemp makes the file 0600 with a unique name, so concurrent
	// savers never write into each other's temp file.
	tmp, err := os.CreateTemp(s.dir, ".defs-*.tmp")
	if err != nil {
		return fmt.Errorf("save tool definitions: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save tool definitions: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save tool definitions: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save tool definitions: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path(key)); err != nil {
		return fmt.Errorf("save tool definitions: %w", err)
	}
	return nil
}
