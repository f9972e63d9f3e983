// Package ship moves recorded events from the local spool to the Kilometers
// API.
//
// Delivery is exactly once in effect: a batch is claimed from the spool
// (exclusively, across processes), prepared for the wire (redacted per the
// capture mode, gzipped), posted, and acknowledged in the spool only after
// the API answered 2xx. A crash between the post and the acknowledgement
// sends the same events again, and the API, keyed by event id, counts them
// as duplicates rather than new events.
//
// A batch the API refuses outright (a 4xx other than 408/429 that is not
// about the key or the address) is set aside in the store where `kilometers
// sync` reports it, and never retried. A bad key or URL, an outage or rate
// limiting leave the batch in the spool for later.
package ship

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// Spool is what shipping needs from the store.
type Spool interface {
	// Claim takes up to maxEvents unshipped events (about maxBytes) that no
	// other process holds; nil, nil when there are none.
	Claim(ctx context.Context, maxEvents, maxBytes int) (Claim, error)
}

// Claim is a batch held exclusively until it is settled.
type Claim interface {
	Events() []event.Event
	Sessions() []event.Session
	// Ack marks the batch shipped, durably.
	Ack(ctx context.Context) error
	// SetAside keeps the batch for the user to see and never retries it.
	SetAside(ctx context.Context, reason string) error
	// Release gives the batch back unshipped.
	Release() error
}

// Sender posts a gzipped batch (apiclient.EncodeBatch) to the API.
type Sender interface {
	IngestEncoded(ctx context.Context, gz []byte) (backend.IngestResult, error)
}

// Defaults of Options.
const (
	DefaultBatchSize = 500
	DefaultMaxBytes  = 4 << 20
	// DefaultFlushInterval is SideOptions.Interval's default.
	DefaultFlushInterval = 5 * time.Second
)

// Options tune shipping. Zero values take the defaults.
type Options struct {
	// BatchSize bounds the events of one batch.
	BatchSize int
	// MaxBytes bounds the stored size of one batch's events; the body is
	// split further if it would exceed the API's limit.
	MaxBytes int
	// CaptureMode is config.CaptureFull, CaptureRedacted (default) or
	// CaptureMetadata.
	CaptureMode string
	// Logger gets warnings (default: discard).
	Logger *slog.Logger
	// Progress, if set, is called after each batch is settled.
	Progress func(Report)
}

func (o *Options) fill() {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	o.BatchSize = min(o.BatchSize, backend.MaxBatchEvents)
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.CaptureMode == "" {
		o.CaptureMode = config.CaptureRedacted
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// OptionsFromConfig returns the options the configuration asks for.
func OptionsFromConfig(c *config.Config) Options {
	return Options{BatchSize: c.BatchSize, CaptureMode: c.CaptureMode}
}

// Report counts what a shipping run did.
type Report struct {
	Batches    int `json:"batches"`
	Events     int `json:"events"`
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	// SetAside counts events of batches the API refused in this run.
	SetAside int `json:"set_aside"`
	// Reasons are the API's reasons for the refused batches.
	Reasons []string `json:"reasons,omitempty"`
}

// Add adds o to r.
func (r *Report) Add(o Report) {
	r.Batches += o.Batches
	r.Events += o.Events
	r.Accepted += o.Accepted
	r.Duplicates += o.Duplicates
	r.SetAside += o.SetAside
	r.Reasons = append(r.Reasons, o.Reasons...)
}

// Shipper ships from one spool to one API.
type Shipper struct {
	spool  Spool
	sender Sender
	opts   Options

	// The gzip writer is reused from batch to batch (newGzipWriter).
	gzMu sync.Mutex
	gz   *gzip.Writer
}

// New returns a Shipper.
func New(spool Spool, sender Sender, opts Options) *Shipper {
	opts.fill()
	return &Shipper{spool: spool, sender: sender, opts: opts}
}

// Flush ships everything claimable now, whatever its age, until the spool
// has nothing left that this process may claim. It stops at the first batch
// that could not be delivered for a reason that is not the batch's fault
// (outage after retries, bad key, context ended), leaving it pending, and
// returns that error with what was done before.
func (s *Shipper) Flush(ctx context.Context) (Report, error) {
	var total Report
	for {
		c, err := s.spool.Claim(ctx, s.opts.BatchSize, s.opts.MaxBytes)
		if err != nil {
			return total, fmt.Errorf("claim events to ship: %w", err)
		}
		if c == nil {
			return total, nil
		}
		r, err := s.settle(ctx, c)
		total.Add(r)
		if err != nil {
			return total, err
		}
	}
}

// settle ships one claim and acks, sets aside or releases it.
func (s *Shipper) settle(ctx context.Context, c Claim) (Report, error) {
	r := Report{Batches: 1, Events: len(c.Events())}
	res, err := s.send(ctx, c)
	if err == nil {
		if err := c.Ack(ctx); err != nil {
			// Delivered but not recorded: it will be sent again and
			// counted as duplicates by the API.
			return r, fmt.Errorf("record shipped batch: %w", err)
		}
		r.Accepted, r.Duplicates = res.Accepted, res.Duplicates
		s.progress(r)
		return r, nil
	}
	if e, ok := apiclient.AsError(err); ok && e.Rejected() {
		reason := e.Error()
		s.opts.Logger.Warn("ship: API refused a batch; set aside", "events", r.Events, "reason", reason)
		if err := c.SetAside(ctx, reason); err != nil {
			return r, fmt.Errorf("set aside refused batch (%s): %w", reason, err)
		}
		r.SetAside = r.Events
		r.Reasons = []string{reason}
		s.progress(r)
		return r, nil
	}
	if rerr := c.Release(); rerr != nil {
		err = errors.Join(err, rerr)
	}
	r.Batches, r.Events = 0, 0
	return r, err
}

func (s *Shipper) progress(r Report) {
	if s.opts.Progress != nil {
		s.opts.Progress(r)
	}
}

// send prepares a claim for the wire and posts it, split in parts if its
// body would exceed the API's limits.
func (s *Shipper) send(ctx context.Context, c Claim) (backend.IngestResult, error) {
	var total backend.IngestResult
	err := s.sendParts(ctx, c.Sessions(), c.Events(), func(r backend.IngestResult) {
		total.Accepted += r.Accepted
		total.Duplicates += r.Duplicates
	})
	return total, err
}

func (s *Shipper) sendParts(ctx context.Context, sessions []event.Session, events []event.Event, done func(backend.IngestResult)) error {
	limit := backend.MaxBodyBytes * 9 / 10
	if len(events) <= 1 {
		// Nothing left to split: let the API judge it.
		limit = math.MaxInt
	}
	hint := 0
	for i := range events {
		hint += len(events[i].Payload) + 320
	}
	gz, err := []byte(nil), errBodyTooBig
	if len(events) <= backend.MaxBatchEvents {
		s.gzMu.Lock()
		gz, err = s.gzipBatch(sessions, events, limit, hint)
		s.gzMu.Unlock()
	}
	if errors.Is(err, errBodyTooBig) {
		half := len(events) / 2
		if err := s.sendParts(ctx, sessions, events[:half], done); err != nil {
			return err
		}
		return s.sendParts(ctx, nil, events[half:], done)
	}
	if err != nil {
		return fmt.Errorf("encode batch: %w", err)
	}
	r, err := s.sender.IngestEncoded(ctx, gz)
	if err != nil {
		return err
	}
	done(r)
	return nil
}

// newGzipWriter is the compression apiclient.EncodeBatch uses: gzip at
// BestSpeed. The shipper keeps one and resets it for each batch: a deflate
// writer is several hundred KiB, too much to allocate per batch in a
// monitor that ships for hours.
func newGzipWriter(w io.Writer) (*gzip.Writer, error) {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return zw, nil
}
