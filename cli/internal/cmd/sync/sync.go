// Package sync implements `kilometers sync`.
package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/alerts"
	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/otelexport"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
	"github.com/kilometers-ai/kilometers/cli/internal/ship"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
)

// Options are the command's flags and dependencies.
type Options struct {
	IO        *cmdutil.IOStreams
	Config    func() (*config.Config, error)
	Now       func() time.Time
	Getenv    func(string) string
	UserAgent string
	Flags     *config.Flags
	JSON      bool
	// Progress forces progress lines on stderr; by default they appear
	// only when stderr is a terminal.
	Progress bool
	// Wait bounds how long sync waits for the store's shipping lock,
	// which another process holds while it ships (a monitor's background
	// shipper, another sync).
	Wait time.Duration
	// Background is the mode monitors launch: silent, small batches,
	// bounded in time (RunBackground).
	Background bool
}

// NewCmd builds the command; runF replaces the run function in tests.
func NewCmd(f *cmdutil.Factory, runF ...func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Config: f.Config, Now: f.Now, Getenv: f.Getenv, UserAgent: "kilometers/" + f.Build.Version, Wait: backgroundLimit}
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Ship every pending event to the API and the OTLP endpoint now",
		Long: `Deliver everything in the local spool that was not delivered yet (events
recorded while offline, during an outage, or by a monitor that was killed) to
every configured destination, side by side, each at its own pace: the
Kilometers API, an OpenTelemetry (OTLP) endpoint, and the local alert rules.
Report batches the API refused. On a large backlog progress goes to stderr
when it is a terminal (or always, with --progress).

Exits non-zero, with the reason, when anything could not be delivered: the API
or the OTLP endpoint is unreachable, a key is refused, or events were set
aside because the API refused them. A batch that the API keeps refusing is sent again in smaller
parts until the events at fault are alone: those are set aside, the rest
ships. Set-aside events are kept in the Kilometers home under rejected/,
one file each; delete a file there once you have dealt with it.`,
		Example: `  kilometers sync
  kilometers sync --json
  # Progress lines in a CI log:
  kilometers sync --progress 2> sync.log
  # After fixing the key:
  KILOMETERS_API_KEY=km_... kilometers sync
  # Only to an OpenTelemetry collector (no Kilometers API configured):
  OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 kilometers sync`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(runF) > 0 {
				return runF[0](cmd.Context(), opts)
			}
			if opts.Background {
				return RunBackground(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	opts.Flags = config.BindFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the outcome as JSON")
	cmd.Flags().BoolVar(&opts.Progress, "progress", false, "print progress to stderr even when it is not a terminal")
	// Not for people: what `kilometers monitor` runs beside a session.
	cmd.Flags().BoolVar(&opts.Background, "background", false, "ship silently as a monitor's background shipper")
	_ = cmd.Flags().MarkHidden("background")
	return cmd
}

// backgroundLimit bounds a background shipper's life: a stuck API must not
// leave processes behind. What it did not ship stays in the spool.
const backgroundLimit = 2 * time.Minute

// RunBackground is one background shipper, as `kilometers monitor` launches
// them: it waits its turn on the store's shipping lock, ships everything
// pending in background-sized batches and exits; it writes nothing (its
// streams are not the user's). It fails, for the monitor to back off, when
// nothing could be delivered anywhere (backgroundOutcome).
func RunBackground(ctx context.Context, opts *Options) error {
	c, err := loadConfig(opts)
	if err != nil {
		return err
	}
	if !c.BackgroundShipping() && !alerts.Configured(c.Home) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, backgroundLimit)
	defer cancel()
	st, err := store.Open(ctx, c.Home, store.OptionsFromConfig(c))
	if err != nil {
		return err
	}
	unlock, err := lockShipping(ctx, st, backgroundLimit)
	if err != nil {
		return err
	}
	defer unlock()
	// OTLP export and alerts run beside API shipping, each on its own
	// cursor: one slow or down destination never holds the others back.
	otlpDone, alertsDone := make(chan result, 1), make(chan result, 1)
	go func() { otlpDone <- exportOTLP(ctx, c, st, opts.UserAgent) }()
	go func() { alertsDone <- evaluateAlerts(ctx, c, st, opts.UserAgent, opts.Getenv) }()
	api := result{}
	if c.ShippingEnabled() {
		sopts := ship.OptionsFromConfig(c)
		sopts.MaxBytes = ship.BackgroundMaxBytes
		// Few retries: the monitor launches the next shipper with backoff.
		client := apiclient.New(c.APIURL, c.APIKey, apiclient.Options{UserAgent: opts.UserAgent, RetryMax: 2, RetryWaitMax: 5 * time.Second})
		_, err = ship.New(ship.FromStore(st), client, sopts).Flush(ctx)
		// doctor shows the last outcome of API shipping.
		if serr := st.RecordShipStatus(err); serr != nil && err == nil {
			err = serr
		}
		api = result{configured: true, err: err}
	}
	return backgroundOutcome(api, <-otlpDone, <-alertsDone)
}

// lockShipping takes the store's shipping lock, waiting up to wait for the
// process that holds it. Every shipper of a store, `kilometers sync` as the
// monitors' background ones, ships only while it holds the lock: that is
// what keeps two processes from sending the same events, and from settling
// another's OTLP and alert cursors.
func lockShipping(ctx context.Context, st *store.Store, wait time.Duration) (unlock func() error, err error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	unlock, err = st.LockShipping(ctx, true)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("another kilometers process has been shipping this store's events for %s; try again later: %w", wait, err)
	}
	return unlock, err
}

// Output is the --json shape. The API's counts are at the top level, as
// before OTLP and alerts joined; each other destination has its own
// object, present only when it is configured.
type Output struct {
	ship.Report
	// Pending counts events still undelivered to the API at the end.
	Pending int64 `json:"pending"`
	// SetAsideBatches lists every batch the API refused (this run or
	// before) that is kept for the user.
	SetAsideBatches []store.SetAsideBatch `json:"set_aside_batches"`
	// Unreadable is what damage made unreadable in the local store, when
	// anything: it cannot be shipped.
	Unreadable *store.Unreadable `json:"unreadable,omitempty"`
	OTLP       *OTLPOutput       `json:"otlp,omitempty"`
	Alerts     *AlertsOutput     `json:"alerts,omitempty"`
	Error      string            `json:"error,omitempty"`
}

// OTLPOutput is what the export to the OTLP endpoint did.
type OTLPOutput struct {
	otelexport.Report
	Endpoint string `json:"endpoint"`
	Error    string `json:"error,omitempty"`
	err      error  // Error's cause, kept for errors.Is and the background outcome
}

// AlertsOutput is what the local alert rules did.
type AlertsOutput struct {
	alerts.Report
	Error string `json:"error,omitempty"`
	err   error
}

// Run delivers what is pending to every configured destination (the API,
// an OTLP endpoint, the local alert rules), side by side as the background
// shipper does, and reports each. It fails when any of them failed.
func Run(ctx context.Context, opts *Options) error {
	c, err := loadConfig(opts)
	if err != nil {
		return err
	}
	if !c.ShippingEnabled() && !c.OTLPEnabled() && !alerts.Configured(c.Home) {
		return errors.New("nothing to sync to: no API configured (run 'kilometers init', or set KILOMETERS_API_URL and KILOMETERS_API_KEY), no OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT) and no alert rules")
	}
	st, err := store.Open(ctx, c.Home, store.OptionsFromConfig(c))
	if err != nil {
		return err
	}
	defer st.ReportUnreadable(opts.IO.ErrOut)
	unlock, err := lockShipping(ctx, st, opts.Wait)
	if err != nil {
		return err
	}
	defer unlock()

	otlpDone, alertsDone := make(chan *OTLPOutput, 1), make(chan *AlertsOutput, 1)
	go func() { otlpDone <- syncOTLP(ctx, c, st, opts.UserAgent) }()
	go func() { alertsDone <- syncAlerts(ctx, c, st, opts.UserAgent, opts.Getenv) }()
	var out Output
	var failures []error
	if c.ShippingEnabled() {
		failure, err := syncAPI(ctx, opts, c, st, &out)
		if err != nil {
			return err
		}
		if failure != nil {
			failures = append(failures, failure)
		}
	}
	out.OTLP, out.Alerts = <-otlpDone, <-alertsDone
	if out.OTLP != nil && out.OTLP.err != nil {
		failures = append(failures, fmt.Errorf("OTLP: %w", out.OTLP.err)) // it names the endpoint
	}
	if out.Alerts != nil && out.Alerts.err != nil {
		failures = append(failures, fmt.Errorf("alerts: %w", out.Alerts.err))
	}
	if u := st.Unreadable(); !u.IsZero() {
		out.Unreadable = &u
	}
	failure := errors.Join(failures...)
	if failure != nil {
		out.Error = failure.Error()
	}
	if opts.JSON {
		if err := output.JSON(opts.IO, out); err != nil {
			return err
		}
	} else {
		printOther(opts.IO.Out, out)
	}
	return failure
}

// syncAPI ships what is pending to the API into out, printing what it did
// unless --json. failure is what the user must hear (events not delivered
// or set aside); err, a local failure that stops the command.
func syncAPI(ctx context.Context, opts *Options, c *config.Config, st *store.Store, out *Output) (failure, err error) {
	before, err := st.Pending(ctx)
	if err != nil {
		return nil, err
	}
	show := opts.Progress || opts.IO.ErrIsTerminal
	prog := &progress{w: opts.IO.ErrOut, total: before.Events, now: opts.Now, large: show && before.Events > int64(c.BatchSize)}
	sopts := ship.OptionsFromConfig(c)
	sopts.Logger = slog.New(slog.DiscardHandler) // this command reports itself
	sopts.Progress = prog.batch
	client := apiclient.New(c.APIURL, c.APIKey, apiclient.Options{UserAgent: opts.UserAgent})
	shipper := ship.New(ship.FromStore(st), client, sopts)

	r, shipErr := shipper.Flush(ctx)
	out.Report = r
	prog.done(out.Report)

	after, err := st.Pending(ctx)
	if err != nil {
		return nil, err
	}
	out.Pending = after.Events
	out.SetAsideBatches = after.SetAside
	var setAsideEvents, setAsideSessions int
	for _, b := range after.SetAside {
		setAsideEvents += b.Events
		setAsideSessions += b.Sessions
	}
	switch {
	case shipErr != nil:
		failure = fmt.Errorf("%d events not delivered, still pending: %w", after.Events, shipErr)
	case len(after.SetAside) > 0:
		failure = fmt.Errorf("%d events and %d session records were refused by the API and set aside, the rest shipped (see above)", setAsideEvents, setAsideSessions)
	}
	if err := st.RecordShipStatus(failure); err != nil {
		return nil, err
	}
	if opts.JSON {
		return failure, nil
	}
	w := opts.IO.Out
	// Nothing shipped before a failure is no news: the error says it.
	if shipErr == nil || out.Events > 0 {
		fmt.Fprintf(w, "Shipped %d events in %d batches to %s (%d new, %d already there).\n",
			out.Events-out.SetAside, out.Batches, c.APIURL, out.Accepted, out.Duplicates)
	}
	if after.Events > 0 && shipErr == nil {
		fmt.Fprintf(w, "%d events still pending: they were recorded meanwhile; they ship with the monitor that records them or on the next sync.\n", after.Events)
	}
	for _, b := range after.SetAside {
		what := fmt.Sprintf("%d events", b.Events)
		if b.Events == 0 && b.Sessions > 0 {
			what = fmt.Sprintf("%d session records", b.Sessions)
		}
		fmt.Fprintf(w, "Set aside: %s refused %s: %s\n", what, b.RejectedAt.Local().Format(time.DateTime), b.Reason)
		if len(b.IDs) > 0 && len(b.IDs) <= 10 {
			fmt.Fprintf(w, "  id %s\n", strings.Join(b.IDs, ", "))
		}
		fmt.Fprintf(w, "  kept in %s\n", b.Path)
	}
	if after.Lost > 0 {
		fmt.Fprintf(w, "%d events were deleted by retention before they could be shipped.\n", after.Lost)
	}
	return failure, nil
}

// printOther prints what the destinations beside the API did; their
// errors are the command's error, so only successes are printed.
func printOther(w io.Writer, out Output) {
	if o := out.OTLP; o != nil && o.err == nil {
		fmt.Fprintf(w, "Exported %d spans in %d batches to %s.\n", o.Spans, o.Batches, o.Endpoint)
		if o.Dropped > 0 {
			fmt.Fprintf(w, "%d events were dropped: the OTLP endpoint refused them as malformed.\n", o.Dropped)
		}
	}
	if a := out.Alerts; a != nil && a.err == nil && a.Fired > 0 {
		fmt.Fprintf(w, "Alerts: %d fired, %d sent, over %d events.\n", a.Fired, a.Sent, a.Events)
	}
}

// loadConfig is the configuration with the command's flags applied.
func loadConfig(opts *Options) (*config.Config, error) {
	c, err := opts.Config()
	if err != nil {
		return nil, err
	}
	// What shipping uses must be right; anything else only warns.
	used := []string{config.KeyAPIURL, config.KeyAPIKey, config.KeyBatchSize, config.KeyCaptureMode}
	if err := c.Check(used...); err != nil {
		return nil, err
	}
	if !opts.Background {
		c.Warn(opts.IO.ErrOut, "kilometers sync", used...)
	}
	if err := opts.Flags.Apply(c); err != nil {
		return nil, &cmdutil.FlagError{Err: err}
	}
	return c, nil
}

// progress prints a line to stderr at most every second while a large
// backlog ships.
type progress struct {
	w     io.Writer
	total int64
	large bool
	now   func() time.Time
	last  time.Time
	sum   ship.Report
}

func (p *progress) batch(r ship.Report) {
	p.sum.Add(r)
	if !p.large || p.now().Sub(p.last) < time.Second {
		return
	}
	p.last = p.now()
	fmt.Fprintf(p.w, "sync: %d/%d events shipped (%d batches)\n", p.sum.Events, p.total, p.sum.Batches)
}

func (p *progress) done(r ship.Report) {
	if p.large && p.sum.Events > 0 {
		fmt.Fprintf(p.w, "sync: %d/%d events shipped (%d batches), done\n", r.Events, p.total, r.Batches)
	}
}
