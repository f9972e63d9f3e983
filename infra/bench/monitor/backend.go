package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// backend is a running functions/local over a database of its own, with
// one tenant whose key the shipping monitor uses.
type backend struct {
	URL    string
	APIKey string

	cmd    *exec.Cmd
	stderr *tailBuffer
	dbName string
	adminD string // DATABASE_URL of the server the database lives on
}

// startBackend creates a throwaway database on the server of databaseURL,
// starts the functions/local binary on a free loopback port against it and
// creates a tenant.
func startBackend(ctx context.Context, bin, databaseURL string) (_ *backend, err error) {
	u, err := url.Parse(databaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("DATABASE_URL must be a postgres:// URL")
	}
	b := &backend{dbName: "km_bench_monitor_" + randomHex(6), adminD: databaseURL, stderr: &tailBuffer{max: 16 << 10}}
	if err := b.exec(ctx, "CREATE DATABASE "+b.dbName); err != nil {
		return nil, fmt.Errorf("create the benchmark database: %w", err)
	}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	u.Path = "/" + b.dbName

	admin := randomHex(16)
	b.cmd = exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0")
	b.cmd.Env = append(os.Environ(), "DATABASE_URL="+u.String(), "KILOMETERS_ADMIN_TOKEN="+admin)
	b.cmd.Cancel = func() error { return b.cmd.Process.Signal(syscall.SIGTERM) }
	b.cmd.WaitDelay = 30 * time.Second
	listening := make(chan string, 1)
	b.cmd.Stderr = &addrWatch{tail: b.stderr, found: listening}
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the API %s: %w", bin, err)
	}
	select {
	case b.URL = <-listening:
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("the API did not start within 60s: %s", b.stderr.String())
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	var tenant struct {
		TenantID string `json:"tenant_id"`
		APIKey   string `json:"api_key"`
	}
	if err := b.call(ctx, http.MethodPost, "/api/admin/tenants", admin, `{"name":"bench-monitor"}`, &tenant); err != nil {
		return nil, fmt.Errorf("create a tenant: %w", err)
	}
	b.APIKey = tenant.APIKey
	return b, nil
}

// addrWatch passes the API's stderr to tail and sends the address of its
// "listening on ADDR" line to found, once.
type addrWatch struct {
	tail  *tailBuffer
	found chan<- string
	line  []byte
	sent  bool
}

func (w *addrWatch) Write(p []byte) (int, error) {
	w.tail.Write(p)
	if w.sent {
		return len(p), nil
	}
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			return len(p), nil
		}
		if addr, ok := strings.CutPrefix(string(w.line[:i]), "listening on "); ok {
			w.found <- addr
			w.sent, w.line = true, nil
			return len(p), nil
		}
		w.line = w.line[i+1:]
	}
}

// storedEvents asks the API how many events the tenant has in the last hour.
func (b *backend) storedEvents(ctx context.Context) (int64, error) {
	var st struct {
		Totals struct {
			Events int64 `json:"events"`
		} `json:"totals"`
	}
	if err := b.call(ctx, http.MethodGet, "/api/stats?since=1h", b.APIKey, "", &st); err != nil {
		return 0, err
	}
	return st.Totals.Events, nil
}

func (b *backend) call(ctx context.Context, method, path, token, body string, out any) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.URL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Close stops the API and drops its database.
func (b *backend) Close() error {
	var errs []error
	if b.cmd != nil && b.cmd.Process != nil {
		b.cmd.Process.Signal(syscall.SIGTERM)
		if err := b.cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("stop the API: %w (stderr: %s)", err, b.stderr.String()))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.exec(ctx, "DROP DATABASE IF EXISTS "+b.dbName+" WITH (FORCE)"); err != nil {
		errs = append(errs, fmt.Errorf("drop the benchmark database %s: %w", b.dbName, err))
	}
	return errors.Join(errs...)
}

func (b *backend) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, b.adminD)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
