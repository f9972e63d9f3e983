// Command smoke checks a running Kilometers API end to end, the way a team
// would use it right after a deploy, and exits non-zero on the first thing
// that is wrong:
//
//	go run ./infra/smoke -url https://abc.execute-api.eu-west-1.amazonaws.com   # admin token in $KILOMETERS_ADMIN_TOKEN
//	infra/smoke.sh URL [ADMIN_TOKEN]                                             # the same
//
// It waits for /health to answer ok, creates a tenant with the admin token,
// checks that data routes refuse a request without a key, ingests a batch
// (then the same batch gzipped, which must be all duplicates), reads it back
// from /api/activity and /api/stats with exact counts, then creates a second
// key, revokes it and checks that the revoked key is refused. Each run leaves
// one small tenant named smoke-<time> behind (the API cannot delete tenants).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "smoke:", err)
		os.Exit(2)
	}
	if err := Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "smoke: FAIL:", err)
		os.Exit(1)
	}
}

// Config says what to check and how patiently.
type Config struct {
	// URL is the API's base URL (the stack's ApiUrl output).
	URL string
	// AdminToken authorizes the admin routes.
	AdminToken string
	// Tenant names the tenant the run creates.
	Tenant string
	// Wait bounds how long /health may take to answer ok (a fresh deploy
	// needs a cold start and a database connection first).
	Wait time.Duration
	// Client sends the requests; its Timeout bounds each one.
	Client *http.Client
	// Out receives one line per passed step.
	Out io.Writer
	// Now is the clock the events are stamped with.
	Now func() time.Time
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	cfg := Config{Out: os.Stdout, Now: time.Now}
	fs := flag.NewFlagSet("smoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", getenv("KILOMETERS_API_URL"), "base URL of the API (default $KILOMETERS_API_URL)")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "admin token (default $KILOMETERS_ADMIN_TOKEN; prefer the variable, flags show in ps)")
	fs.StringVar(&cfg.Tenant, "tenant", "", "name of the tenant to create (default smoke-<UTC time>)")
	fs.DurationVar(&cfg.Wait, "wait", 2*time.Minute, "how long /health may take to answer ok")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of each request")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: smoke -url URL [-admin-token TOKEN] [flags]\n\n"+
			"Checks a Kilometers API end to end: health, admin, ingest, activity, stats, key revocation.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q (use -url and -admin-token)", fs.Args())
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = getenv("KILOMETERS_ADMIN_TOKEN")
	}
	cfg.URL = strings.TrimRight(strings.TrimSpace(cfg.URL), "/")
	switch {
	case cfg.URL == "":
		return cfg, errors.New("no API URL: pass -url or set KILOMETERS_API_URL")
	case !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://"):
		return cfg, fmt.Errorf("-url %q: want an http:// or https:// URL", cfg.URL)
	case cfg.AdminToken == "":
		return cfg, errors.New("no admin token: pass -admin-token or set KILOMETERS_ADMIN_TOKEN")
	case *timeout <= 0:
		return cfg, errors.New("-timeout must be positive")
	}
	cfg.Client = &http.Client{Timeout: *timeout}
	return cfg, nil
}
