// Command local serves every Kilometers API route on one port over plain
// HTTP, against the PostgreSQL at DATABASE_URL, for development, tests and
// single-machine self-hosting, and the dashboard's page at / (sign in with
// an API key). It applies the migrations at start.
//
//	DATABASE_URL=postgres://... KILOMETERS_ADMIN_TOKEN=... go run ./functions/local [-addr 127.0.0.1:8080]
//
// Once it listens it prints "listening on http://ADDR" to stderr (with
// -addr 127.0.0.1:0 the system picks the port; read it from that line).
// It runs the maintenance job (time partitions, retention) at start and
// then every -maintenance-every (1h; 0 for never), as the scheduled
// function does on AWS.
// It also runs the team alerts' schedule (window rules, then webhook
// deliveries) every -alert-interval, as POST /api/admin/alerts/evaluate
// does in a deployment. SIGINT or SIGTERM shut it down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/dbconfig"
	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/webui"
)

// DefaultAddr is where the server listens unless -addr says otherwise:
// loopback, so nothing is exposed by accident.
const DefaultAddr = "127.0.0.1:8080"

// DefaultAlertInterval is how often the team alerts' schedule runs: well
// under the shortest rule window (backend.MinAlertWindow).
const DefaultAlertInterval = 15 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	m := NewMain(os.Getenv, os.Stderr)
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		m.Close()
		os.Exit(1)
	}
	select {
	case <-ctx.Done():
	case <-m.Done():
		fmt.Fprintln(os.Stderr, "local: server stopped:", m.serveErr)
	}
	stop()
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

// Main is the program: configuration, then the running server.
type Main struct {
	Addr        string
	DatabaseURL string
	AdminToken  string
	// MaintenanceEvery is how often the maintenance job runs after the
	// run at start; 0 runs it only at start.
	MaintenanceEvery time.Duration
	// AlertInterval is the period of the team alerts' schedule; 0 turns
	// it off.
	AlertInterval time.Duration
	// Ticks, when set, replaces the alert timer (tests tick by hand).
	Ticks <-chan time.Time

	getenv func(string) string
	stderr io.Writer
	logger *slog.Logger

	db       *postgres.DB
	server   *http.Server
	listener net.Listener
	done     chan struct{}
	serveErr error // set before done is closed

	stopMaintenance context.CancelFunc
	maintenanceDone chan struct{}
	stopAlerts      context.CancelFunc
	alertsDone      chan struct{}
	alertRuns       chan struct{} // one value per finished run, when tests listen
}

// DefaultMaintenanceEvery is how often functions/local runs the
// maintenance job, as the AWS schedule does.
const DefaultMaintenanceEvery = time.Hour

// maintenanceActor is who the audit trail names for the timer's runs.
var maintenanceActor = backend.Actor{Admin: "local-timer", Address: "local"}

// NewMain returns a Main that reads its environment with getenv and writes
// its logs to stderr.
func NewMain(getenv func(string) string, stderr io.Writer) *Main {
	return &Main{
		Addr:             DefaultAddr,
		MaintenanceEvery: DefaultMaintenanceEvery,
		AlertInterval:    DefaultAlertInterval,
		getenv:           getenv,
		stderr:           stderr,
		logger:           slog.New(slog.NewJSONHandler(stderr, nil)),
	}
}

// ParseFlags reads the command line and the environment.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	fs.StringVar(&m.Addr, "addr", m.Addr, "address to listen on (host:port; port 0 picks a free one)")
	fs.DurationVar(&m.MaintenanceEvery, "maintenance-every", m.MaintenanceEvery, "how often to run the maintenance job after the run at start (0: only at start)")
	fs.DurationVar(&m.AlertInterval, "alert-interval", m.AlertInterval, "how often team alert window rules and webhook deliveries run (0: never)")
	fs.Usage = func() {
		fmt.Fprintf(m.stderr, "usage: local [-addr %s]\n\nServes the Kilometers API against $%s; $%s enables the admin routes.\n\n",
			DefaultAddr, dbconfig.EnvDatabaseURL, dbconfig.EnvAdminToken)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if m.MaintenanceEvery < 0 {
		return fmt.Errorf("-maintenance-every: must not be negative")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	m.DatabaseURL = m.getenv(dbconfig.EnvDatabaseURL)
	if m.DatabaseURL == "" {
		return fmt.Errorf("%s is not set", dbconfig.EnvDatabaseURL)
	}
	m.AdminToken = m.getenv(dbconfig.EnvAdminToken)
	return nil
}

// Run opens the database, applies the migrations and starts serving in the
// background. It returns once the server listens; Close stops it.
func (m *Main) Run(ctx context.Context) error {
	db, err := postgres.Open(ctx, m.DatabaseURL)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	m.db = db
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	// At start, so the partitions are there whatever the schedule. The
	// migrations made them ahead already, so a failed run is only logged:
	// the timer tries again.
	if err := m.maintain(ctx); err != nil {
		m.logger.ErrorContext(ctx, "maintenance failed at start; the next run tries again", "err", err)
	}
	if m.MaintenanceEvery > 0 {
		mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		m.stopMaintenance, m.maintenanceDone = cancel, make(chan struct{})
		go func() {
			defer close(m.maintenanceDone)
			Every(mctx, m.MaintenanceEvery, func(ctx context.Context) {
				if err := m.maintain(ctx); err != nil {
					m.logger.ErrorContext(ctx, "maintenance failed; the next run tries again", "err", err)
				}
			})
		}()
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", m.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	m.listener = ln
	if m.AdminToken == "" {
		m.logger.Warn("admin routes disabled: " + dbconfig.EnvAdminToken + " is not set")
	}
	m.server = &http.Server{
		// The dashboard's page at / and the API beside it, on one origin.
		Handler: webui.WithAPI(httpapi.New(httpapi.Config{
			Store:      db,
			Routes:     httpapi.All,
			AdminToken: httpapi.StaticToken(m.AdminToken),
			Logger:     m.logger,
		})),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		m.serveErr = m.server.Serve(ln)
	}()
	m.startAlerts()
	fmt.Fprintf(m.stderr, "listening on http://%s\n", ln.Addr())
	return nil
}

func (m *Main) maintain(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, postgres.MaintenanceTimeout)
	defer cancel()
	res, err := m.db.Maintain(ctx, maintenanceActor)
	if err != nil {
		return fmt.Errorf("maintenance: %w", err)
	}
	m.logger.InfoContext(ctx, "maintenance", "created", len(res.Created), "dropped", res.Dropped, "duration_ms", res.DurationMS)
	return nil
}

// Every calls run every interval until ctx ends; a run that takes longer
// than the interval delays the next rather than overlapping it.
func Every(ctx context.Context, interval time.Duration, run func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			run(ctx)
		}
	}
}

// startAlerts runs the team alerts' schedule on a timer until Close.
func (m *Main) startAlerts() {
	ticks := m.Ticks
	var ticker *time.Ticker
	if ticks == nil {
		if m.AlertInterval <= 0 {
			return
		}
		ticker = time.NewTicker(m.AlertInterval)
		ticks = ticker.C
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.stopAlerts, m.alertsDone = cancel, make(chan struct{})
	go func() {
		defer close(m.alertsDone)
		if ticker != nil {
			defer ticker.Stop()
		}
		for {
			select {
			case <-ctx.Done():
				return
			case now, ok := <-ticks:
				if !ok {
					return
				}
				run, err := m.db.RunAlerts(ctx, now.UTC())
				if err != nil && ctx.Err() == nil {
					m.logger.Warn("alerts run", "err", err)
				}
				if run.Fired+run.Delivered+run.Failed+run.GivenUp > 0 {
					m.logger.Info("alerts run", "fired", run.Fired, "delivered", run.Delivered, "failed", run.Failed, "given_up", run.GivenUp)
				}
				if m.alertRuns != nil {
					m.alertRuns <- struct{}{}
				}
			}
		}
	}()
}

// URL is the base URL the server answers on (after Run).
func (m *Main) URL() string {
	if m.listener == nil {
		return ""
	}
	return "http://" + m.listener.Addr().String()
}

// Done is closed when the server stops serving (after Run).
func (m *Main) Done() <-chan struct{} { return m.done }

// Close stops accepting requests, waits for those in flight (up to 30s)
// and closes the database.
func (m *Main) Close() error {
	var errs []error
	if m.stopMaintenance != nil {
		m.stopMaintenance()
		<-m.maintenanceDone
		m.stopMaintenance = nil
	}
	if m.stopAlerts != nil {
		m.stopAlerts()
		<-m.alertsDone
		m.stopAlerts = nil
	}
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down: %w", err))
		}
		<-m.done
		if err := m.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("serve: %w", err))
		}
		m.server = nil
	}
	if m.db != nil {
		m.db.Close()
		m.db = nil
	}
	return errors.Join(errs...)
}
