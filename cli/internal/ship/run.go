package ship

import (
	"context"
	"log/slog"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
)

// maxRetryWait bounds the wait after failed deliveries before the next try.
const maxRetryWait = 5 * time.Minute

// BackgroundMaxBytes is MaxBytes of background shipping: batches small
// enough that a shipper running next to the user's MCP client for hours
// stays small; a few more requests are cheap.
const BackgroundMaxBytes = 512 << 10

// Launch starts one background shipper: a separate process (`kilometers
// sync --background`) that ships everything pending from the store and
// exits. It returns a function that waits for the process to exit and
// reports whether it delivered. final marks the launch at the session's
// end, which nobody waits for: the monitor exits at once and the process
// finishes on its own.
type Launch func(final bool) (wait func() error, err error)

// SideOptions configure shipping beside a monitored session.
type SideOptions struct {
	// Interval is the least time between launches (the configured ship
	// interval; config.DefaultShipInterval when zero).
	Interval time.Duration
	// Recorded counts the events of the session that a shipper can read
	// (in the store's files, not in a write buffer).
	Recorded func() int64
	Launch   Launch
	Logger   *slog.Logger
}

// Beside ships a session's events while it runs, from processes of their
// own: shipping in the monitor would put the shipper's CPU time, garbage
// and memory into the process whose latency and footprint matter most. At
// most every Interval, when the session recorded events since the last
// launch, Beside launches a shipper and waits for it to exit before it
// considers the next one. Shippers of different sessions take turns on the
// store's shipping lock (store.LockShipping). A failed one (API down, bad
// key) delays the next launch with exponential backoff and jitter; events
// wait in the spool meanwhile.
//
// The returned stop, to call once after the session's last event is in the
// store, launches a final shipper for what is left and returns without
// waiting for it, nor for a shipper still running.
func Beside(ctx context.Context, o SideOptions) (stop func()) {
	if o.Interval <= 0 {
		o.Interval = config.DefaultShipInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b := &beside{o: o}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.run(ctx)
	}()
	return func() {
		cancel()
		<-done
		b.final()
	}
}

// beside is Beside's state, owned by its run goroutine, and by final once
// run has returned.
type beside struct {
	o SideOptions

	launched int64 // Recorded() when the last shipper started
	failures int   // consecutive failed shippers
	retryAt  time.Time
	warned   bool
}

// run launches shippers until ctx ends, one at a time.
func (b *beside) run(ctx context.Context) {
	t := time.NewTicker(b.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		exited := b.launch(time.Now())
		if exited == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return // the shipper finishes on its own
		case err := <-exited:
			b.exited(time.Now(), err)
		}
	}
}

// launch starts a shipper if the session recorded events since the last one
// and no backoff is running; it returns the shipper's outcome to come, nil
// when none was started.
func (b *beside) launch(now time.Time) <-chan error {
	n := b.o.Recorded()
	if n == b.launched || now.Before(b.retryAt) {
		return nil
	}
	wait, err := b.o.Launch(false)
	if err != nil {
		b.failed(now, err)
		return nil
	}
	b.launched = n
	exited := make(chan error, 1)
	go func() { exited <- wait() }()
	return exited
}

func (b *beside) exited(now time.Time, err error) {
	if err != nil {
		b.failed(now, err)
		return
	}
	if b.failures > 0 {
		b.o.Logger.Info("ship: delivering again", "after_failures", b.failures)
	}
	b.failures = 0
}

// failed notes a shipper that did not deliver. The first failure of a
// session is a warning; the rest are repeats of it.
func (b *beside) failed(now time.Time, err error) {
	b.failures++
	b.retryAt = now.Add(apiclient.Jitter(b.o.Interval, maxRetryWait, b.failures-1))
	level := b.o.Logger.Debug
	if !b.warned {
		b.warned = true
		level = b.o.Logger.Warn
	}
	level("ship: events not delivered; they stay in the spool for the next try, monitor or `kilometers sync`", "err", err, "failures", b.failures)
}

func (b *beside) final() {
	if b.o.Recorded() == b.launched && b.failures == 0 {
		return // everything recorded went to a shipper that delivered or still runs
	}
	if _, err := b.o.Launch(true); err != nil {
		b.o.Logger.Warn("ship: cannot start the final delivery; events stay in the spool", "err", err)
	}
}

// FromStore adapts the local store to Spool.
func FromStore(st *store.Store) Spool { return storeSpool{st} }

type storeSpool struct{ st *store.Store }

func (p storeSpool) Claim(ctx context.Context, maxEvents, maxBytes int) (Claim, error) {
	c, err := p.st.Claim(ctx, maxEvents, maxBytes)
	if c == nil {
		return nil, err // never a typed nil in the interface
	}
	return c, err
}
