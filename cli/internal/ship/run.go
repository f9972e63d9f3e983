package ship

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
)

// maxRetryWait bounds the wait after failed deliveries before the next try.
const maxRetryWait = 5 * time.Minute

// BackgroundMaxBytes is MaxBytes of background shipping: batches small
// enough that a shipper running next to the user's MCP client for hours
// stays small; a few more requests are cheap.
const BackgroundMaxBytes = 512 << 10

// ErrBusy is what a launched shipper's wait returns when it found another
// shipper of the same store at work and left it the work: not a failure;
// the next tick launches again.
var ErrBusy = errors.New("another shipper is at work")

// Launch starts one background shipper: a separate process (`kilometers
// sync --background`) that ships everything pending from the store and
// exits. It returns a function that waits for the process to exit and
// reports whether it delivered. final marks the launch at the session's
// end, which nobody waits for: the monitor exits at once and the process
// finishes on its own.
type Launch func(final bool) (wait func() error, err error)

// SideOptions configure shipping beside a monitored session.
type SideOptions struct {
	// Interval is the least time between launches (the configured flush
	// interval).
	Interval time.Duration
	// Recorded counts the events of the session that a shipper can read
	// (in the store's files, not in a write buffer).
	Recorded func() int64
	Launch   Launch
	Logger   *slog.Logger
}

// Beside ships a session's events while it runs, from processes of their
// own. The monitor relays an MCP server's stdio; shipping in the same
// process put the shipper's CPU time, its garbage collections and its
// memory (a gzip writer, HTTP client, batch buffers: about 2.5 MiB) into the
// process whose latency and footprint matter most. Instead, at most every
// Interval, when the session recorded events since the last launch and no
// shipper of this session is running, Beside launches one. A failed one
// (API down, bad key) delays the next launch with exponential backoff and
// jitter; events wait in the spool meanwhile.
//
// The returned stop, to call once after the session's last event is in the
// store, launches a final shipper for what is left and returns without
// waiting for it.
func Beside(ctx context.Context, o SideOptions) (stop func()) {
	if o.Interval <= 0 {
		o.Interval = DefaultFlushInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b := &beside{o: o}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(o.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				b.tick(time.Now())
			}
		}
	}()
	return func() {
		cancel()
		<-done
		b.final()
	}
}

type beside struct {
	o SideOptions

	mu       sync.Mutex
	running  bool
	launched int64 // Recorded() when the last shipper started
	failures int   // consecutive failed shippers
	retryAt  time.Time
	warned   bool
}

func (b *beside) tick(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.o.Recorded()
	if b.running || n == b.launched || now.Before(b.retryAt) {
		return
	}
	wait, err := b.o.Launch(false)
	if err != nil {
		b.failed(now, err)
		return
	}
	before := b.launched
	b.running, b.launched = true, n
	go func() {
		err := wait()
		b.mu.Lock()
		defer b.mu.Unlock()
		b.running = false
		if errors.Is(err, ErrBusy) {
			// Another session's shipper is at work; it may take these
			// events too, but nothing says so: launch again next time.
			b.launched = before
			return
		}
		if err != nil {
			b.failed(time.Now(), err)
			return
		}
		if b.failures > 0 {
			b.o.Logger.Info("ship: delivering again", "after_failures", b.failures)
		}
		b.failures = 0
	}()
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
	b.mu.Lock()
	defer b.mu.Unlock()
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
