//go:build !windows

package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestSyncDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want error // nil: it syncs
	}{
		{"a directory", dir, nil},
		{"a missing one", filepath.Join(dir, "missing"), syscall.ENOENT},
		{"a file", file, syscall.ENOTDIR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := syncDir(tt.path)
			if !errors.Is(err, tt.want) || (err != nil && !strings.Contains(err.Error(), tt.path)) {
				t.Errorf("syncDir(%s) = %v, want %v naming the path", tt.path, err, tt.want)
			}
		})
	}
}
