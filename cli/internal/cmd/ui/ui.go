// Package ui implements `kilometers ui`: the dashboard over the local store,
// on a loopback port, for this user only.
package ui

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
)

// DefaultAddr lets the system pick a free loopback port.
const DefaultAddr = "127.0.0.1:0"

// Options are the command's flags and dependencies.
type Options struct {
	IO     *cmdutil.IOStreams
	Config func() (*config.Config, error)
	Now    func() time.Time
	// Open opens url in the user's browser; nil means the system's way.
	Open func(url string) error
	// Ready, when set, is called with the URL once the server listens
	// (tests use it; the URL is printed on stdout either way).
	Ready func(url string)

	Addr   string
	NoOpen bool
}

// NewCmd builds the command.
func NewCmd(f *cmdutil.Factory) *cobra.Command { return newCmd(f, nil) }

func newCmd(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Config: f.Config, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Open the dashboard over this machine's recorded events",
		Long: `Serve the Kilometers dashboard from this machine's local store and open it in
the browser: an overview of the window (totals, latency, risk, tools), live
activity with filters, sessions, each call's request and reply, and alerts
about poisoned or changed tools. No backend is needed.

The server listens on a loopback address only and prints its URL, which
carries a random token for this run, as one line on stdout. Requests without
the token (or the cookie the first visit sets) are refused, as are requests
for any host name other than the address it listens on, so other users of
the machine and other web sites cannot read the recorded traffic. It only
reads the store, and runs until interrupted (Ctrl-C).`,
		Example: `  # Open the dashboard in the browser
  kilometers ui

  # A fixed port, without opening a browser (open the printed URL yourself)
  kilometers ui --addr 127.0.0.1:8377 --no-open`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			if runF != nil {
				return runF(ctx, opts)
			}
			return Run(ctx, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Addr, "addr", DefaultAddr, "loopback `address` to listen on (host:port; port 0 picks a free one)")
	fl.BoolVar(&opts.NoOpen, "no-open", false, "print the URL without opening a browser")
	return cmd
}

// CheckAddr accepts only a loopback host:port: the dashboard shows every
// recorded payload, so it must never be reachable from another machine.
func CheckAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return cmdutil.FlagErrorf("invalid --addr %q: want host:port, such as %s", addr, DefaultAddr)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return cmdutil.FlagErrorf("invalid --addr %q: the dashboard listens on a loopback address only (127.0.0.1, ::1 or localhost)", addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return cmdutil.FlagErrorf("invalid --addr %q: bad port", addr)
	}
	return nil
}

// Run serves the dashboard until ctx is done.
func Run(ctx context.Context, opts *Options) error {
	if err := CheckAddr(opts.Addr); err != nil {
		return err
	}
	c, err := opts.Config()
	if err != nil {
		return err
	}
	st, err := store.OpenConfig(ctx, c)
	if err != nil {
		return fmt.Errorf("open the local store: %w", err)
	}
	token, err := newToken()
	if err != nil {
		return err
	}
	addr := opts.Addr
	if h, p, _ := net.SplitHostPort(addr); h == "localhost" {
		// Listen where the URL will point, not on whatever localhost
		// resolves to first.
		addr = net.JoinHostPort("127.0.0.1", p)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	logger := slog.New(slog.NewTextHandler(opts.IO.ErrOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := &http.Server{
		Handler:           NewHandler(st, token, ln.Addr().String(), opts.Now, logger),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()

	url := "http://" + ln.Addr().String() + "/?" + TokenParam + "=" + token
	fmt.Fprintln(opts.IO.Out, url)
	fmt.Fprintf(opts.IO.ErrOut, "Serving the dashboard over %s on %s until interrupted (Ctrl-C).\n", st.Dir(), ln.Addr())
	if opts.Ready != nil {
		opts.Ready(url)
	}
	if !opts.NoOpen {
		open := opts.Open
		if open == nil {
			open = openBrowser
		}
		if err := open(url); err != nil {
			fmt.Fprintf(opts.IO.ErrOut, "Could not open a browser (%v); open the URL above yourself.\n", err)
		}
	}

	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make a token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// openBrowser starts the system's URL opener and does not wait for it.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // reap it
	return nil
}
