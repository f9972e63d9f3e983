package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kilometers-ai/kilometers/shared/httpapi/apitest"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
	"github.com/kilometers-ai/kilometers/shared/testenv"
	"github.com/kilometers-ai/kilometers/shared/webui"
)

func TestParseFlags(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	dbOnly := env(map[string]string{"DATABASE_URL": "postgres://x"})
	for _, tc := range []struct {
		name    string
		args    []string
		getenv  func(string) string
		addr    string
		token   string
		wantErr string
	}{
		{name: "default is loopback 8080", getenv: dbOnly, addr: "127.0.0.1:8080"},
		{name: "addr flag", args: []string{"-addr", "127.0.0.1:0"}, getenv: dbOnly, addr: "127.0.0.1:0"},
		{name: "admin token", getenv: env(map[string]string{"DATABASE_URL": "postgres://x", "KILOMETERS_ADMIN_TOKEN": "tok"}), addr: DefaultAddr, token: "tok"},
		{name: "no database", getenv: env(nil), wantErr: "DATABASE_URL is not set"},
		{name: "negative maintenance interval", args: []string{"-maintenance-every", "-1m"}, getenv: dbOnly, wantErr: "must not be negative"},
		{name: "stray argument", args: []string{"serve"}, getenv: dbOnly, wantErr: "unexpected arguments"},
		{name: "unknown flag", args: []string{"-port", "1"}, getenv: dbOnly, wantErr: "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMain(tc.getenv, io.Discard)
			err := m.ParseFlags(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || m.Addr != tc.addr || m.AdminToken != tc.token {
				t.Fatalf("addr %q token %q err %v, want addr %q token %q", m.Addr, m.AdminToken, err, tc.addr, tc.token)
			}
		})
	}
	m := NewMain(dbOnly, io.Discard)
	if err := m.ParseFlags([]string{"-maintenance-every", "15m"}); err != nil || m.MaintenanceEvery != 15*time.Minute {
		t.Errorf("-maintenance-every 15m: %v, %v", m.MaintenanceEvery, err)
	}
	if m := NewMain(dbOnly, io.Discard); m.ParseFlags(nil) != nil || m.MaintenanceEvery != time.Hour {
		t.Errorf("default maintenance interval %v, want 1h", m.MaintenanceEvery)
	}
	if DefaultAddr != "127.0.0.1:8080" {
		t.Errorf("DefaultAddr = %q; it must stay loopback on 8080", DefaultAddr)
	}
}

// buildLocal builds this command.
func buildLocal(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "local")
	cmd := exec.Command("go", "build", "-o", bin, "./functions/local")
	cmd.Dir = testenv.RepoRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./functions/local: %v\n%s", err, b)
	}
	return bin
}

// proc is a running local server.
type proc struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
	err    error // after exited

	mu     sync.Mutex
	stderr strings.Builder
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// start runs the binary and, unless the process exits first, waits for
// the "listening on" line and returns the URL it names.
func start(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			if u, ok := strings.CutPrefix(line, "listening on "); ok {
				urls <- u
			}
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("local output:\n%s", p.output())
		}
	})
	select {
	case p.url = <-urls:
	case <-p.exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("local never said it was listening:\n%s", p.output())
	}
	return p
}

// TestLocal_Postgres runs the built server on an ephemeral loopback port
// over a fresh, empty database (it applies the migrations itself), plays
// the end-to-end scenario, cuts the database off and back, then stops it
// with SIGTERM.
func TestLocal_Postgres(t *testing.T) {
	bin := buildLocal(t)
	dsn := pgtest.MustCreateDatabase(t)
	relay := testenv.NewTCPRelay(t, hostPort(t, dsn), true)
	viaRelay := strings.Replace(dsn, hostPort(t, dsn), relay.Addr(), 1)
	if viaRelay == dsn {
		t.Fatalf("cannot route %s through the relay", dsn)
	}
	const token = "local-admin-token"
	p := start(t, bin, []string{"DATABASE_URL=" + viaRelay, "KILOMETERS_ADMIN_TOKEN=" + token}, "-addr", "127.0.0.1:0")
	if p.url == "" {
		t.Fatalf("local exited: %v\n%s", p.err, p.output())
	}
	host, port, err := net.SplitHostPort(strings.TrimPrefix(p.url, "http://"))
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("listening line names %q; want 127.0.0.1 and the real port", p.url)
	}

	apitest.Scenario(t, apitest.HTTP(p.url), token)

	// The maintenance job ran at start, before the server listened.
	if a := apitest.HTTP(p.url)(t, apitest.Request{Method: "GET", Path: "/api/admin/audit?limit=1000", Token: token}); a.Status != 200 ||
		!strings.Contains(string(a.Body), `"admin":"local-timer"`) || !strings.Contains(string(a.Body), `"action":"maintenance.run"`) {
		t.Errorf("audit shows no maintenance run at start: %d %.300s", a.Status, a.Body)
	}

	do := apitest.HTTP(p.url)
	health := func(status int, want string) {
		t.Helper()
		a := do(t, apitest.Request{Method: "GET", Path: "/health"})
		if a.Status != status || !strings.Contains(string(a.Body), want) {
			t.Fatalf("health: %d %s, want %d with %s", a.Status, a.Body, status, want)
		}
	}
	// The dashboard's page at /, beside the API, with its strict CSP; the
	// API still answers JSON errors for its own unknown paths.
	page := do(t, apitest.Request{Method: "GET", Path: "/"})
	if page.Status != 200 || !strings.Contains(string(page.Body), `<script src="app.js"`) ||
		page.Header.Get("Content-Security-Policy") != webui.ContentSecurityPolicy {
		t.Errorf("GET /: %d %q %.60s", page.Status, page.Header.Get("Content-Security-Policy"), page.Body)
	}
	if a := do(t, apitest.Request{Method: "GET", Path: "/api/nope"}); a.Status != 404 || a.ErrorCode(t) != "not_found" {
		t.Errorf("GET /api/nope: %d %s, want the API's JSON 404", a.Status, a.Body)
	}
	if a := do(t, apitest.Request{Method: "GET", Path: "/api/stats"}); a.Status != 401 {
		t.Errorf("GET /api/stats without a key: %d, want 401", a.Status)
	}

	relay.SetUp(false)
	health(503, `"database":"unreachable"`)
	relay.SetUp(true)
	health(200, `{"status":"ok","database":"ok"}`)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatal("local did not stop on SIGTERM")
	}
	if p.err != nil {
		t.Errorf("exit after SIGTERM: %v, want 0\n%s", p.err, p.output())
	}
	if _, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://")); err == nil {
		t.Error("still accepting connections after exit")
	}
}

func hostPort(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// TestLocalStops_Postgres covers the other ways out: SIGINT stops it
// gracefully, and starting without a reachable database or a free port
// fails at once with the reason.
func TestLocalStops_Postgres(t *testing.T) {
	bin := buildLocal(t)
	dsn := pgtest.MustCreateDatabase(t)

	p := start(t, bin, []string{"DATABASE_URL=" + dsn}, "-addr", "127.0.0.1:0")
	if p.url == "" {
		t.Fatalf("local exited: %v\n%s", p.err, p.output())
	}
	if !strings.Contains(p.output(), "admin routes disabled") {
		t.Errorf("no warning that admin routes are off without a token:\n%s", p.output())
	}
	busy := strings.TrimPrefix(p.url, "http://")

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()
	deadDSN := strings.Replace(dsn, hostPort(t, dsn), deadAddr, 1)

	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"no DATABASE_URL", nil, nil, 2, "DATABASE_URL is not set"},
		{"database unreachable", []string{"DATABASE_URL=" + deadDSN}, []string{"-addr", "127.0.0.1:0"}, 1, "apply migrations"},
		{"port in use", []string{"DATABASE_URL=" + dsn}, []string{"-addr", busy}, 1, "listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := start(t, bin, tc.env, tc.args...)
			<-q.exited
			var exitErr *exec.ExitError
			if q.url != "" || !errors.As(q.err, &exitErr) || exitErr.ExitCode() != tc.code || !strings.Contains(q.output(), tc.want) {
				t.Errorf("exit %v, output:\n%s\nwant exit %d saying %q", q.err, q.output(), tc.code, tc.want)
			}
		})
	}

	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatal("local did not stop on SIGINT")
	}
	if p.err != nil {
		t.Errorf("exit after SIGINT: %v, want 0\n%s", p.err, p.output())
	}
}

// Every runs on the interval, not before, and stops with its context.
func TestEvery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var runs []time.Duration
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			Every(ctx, time.Hour, func(context.Context) { runs = append(runs, time.Since(start)) })
		}()
		time.Sleep(3*time.Hour + time.Minute)
		synctest.Wait()
		cancel()
		<-done
		if want := []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour}; !slices.Equal(runs, want) {
			t.Errorf("runs at %v, want %v", runs, want)
		}
	})
}

// The self-hosted server reads no secret: it links nothing of the AWS SDK
// (the Lambda functions get Secrets Manager through their own wiring).
func TestLinksNoAWS(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/aws/") {
			t.Errorf("functions/local links %s", pkg)
		}
	}
}
