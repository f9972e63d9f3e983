// Command gendocs writes the kilometers man pages and shell completions for
// release packages (.goreleaser.yaml runs it before building):
//
//	go run ./cli/internal/cmd/gendocs -out bin/release -version 1.2.3 -date 2026-11-22T12:00:00Z
//
// writes <out>/man/kilometers*.1.gz and <out>/completions/kilometers.{bash,zsh,fish}.
// It is not part of the kilometers binary.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra/doc"

	"github.com/kilometers-ai/kilometers/cli/internal/cmd/root"
	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
)

func main() {
	out := flag.String("out", "bin/release", "directory to write man/ and completions/ into")
	version := flag.String("version", "dev", "version shown in the man pages")
	date := flag.String("date", "", "date shown in the man pages (RFC 3339; default $SOURCE_DATE_EPOCH or now)")
	flag.Parse()

	when, err := manDate(*date, os.Getenv("SOURCE_DATE_EPOCH"))
	if err == nil {
		err = Generate(*out, *version, when)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

func manDate(flagDate, epoch string) (time.Time, error) {
	switch {
	case flagDate != "":
		return time.Parse(time.RFC3339, flagDate)
	case epoch != "":
		var sec int64
		if _, err := fmt.Sscan(epoch, &sec); err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", epoch, err)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	return time.Now().UTC(), nil
}

// Generate writes the man pages and completions of the kilometers command
// tree into dir.
func Generate(dir, version string, date time.Time) error {
	cmd := root.NewCmd(cmdutil.NewFactory(cmdutil.BuildInfo{Version: version, Commit: "none", Date: date.Format(time.RFC3339)}))
	cmd.DisableAutoGenTag = true
	cmd.InitDefaultCompletionCmd()

	manDir := filepath.Join(dir, "man")
	compDir := filepath.Join(dir, "completions")
	for _, d := range []string{manDir, compDir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}

	raw, err := os.MkdirTemp("", "kilometers-man-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(raw)
	hdr := &doc.GenManHeader{
		Title:   "KILOMETERS",
		Section: "1",
		Source:  "Kilometers " + version,
		Manual:  "Kilometers Manual",
		Date:    &date,
	}
	if err := doc.GenManTree(cmd, hdr, raw); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	pages, err := filepath.Glob(filepath.Join(raw, "*.1"))
	if err != nil {
		return err
	}
	for _, p := range pages {
		if err := gzipFile(p, filepath.Join(manDir, filepath.Base(p)+".gz"), date); err != nil {
			return err
		}
	}

	for name, gen := range map[string]func(io.Writer) error{
		"kilometers.bash": func(w io.Writer) error { return cmd.GenBashCompletionV2(w, true) },
		"kilometers.zsh":  cmd.GenZshCompletion,
		"kilometers.fish": func(w io.Writer) error { return cmd.GenFishCompletion(w, true) },
	} {
		var b bytes.Buffer
		if err := gen(&b); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(compDir, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// gzipFile compresses src into dst with a fixed header, so the same input
// gives the same bytes (reproducible packages).
func gzipFile(src, dst string, date time.Time) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return err
	}
	zw.Name = strings.TrimSuffix(filepath.Base(dst), ".gz")
	zw.ModTime = date
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(dst, b.Bytes(), 0o644)
}
