package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGenerateWritesManPagesAndCompletions(t *testing.T) {
	date := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	if err := Generate(dir, "1.2.3", date); err != nil {
		t.Fatal(err)
	}

	for _, page := range []string{"kilometers.1.gz", "kilometers-monitor.1.gz", "kilometers-stats.1.gz", "kilometers-activity.1.gz"} {
		f, err := os.Open(filepath.Join(dir, "man", page))
		if err != nil {
			t.Fatalf("man page: %v", err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", page, err)
		}
		text, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", page, err)
		}
		if !zr.ModTime.Equal(date) || zr.Name != strings.TrimSuffix(page, ".gz") {
			t.Errorf("%s: gzip header name %q mtime %v, want fixed values for reproducible packages", page, zr.Name, zr.ModTime)
		}
		if !bytes.Contains(text, []byte(`.TH "KILOMETERS" "1" "Nov 2026" "Kilometers 1.2.3"`)) {
			t.Errorf("%s: no .TH header with the version and date:\n%.300s", page, text)
		}
	}

	for name, want := range map[string]string{
		"kilometers.bash": "__start_kilometers",
		"kilometers.zsh":  "#compdef kilometers",
		"kilometers.fish": "complete -c kilometers",
	} {
		b, err := os.ReadFile(filepath.Join(dir, "completions", name))
		if err != nil {
			t.Fatalf("completion: %v", err)
		}
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s lacks %q", name, want)
		}
	}
}

func TestGenerateIsReproducible(t *testing.T) {
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a, b := t.TempDir(), t.TempDir()
	// Stale files from an earlier run must not survive.
	if err := os.MkdirAll(filepath.Join(b, "man"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "man", "stale.1.gz"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{a, b} {
		if err := Generate(dir, "0.1.0", date); err != nil {
			t.Fatal(err)
		}
	}
	files := func(root string) map[string]string {
		out := map[string]string{}
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			out[rel] = string(data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	fa, fb := files(a), files(b)
	if len(fa) != len(fb) {
		t.Fatalf("%d files vs %d files (stale file kept?)", len(fa), len(fb))
	}
	for name, data := range fa {
		if fb[name] != data {
			t.Errorf("%s differs between two runs with the same inputs", name)
		}
	}
}

func TestManDate(t *testing.T) {
	cases := []struct {
		name, flag, epoch string
		want              time.Time
		wantErr           bool
	}{
		{"flag", "2026-11-22T12:00:00Z", "1", time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), false},
		{"epoch", "", "1700000000", time.Unix(1700000000, 0).UTC(), false},
		{"bad flag", "yesterday", "", time.Time{}, true},
		{"bad epoch", "", "soon", time.Time{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := manDate(tc.flag, tc.epoch)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && !got.Equal(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if got, err := manDate("", ""); err != nil || time.Since(got) > time.Hour {
		t.Errorf("no flag, no epoch: %v, %v; want now", got, err)
	}
}

func TestGenerateFailsOnUnwritableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Generate(filepath.Join(file, "out"), "1", time.Now()); err == nil {
		t.Fatal("Generate into a path under a regular file succeeded")
	}
}
