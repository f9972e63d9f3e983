// Package monitor implements `kilometers monitor`.
package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/alerts"
	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/codepages"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/defs"
	mon "github.com/kilometers-ai/kilometers/cli/internal/monitor"
	"github.com/kilometers-ai/kilometers/cli/internal/ship"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/analysis"
)

// Options are the command's flags and dependencies.
type Options struct {
	IO     *cmdutil.IOStreams
	Now    func() time.Time
	Home   func() (string, error)
	Config func() (*config.Config, error)
	// OpenRecorder opens where the session's events go; nil means the
	// local store in Home.
	OpenRecorder func(ctx context.Context, sessionID string) (mon.Recorder, error)
	// Shipper launches background shippers for the store in home (nil:
	// `kilometers sync --background` processes of this executable).
	Shipper func(home string) ship.Launch

	// Name labels the server, whatever it calls itself.
	Name string
	// Command is the server's command line.
	Command []string
}

// NewCmd builds `kilometers monitor`.
func NewCmd(f *cmdutil.Factory) *cobra.Command { return newCmd(f, nil) }

func newCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Now: f.Now, Home: f.Home, Config: f.Config}
	cmd := &cobra.Command{
		Use:   "monitor [flags] -- COMMAND [ARGS...]",
		Short: "Run an MCP server and record every message it exchanges",
		Long: `Runs the MCP server COMMAND as a child process and relays its stdin, stdout and
stderr unchanged, while every JSON-RPC message that crosses the pipe is
recorded as an event in the local store (and shipped when an API is
configured). The server's exit code becomes the monitor's; signals are
passed on to it. Monitoring never stalls the relay: if events cannot be
recorded fast enough they are dropped, counted and reported at exit.

Put it in front of the server command in your MCP client's configuration.`,
		Example: `  # Claude Desktop / Cursor config: "command": "kilometers",
  # "args": ["monitor", "--", "npx", "-y", "@modelcontextprotocol/server-everything"]
  kilometers monitor -- npx -y @modelcontextprotocol/server-everything

  # Label the server's events yourself (stats --server github finds them)
  kilometers monitor --name github -- docker run -i --rm ghcr.io/github/github-mcp-server`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmdutil.FlagErrorf("kilometers monitor needs the server's command after --, as in: kilometers monitor -- npx -y @modelcontextprotocol/server-everything")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Command = args
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	// Everything after the server command belongs to the server, even
	// without "--".
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVar(&opts.Name, "name", "", "label for the server's events and session (default: the server's serverInfo.name, else the command's base name)")
	return cmd
}

// Run runs the monitor and returns the server's exit code as an
// ExitError.
func Run(ctx context.Context, opts *Options) error {
	tuneGC()
	log := slog.New(slog.NewTextHandler(opts.IO.ErrOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sessionID := mon.NewID()
	// A bad setting never stops recording: it has been replaced by its
	// default, and the session says so (as does stderr, which MCP clients
	// keep in their logs).
	var warnings []string
	if cfg, err := opts.Config(); err == nil {
		warnings = cfg.Warnings()
		cfg.Warn(opts.IO.ErrOut, "kilometers monitor")
	}
	stopShip := func() {}
	open := opts.OpenRecorder
	if open == nil {
		open = func(ctx context.Context, sessionID string) (mon.Recorder, error) {
			w, cfg, err := openStore(ctx, opts, log, sessionID)
			if err != nil {
				return nil, err
			}
			if cfg.BackgroundShipping() || alerts.Configured(cfg.Home) {
				// With an API or an OTLP endpoint configured, or alert
				// rules, ship (and evaluate) from the store beside
				// the session, in processes of their own.
				launch := opts.Shipper
				if launch == nil {
					launch = shipperProcess
				}
				stopShip = ship.Beside(ctx, ship.SideOptions{Interval: cfg.ShipInterval, Recorded: w.Durable,
					Launch: launch(cfg.Home), Logger: log})
			}
			return w, nil
		}
	}
	rec, err := open(ctx, sessionID)
	if err != nil {
		// The user's server matters more than its events: run it anyway.
		fmt.Fprintf(opts.IO.ErrOut, "kilometers monitor: not recording this session: %v\n", err)
		rec = nil
	}
	an := analysisOptions(opts, log)
	host, _ := os.Hostname()
	// Startup is over: give back the code pages only it needed (every
	// command's initialisation, the configuration, opening the store),
	// and from then on those the session's rarer paths bring back.
	stopRelease := releaseCodePages(log)
	res, err := mon.Run(ctx, mon.Config{
		Command:   opts.Command,
		Name:      opts.Name,
		Stdin:     opts.IO.In,
		Stdout:    opts.IO.Out,
		Stderr:    opts.IO.ErrOut,
		Recorder:  rec,
		SessionID: sessionID,
		Host:      host,
		Now:       opts.Now,
		Logger:    log,
		Analysis:  &an,
		Warnings:  warnings,
	})
	stopRelease()
	// The session's events are durable now: a last shipper takes what is
	// left, without the monitor waiting for it.
	stopShip()
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	if res.ExitCode != 0 {
		return &cmdutil.ExitError{Code: res.ExitCode}
	}
	return nil
}

// analysisOptions are the configured analysis settings of the session, with
// tool definitions remembered under the Kilometers home so that a server
// that changes a tool between sessions is noticed.
func analysisOptions(opts *Options, log *slog.Logger) analysis.Options {
	an := analysis.DefaultOptions()
	if cfg, err := opts.Config(); err == nil {
		an = cfg.AnalysisOptions()
	} // else openStore already reported the configuration problem
	home, err := opts.Home()
	if err != nil {
		// Analysis still works without a home, within the session only.
		return an
	}
	an.Definitions = defs.New(home)
	var warned bool
	an.OnStoreError = func(err error) {
		if !warned { // once per session: it is the same disk every time
			warned = true
			log.Warn("tool definitions store; changes between sessions may go unnoticed", "err", err)
		}
	}
	return an
}

func openStore(ctx context.Context, opts *Options, log *slog.Logger, sessionID string) (*store.Writer, *config.Config, error) {
	home, err := opts.Home()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := opts.Config()
	if err != nil {
		return nil, nil, fmt.Errorf("load configuration: %w", err)
	}
	so := store.OptionsFromConfig(cfg)
	so.Logger = log
	so.Now = opts.Now
	st, err := store.Open(ctx, home, so)
	if err != nil {
		return nil, nil, fmt.Errorf("open the event store: %w", err)
	}
	w, err := st.NewWriter(ctx, sessionID)
	if err != nil {
		return nil, nil, fmt.Errorf("open the event store: %w", err)
	}
	return w, cfg, nil
}

// releaseEvery is how often the monitor releases its code pages again. The
// relay, the capture and the store touch about 3-4 MiB of the binary's
// text and read-only data in any second of a busy session; left alone, the
// file-backed part of the monitor's resident set grew to 6.5-7 MiB as rarer
// paths ran. Each release costs the next round trip the page faults that
// bring its code back (about 50 of them, 64 KiB each).
const releaseEvery = time.Second

// releaseCodePages releases the code pages now and every releaseEvery until
// the returned function is called.
func releaseCodePages(log *slog.Logger) (stop func()) {
	rel, _, err := codepages.NewReleaser()
	if err != nil {
		log.Debug("release startup code pages", "err", err)
		return func() {}
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(releaseEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := rel.Again(); err != nil {
					log.Debug("release code pages", "err", err)
					return
				}
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// monitorGCPercent is the monitor's GOGC. The monitor runs in front of a
// server for hours on the user's machine, next to their MCP client, with a
// live heap well under 1 MB but a steady stream of short-lived allocations
// (one event per message): at the default of 100 the heap grows to the
// runtime's 4 MB minimum goal between collections and stays resident, which
// is most of the monitor's own memory. At 25 the goal is 1 MB; the extra
// collections cost little CPU next to the relay's system calls, and the
// round-trip figures did not move between 50 and 25 (see
// docs/performance.md).
const monitorGCPercent = 25

// tuneGC applies monitorGCPercent unless the user set GOGC, which wins as
// it does for any Go program. Only the monitor does this: the other
// commands are short-lived.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(monitorGCPercent)
}
