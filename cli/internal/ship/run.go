package ship

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
)

// maxRetryWait bounds the wait between attempts after a failure in Run.
const maxRetryWait = 5 * time.Minute

// Run ships in the background until ctx ends. A batch leaves when it is
// full (BatchSize events or about MaxBytes) or when its oldest event has
// waited FlushInterval. After a failure it waits with exponential backoff
// and jitter (at least the API's Retry-After) and tries again, forever:
// events stay in the spool meanwhile. Run never blocks its caller's work; it
// only reads the spool and talks to the API.
func (s *Shipper) Run(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		wait, err := s.step(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			wait = apiclient.Jitter(s.opts.FlushInterval, maxRetryWait, failures-1)
			if e, ok := apiclient.AsError(err); ok && e.RetryAfter > wait {
				wait = min(e.RetryAfter, maxRetryWait)
			}
			level := s.opts.Logger.Debug
			if failures == 1 {
				level = s.opts.Logger.Warn
			}
			level("ship: cannot reach the API; events stay in the spool", "err", err, "retry_in", wait.Round(time.Millisecond), "failures", failures)
		case failures > 0:
			s.opts.Logger.Info("ship: API reachable again", "after_failures", failures)
			failures = 0
		}
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// step ships at most one batch, if one is due, and says how long to wait
// before the next step.
func (s *Shipper) step(ctx context.Context) (time.Duration, error) {
	poll := min(max(s.opts.FlushInterval/5, 100*time.Millisecond), time.Second)
	c, err := s.spool.Claim(ctx, s.opts.BatchSize, s.opts.MaxBytes)
	if err != nil || c == nil {
		return poll, err
	}
	full := s.full(c)
	if !full && !s.due(c) {
		return poll, c.Release()
	}
	if _, err := s.settle(ctx, c); err != nil {
		return poll, err
	}
	if full {
		return 0, nil // more may be waiting
	}
	return poll, nil
}

func (s *Shipper) full(c Claim) bool {
	evs := c.Events()
	if len(evs) >= s.opts.BatchSize {
		return true
	}
	var n int64
	for i := range evs {
		n += int64(len(evs[i].Payload)) + 256
	}
	return n >= int64(s.opts.MaxBytes)*3/4
}

func (s *Shipper) due(c Claim) bool {
	evs := c.Events()
	if len(evs) == 0 {
		return true // session records only
	}
	oldest := evs[0].TS
	for i := range evs {
		if evs[i].TS.Before(oldest) {
			oldest = evs[i].TS
		}
	}
	return time.Since(oldest) >= s.opts.FlushInterval
}

// Start runs Run in a goroutine. The returned stop ends it, then spends at
// most grace flushing what is left (what does not make it stays in the spool
// for the next run or `kilometers sync`), and returns that flush's report.
// Call stop once, after the last event was written to the store.
func (s *Shipper) Start(ctx context.Context) (stop func(grace time.Duration) (Report, error)) {
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.Run(runCtx)
	}()
	return func(grace time.Duration) (Report, error) {
		cancel()
		wg.Wait()
		fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
		defer fcancel()
		return s.Flush(fctx)
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

// FinalFlushGrace bounds how long the end of a monitor session may wait for
// its last events to ship. The client is waiting for the monitor to exit
// and the events are durable in the spool already (the next monitor or
// `kilometers sync` ships them), so the wait is short.
const FinalFlushGrace = 500 * time.Millisecond

// BackgroundMaxBytes is MaxBytes of the monitor's shipper. A batch is held
// in memory several times over (stored lines, decoded events, redacted
// payloads, the JSON body, its gzip): with DefaultMaxBytes a monitor
// shipping large results grew to ~50 MiB. The monitor lives next to the
// user's MCP client for hours; smaller batches cost a few more requests.
const BackgroundMaxBytes = 512 << 10

// Background starts shipping from st when c configures an API, for the
// monitor: events ship while the session runs, and the returned stop (to
// call once, after the session's last event is written to the store) ends
// shipping with a final flush of at most FinalFlushGrace. Whatever does not
// make it stays in the spool for the next run or `kilometers sync`. With no
// API configured it does nothing and stop returns at once.
func Background(ctx context.Context, c *config.Config, st *store.Store, logger *slog.Logger, userAgent string) (stop func()) {
	client := apiclient.FromConfig(c, userAgent)
	if client == nil {
		return func() {}
	}
	opts := OptionsFromConfig(c)
	opts.Logger = logger
	opts.MaxBytes = BackgroundMaxBytes
	s := New(FromStore(st), client, opts)
	halt := s.Start(ctx)
	return func() {
		if _, err := halt(FinalFlushGrace); err != nil && logger != nil {
			logger.Debug("ship: final flush incomplete; the rest stays in the spool", "err", err)
		}
	}
}
