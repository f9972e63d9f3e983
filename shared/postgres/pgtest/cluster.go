package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PasswordCluster is a throwaway PostgreSQL server that checks passwords
// (scram-sha-256) on TCP, unlike the trust-auth server tests share: for
// tests of what happens when a password changes.
type PasswordCluster struct {
	// Host and Port are where it listens (TCP, loopback).
	Host string
	Port int
	// AdminDSN connects as the superuser, over the unix socket (trust).
	AdminDSN string
}

// StartPasswordCluster runs initdb and starts the server, stopping and
// removing it at cleanup. It needs PostgreSQL's server binaries
// (apt-get install postgresql), as infra/local/with-postgres.sh does.
func StartPasswordCluster(tb testing.TB) *PasswordCluster {
	tb.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		tb.Fatal("test needs PostgreSQL's server binaries (apt-get install postgresql): no /usr/lib/postgresql/*/bin/initdb")
	}
	sort.Strings(bins)
	bin := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "km-pgpw-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	var as []string
	if os.Geteuid() == 0 { // initdb refuses to run as root
		as = []string{"runuser", "-u", "postgres", "--"}
		if err := os.Chmod(dir, 0o777); err != nil {
			tb.Fatal(err)
		}
	}
	run := func(name string, args ...string) {
		tb.Helper()
		full := append(append(append([]string{}, as...), filepath.Join(bin, name)), args...)
		if out, err := exec.Command(full[0], full[1:]...).CombinedOutput(); err != nil {
			tb.Fatalf("%s: %v\n%s", name, err, out)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	data := filepath.Join(dir, "data")
	run("initdb", "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8")
	run("pg_ctl", "-D", data, "-o", fmt.Sprintf("-k %s -p %d -c listen_addresses=127.0.0.1 -c fsync=off", dir, port),
		"-l", filepath.Join(dir, "log"), "-w", "start")
	tb.Cleanup(func() {
		full := append(append(append([]string{}, as...), filepath.Join(bin, "pg_ctl")), "-D", data, "-m", "immediate", "stop")
		_ = exec.Command(full[0], full[1:]...).Run()
	})
	c := &PasswordCluster{Host: "127.0.0.1", Port: port,
		AdminDSN: fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d&sslmode=disable", dir, port)}
	return c
}

// SetPassword creates a login role with a password (or changes the
// password of an existing one) and lets it use database postgres.
func (c *PasswordCluster) SetPassword(tb testing.TB, role, password string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.AdminDSN)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
		tb.Fatal(err)
	}
	verb := "ALTER"
	if !exists {
		verb = "CREATE"
	}
	// Password literals cannot be parameters.
	q := verb + " ROLE " + pgx.Identifier{role}.Sanitize() + " LOGIN SUPERUSER PASSWORD '" + password + "'"
	if _, err := conn.Exec(ctx, q); err != nil {
		tb.Fatalf("set password: %v", err)
	}
}

// DSN is a TCP DSN for role with password.
func (c *PasswordCluster) DSN(role, password string) string {
	return "postgres://" + role + ":" + password + "@" + c.Host + ":" + strconv.Itoa(c.Port) + "/postgres?sslmode=disable"
}

// Terminate ends every session of role, as a restart of a proxy would, so
// that the next query must log in again.
func (c *PasswordCluster) Terminate(tb testing.TB, role string) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.AdminDSN)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, role); err != nil {
		tb.Fatal(err)
	}
}
