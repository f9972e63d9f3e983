package defs_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kilometers-ai/kilometers/cli/internal/defs"
)

// helperEnv, when set, turns the test binary into one monitor process that
// saves and loads the shared key (see TestConcurrentSavesAcrossProcesses).
const helperEnv = "KILOMETERS_DEFS_HELPER_HOME"

func TestMain(m *testing.M) {
	if home := os.Getenv(helperEnv); home != "" {
		if err := hammer(home, os.Getenv("KILOMETERS_DEFS_HELPER_ID")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// hammer saves complete definitions and checks every load is complete.
func hammer(home, id string) error {
	s := defs.New(home)
	ctx := context.Background()
	for i := range 100 {
		d := map[string]string{}
		for j := range 30 {
			d[fmt.Sprintf("tool%d", j)] = fmt.Sprintf("p%s-i%d-%s", id, i, strings.Repeat("x", 64))
		}
		if err := s.Save(ctx, "shared", d); err != nil {
			return err
		}
		got, found, err := s.Load(ctx, "shared")
		if err != nil {
			return err
		}
		if !found || len(got) != 30 {
			return fmt.Errorf("torn read: found %v, %d tools", found, len(got))
		}
	}
	return nil
}

// Monitors are separate processes, not goroutines: several of them saving
// the same server's definitions at once must never leave a torn or
// unreadable file, nor temp files behind.
func TestConcurrentSavesAcrossProcesses(t *testing.T) {
	home := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for p := range 4 {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+home, fmt.Sprintf("KILOMETERS_DEFS_HELPER_ID=%d", p))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("process %d: %v: %s", p, err, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	entries, err := os.ReadDir(filepath.Join(home, defs.Dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		t.Errorf("files left: %v, want the one definitions file", names)
	}
}

// A home where the definitions directory cannot be made: Save reports it,
// wrapped with what it was doing, and Load of that key still finds nothing.
func TestSaveFailsWhenDirectoryIsBlocked(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, defs.Dir), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := defs.New(home)
	err := s.Save(context.Background(), "k", map[string]string{"a": "1"})
	if err == nil || !strings.Contains(err.Error(), "save tool definitions") {
		t.Fatalf("Save = %v, want a save tool definitions error", err)
	}
	if _, found, err := s.Load(context.Background(), "k"); found || err == nil {
		t.Errorf("Load after a failed save: found %v, err %v; want an error (not a directory)", found, err)
	}
}

func TestCancelledContext(t *testing.T) {
	s := defs.New(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Save(ctx, "k", map[string]string{"a": "1"}); err == nil {
		t.Error("Save with a cancelled context succeeded")
	}
	if _, _, err := s.Load(ctx, "k"); err == nil {
		t.Error("Load with a cancelled context succeeded")
	}
}

// A file written by another version of the store is no reference: Load
// reports nothing found rather than every tool as changed.
func TestOtherVersionIsNotFound(t *testing.T) {
	home := t.TempDir()
	s := defs.New(home)
	ctx := context.Background()
	if err := s.Save(ctx, "k", map[string]string{"a": "1"}); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(home, defs.Dir))
	if err != nil || len(entries) != 1 {
		t.Fatalf("entries %v, err %v", entries, err)
	}
	p := filepath.Join(home, defs.Dir, entries[0].Name())
	if err := os.WriteFile(p, []byte(`{"version": 99, "tools": {"a": "2"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, found, err := s.Load(ctx, "k"); err != nil || found || got != nil {
		t.Errorf("Load of a version 99 file = %v, %v, %v; want nothing found", got, found, err)
	}
}
