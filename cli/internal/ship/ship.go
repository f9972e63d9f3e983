// Package ship moves recorded events from the local spool to the Kilometers
// API.
//
// Delivery is exactly once in effect: one process at a time ships a store
// (the caller holds the store's shipping lock, store.LockShipping); it
// claims a batch from the spool, prepares it for the wire (Outgoing, then
// gzip), posts it, and acknowledges it in the spool only after the API
// answered 2xx. A crash between the post and the acknowledgement
// sends the same events again, and the API, keyed by event id, counts them
// as duplicates rather than new events.
//
// One refused event never blocks the rest. A batch that fails in a way that
// may be its data's fault (a 4xx other than 408/429 that is not about the
// key or the address, or a 5xx other than 501/503 that persisted through
// the client's retries) is narrowed: sent again in halves, and the halves
// that fail in halves again, until each failing session or event is alone.
// Those are set aside in the store, where `kilometers sync` reports them,
// and never retried; everything else ships. A bad key or URL, an outage,
// rate limiting or a busy API leave the batch in the spool for later: after
// the first 5xx the shipper asks GET /health, and an API that says it is
// down is not narrowed; a piece that failed before the API was seen
// working is sent once more before it is blamed.
package ship

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"

	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// Spool is what shipping needs from the store.
type Spool interface {
	// Claim takes up to maxEvents unshipped events (about maxBytes); nil,
	// nil when there are none.
	Claim(ctx context.Context, maxEvents, maxBytes int) (Claim, error)
}

// Claim is a batch taken from the spool until it is settled.
type Claim interface {
	Events() []event.Event
	Sessions() []event.Session
	// Ack marks the batch shipped, durably.
	Ack(ctx context.Context) error
	// SetAside keeps some of the batch's sessions and events for the user
	// to see, with the API's reason, durably; it does not settle the claim:
	// Ack then takes them out of the spool with the rest, never to be
	// retried. Setting aside the same events again (after a crash before
	// the Ack) keeps one copy.
	SetAside(ctx context.Context, reason string, sessions []event.Session, events []event.Event) error
	// Release gives the batch back unshipped.
	Release() error
}

// Sender posts a gzipped batch (apiclient.EncodeBatch) to the API.
type Sender interface {
	IngestEncoded(ctx context.Context, gz []byte) (backend.IngestResult, error)
}

// fewRetriesSender is a Sender that can also send with fewer retries
// (apiclient.Client), which narrowing uses once the API has taken events
// of the claim.
type fewRetriesSender interface {
	IngestEncodedFewRetries(ctx context.Context, gz []byte) (backend.IngestResult, error)
}

// healthSender is a Sender that can ask whether the API and its database
// are up (apiclient.Client): one cheap question that tells an outage from
// a batch the API fails on, before narrowing sends anything in pieces.
type healthSender interface {
	Health(ctx context.Context) (apiclient.Health, error)
}

// defaultMaxBytes is Options.MaxBytes's default.
const defaultMaxBytes = 4 << 20

// Options tune shipping. Zero values take the defaults.
type Options struct {
	// BatchSize bounds the events of one batch (config.DefaultBatchSize
	// when zero).
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
		o.BatchSize = config.DefaultBatchSize
	}
	o.BatchSize = min(o.BatchSize, backend.MaxBatchEvents)
	if o.MaxBytes <= 0 {
		o.MaxBytes = defaultMaxBytes
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
	// SetAside counts the events the API refused in this run, set aside.
	SetAside int `json:"set_aside"`
	// SetAsideSessions counts the session records it refused, set aside.
	SetAsideSessions int `json:"set_aside_sessions"`
	// Reasons are the API's reasons for what it refused.
	Reasons []string `json:"reasons,omitempty"`
}

// Add adds o to r.
func (r *Report) Add(o Report) {
	r.Batches += o.Batches
	r.Events += o.Events
	r.Accepted += o.Accepted
	r.Duplicates += o.Duplicates
	r.SetAside += o.SetAside
	r.SetAsideSessions += o.SetAsideSessions
	r.Reasons = append(r.Reasons, o.Reasons...)
}

// Shipper ships from one spool to one API.
type Shipper struct {
	spool  Spool
	sender Sender
	opts   Options
	enc    encoder
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

// settle ships one claim and acks or releases it. What the API refused is
// set aside before the Ack, so a crash in between sends the rest again (the
// API counts duplicates) and sets the same items aside again.
func (s *Shipper) settle(ctx context.Context, c Claim) (Report, error) {
	r := Report{Batches: 1, Events: len(c.Events())}
	res, refused, err := s.deliver(ctx, part{sessions: c.Sessions(), events: c.Events()})
	for _, f := range refused {
		if err != nil {
			break
		}
		s.opts.Logger.Warn("ship: the API keeps refusing a record; set aside", "sessions", len(f.sessions), "events", len(f.events), "reason", f.reason)
		if serr := c.SetAside(ctx, f.reason, f.sessions, f.events); serr != nil {
			err = fmt.Errorf("set aside refused events (%s): %w", f.reason, serr)
		}
	}
	if err != nil {
		if rerr := c.Release(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		r.Batches, r.Events = 0, 0
		return r, err
	}
	if err := c.Ack(ctx); err != nil {
		// Delivered but not recorded: it will be sent again and
		// counted as duplicates by the API.
		return r, fmt.Errorf("record shipped batch: %w", err)
	}
	r.Accepted, r.Duplicates = res.Accepted, res.Duplicates
	for _, f := range refused {
		r.SetAside += len(f.events)
		r.SetAsideSessions += len(f.sessions)
		r.Reasons = append(r.Reasons, f.reason)
	}
	s.progress(r)
	return r, nil
}

// part is some of a claim's sessions and events, sent on their own.
type part struct {
	sessions []event.Session
	events   []event.Event
	reason   string // why the API refused it, once it did
	// early: it failed before the API was seen working, so its 5xx may
	// be an outage that has since ended.
	early bool
}

func (p part) items() int { return len(p.sessions) + len(p.events) }

// halves splits a part of two items or more: sessions from events first
// (the API takes either without the other), then each in halves.
func (p part) halves() (part, part) {
	switch {
	case len(p.sessions) > 0 && len(p.events) > 0:
		return part{sessions: p.sessions}, part{events: p.events}
	case len(p.sessions) > 1:
		h := len(p.sessions) / 2
		return part{sessions: p.sessions[:h]}, part{sessions: p.sessions[h:]}
	default:
		h := len(p.events) / 2
		return part{events: p.events[:h]}, part{events: p.events[h:]}
	}
}

// maxBlindFailures bounds the 5xx answers to parts holding events that
// narrowing takes before any event of the claim went through: past it the
// API is failing, not an event. That is 8 requests: the events with and
// without their sessions, their halves and their quarters; up to three
// failing events leave a quarter that goes through.
const maxBlindFailures = 8

// blame tells what a failed send says about the data sent: judged (the API
// refused the data: it will refuse it every time), suspect (a 5xx that
// lasted through the retries: maybe the data, maybe the API), or neither
// (transport, credentials, address, rate limiting, a busy API, the
// context), when narrowing is pointless.
func blame(err error) (judged, suspect bool) {
	e, ok := apiclient.AsError(err)
	if !ok {
		return false, false
	}
	if e.Rejected() {
		return true, false
	}
	return false, e.Status >= 500 && e.Status != http.StatusNotImplemented && e.Status != http.StatusServiceUnavailable
}

// deliver sends p, narrowing it down level by level (all the parts of one
// level are sent before any is split again, so a lone bad event shows the
// API working within two levels) until every failing item is alone. It
// returns what the API took and the single-item parts it refused. It fails,
// with nothing to set aside, when a failure is not the data's fault or
// when 5xx answers look like an outage: more than maxBlindFailures of them
// before the API took or judged anything of the claim, or a lone item
// still failing with a 5xx while nothing else did go through.
func (s *Shipper) deliver(ctx context.Context, whole part) (backend.IngestResult, []part, error) {
	var (
		total    backend.IngestResult
		refused  []part
		suspects []part
		working  bool // the API took events of the claim, or judged some
		blind    int  // 5xx failures while !working
		checked  bool // the API's health was asked after a 5xx
		lastErr  error
	)
	level := []part{whole}
	for len(level) > 0 {
		var next []part
		for _, p := range level {
			err := s.sendParts(ctx, working, p.sessions, p.events, func(r backend.IngestResult) {
				total.Accepted += r.Accepted
				total.Duplicates += r.Duplicates
			})
			if err == nil {
				// Session records alone prove little: they take another
				// statement than events do.
				working = working || len(p.events) > 0
				continue
			}
			judged, suspect := blame(err)
			if !judged && !suspect {
				return total, nil, err
			}
			lastErr = err
			p.reason = err.Error()
			switch {
			case judged:
				working = true
			case !working:
				if !checked {
					// The first 5xx of a claim: an API that says it is
					// down is down, and pieces would only fail too.
					checked = true
					if !s.healthy(ctx) {
						return total, nil, err
					}
				}
				if len(p.events) > 0 {
					if blind++; blind >= maxBlindFailures {
						return total, nil, err
					}
				}
			}
			switch {
			case p.items() > 1:
				a, b := p.halves()
				next = append(next, a, b)
			case judged:
				refused = append(refused, p)
			default:
				p.early = !working
				suspects = append(suspects, p)
			}
		}
		level = next
	}
	if len(suspects) > 0 {
		if !working {
			return total, nil, lastErr
		}
		// A suspect may have failed before the API came back (an outage
		// that ended during narrowing): only one that fails again now
		// that the API is seen working is the data's fault.
		for _, p := range suspects {
			if !p.early {
				refused = append(refused, p)
				continue
			}
			err := s.sendParts(ctx, true, p.sessions, p.events, func(r backend.IngestResult) {
				total.Accepted += r.Accepted
				total.Duplicates += r.Duplicates
			})
			if err == nil {
				continue
			}
			if judged, suspect := blame(err); !judged && !suspect {
				return total, nil, err
			}
			p.reason = err.Error()
			refused = append(refused, p)
		}
	}
	return total, refused, nil
}

// healthy reports whether the API says it and its database are up; a
// sender that cannot tell counts as up, leaving the judgement to narrowing.
func (s *Shipper) healthy(ctx context.Context) bool {
	hs, ok := s.sender.(healthSender)
	if !ok {
		return true
	}
	h, err := hs.Health(ctx)
	return err == nil && h.Status == "ok" && h.Database == "ok"
}

func (s *Shipper) progress(r Report) {
	if s.opts.Progress != nil {
		s.opts.Progress(r)
	}
}

// sendParts prepares sessions and events for the wire and posts them, split
// in parts if the body would exceed the API's limits.
func (s *Shipper) sendParts(ctx context.Context, fewRetries bool, sessions []event.Session, events []event.Event, done func(backend.IngestResult)) error {
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
		gz, err = s.enc.encode(sessions, events, s.opts.CaptureMode, limit, hint)
	}
	if errors.Is(err, errBodyTooBig) {
		half := len(events) / 2
		if err := s.sendParts(ctx, fewRetries, sessions, events[:half], done); err != nil {
			return err
		}
		return s.sendParts(ctx, fewRetries, nil, events[half:], done)
	}
	if err != nil {
		return fmt.Errorf("encode batch: %w", err)
	}
	ingest := s.sender.IngestEncoded
	if few, ok := s.sender.(fewRetriesSender); ok && fewRetries {
		ingest = few.IngestEncodedFewRetries
	}
	r, err := ingest(ctx, gz)
	if err != nil {
		return err
	}
	done(r)
	return nil
}
