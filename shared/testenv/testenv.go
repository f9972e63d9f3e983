// Package testenv finds the real parts integration tests need: PostgreSQL
// and the MCP servers from npm. A missing part fails the test with what to
// run; it never skips, so a green run means the integration tests ran.
package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultDatabaseURL is the server these machines run (trust auth).
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// DatabaseURL returns $DATABASE_URL (or DefaultDatabaseURL) after checking
// that the server answers.
func DatabaseURL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		url = DefaultDatabaseURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatalf("integration test needs PostgreSQL at DATABASE_URL (%s): %v\n"+
			"Run the tests with `make test`, which starts a throwaway cluster when none is running.", url, err)
	}
	conn.Close(ctx)
	return url
}

// RepoRoot returns the repository's top directory.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot locate the repository")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// NPMServer returns the command line that starts an MCP server installed from
// npm by `make deps` (infra/testservers), e.g. "mcp-server-everything".
func NPMServer(tb testing.TB, bin string, args ...string) []string {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		tb.Fatalf("integration test needs node on PATH to run %s (apt-get install nodejs npm; then make deps)", bin)
	}
	p := filepath.Join(RepoRoot(tb), "infra", "testservers", "node_modules", ".bin", bin)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("integration test needs %s from npm: run `make deps` (npm ci in infra/testservers): %v", bin, err)
	}
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		tb.Fatalf("resolve %s: %v", p, err)
	}
	return append([]string{node, resolved}, args...)
}

// BuildCLI builds the kilometers binary into a temporary directory and
// returns its path.
func BuildCLI(tb testing.TB) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "kilometers")
	if runtime.GOOS == "windows" {
		out += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", out, "./cli")
	cmd.Dir = RepoRoot(tb)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build ./cli: %v\n%s", err, b)
	}
	return out
}
