// Package otelexport exports recorded events from the local spool to an
// OpenTelemetry (OTLP/HTTP protobuf) endpoint: a span per request and its
// reply, following the OpenTelemetry semantic conventions for MCP, and the
// conventions' duration histograms with call and failure counts per tool.
//
// It runs in the background shipper (`kilometers sync --background`),
// never in the monitor that relays the MCP server. Traces and metrics each
// have their own delivery cursor in the store (store.Cursor), apart from
// the API's: a batch is claimed, encoded, posted, and acknowledged only
// after the endpoint answered 2xx, so each destination gets every event
// once and keeps going whatever the others do. Span ids derive from event
// ids: the one case that sends a batch twice (a crash after the endpoint's
// answer and before the ack is on disk) sends the same spans again.
//
// docs/otel.md describes the settings, the span and metric shapes, and the
// version of the conventions followed.
package otelexport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
	"github.com/kilometers-ai/kilometers/shared/event"
)

// The delivery cursors of the two signals.
const (
	TracesCursor  store.Cursor = "otlp-traces"
	MetricsCursor store.Cursor = "otlp-metrics"
)

// Defaults of Options.
const (
	DefaultBatchSize = 500
	DefaultMaxBytes  = 1 << 20
	// requestTimeout bounds one export request; OTLP exporters default to
	// 10s.
	requestTimeout = 10 * time.Second
)

// Options configure an export.
type Options struct {
	// TracesURL and MetricsURL are the signals' endpoints; an empty one is
	// not exported.
	TracesURL, MetricsURL string
	Headers               map[string]string
	// CaptureMode decides whether tool arguments and results go out:
	// only in config.CaptureFull, after shipping's rule (ship.Prepare).
	CaptureMode string
	// Version is Kilometers' version, the scope's and service's.
	Version string
	// Host names this machine in the resource.
	Host      string
	BatchSize int
	MaxBytes  int
	Client    *http.Client
	Logger    *slog.Logger
}

// OptionsFromConfig returns the options the configuration asks for.
func OptionsFromConfig(c *config.Config, version string) (Options, error) {
	h, err := c.OTLP.ParseHeaders()
	if err != nil {
		return Options{}, err
	}
	return Options{TracesURL: c.OTLP.TracesURL(), MetricsURL: c.OTLP.MetricsURL(), Headers: h, CaptureMode: c.CaptureMode, Version: version}, nil
}

func (o *Options) fill() {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.CaptureMode == "" {
		o.CaptureMode = config.CaptureRedacted
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: requestTimeout}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Version == "" {
		o.Version = "dev"
	}
}

// Report counts what an export did.
type Report struct {
	Spans   int `json:"spans"`
	Batches int `json:"batches"`
	// Dropped counts events of batches the endpoint refused as malformed
	// (400): sending them again cannot help.
	Dropped int `json:"dropped"`
}

// Exporter exports one store to one OTLP endpoint.
type Exporter struct {
	st *store.Store
	o  Options
}

// New returns an Exporter.
func New(st *store.Store, o Options) *Exporter {
	o.fill()
	return &Exporter{st: st, o: o}
}

// Flush exports everything pending for each configured signal. A signal
// that cannot be delivered (endpoint down, refused credentials) leaves
// its events pending and does not hold the other back; the errors are
// joined.
func (x *Exporter) Flush(ctx context.Context) (Report, error) {
	var total Report
	var errs []error
	if x.o.TracesURL != "" {
		r, err := x.flush(ctx, TracesCursor, x.o.TracesURL, x.traces)
		total.add(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("export traces to %s: %w", x.o.TracesURL, err))
		}
	}
	if x.o.MetricsURL != "" {
		r, err := x.flush(ctx, MetricsCursor, x.o.MetricsURL, x.metrics)
		r.Spans = 0
		total.add(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("export metrics to %s: %w", x.o.MetricsURL, err))
		}
	}
	return total, errors.Join(errs...)
}

func (r *Report) add(o Report) {
	r.Spans += o.Spans
	r.Batches += o.Batches
	r.Dropped += o.Dropped
}

// encoder turns a claimed batch and the signal's state into a request body
// (nil: nothing to send), the state after the batch, and the spans sent.
type encoder func(events []event.Event, sessions []event.Session, state []byte) (body, next []byte, spans int, err error)

func (x *Exporter) flush(ctx context.Context, cursor store.Cursor, url string, enc encoder) (Report, error) {
	var r Report
	state, err := x.st.ReadCursorState(cursor)
	if err != nil {
		return r, err
	}
	for {
		c, err := x.st.ClaimFor(ctx, cursor, x.o.BatchSize, x.o.MaxBytes)
		if err != nil {
			return r, fmt.Errorf("claim events: %w", err)
		}
		if c == nil {
			return r, nil
		}
		body, next, spans, err := enc(c.Events(), c.Sessions(), state)
		if err != nil {
			return r, errors.Join(fmt.Errorf("encode: %w", err), c.Release())
		}
		if body != nil {
			if err := x.post(ctx, url, body); err != nil {
				var rej *rejectedError
				if !errors.As(err, &rej) {
					return r, errors.Join(err, c.Release())
				}
				x.o.Logger.Warn("otel: endpoint refused a batch as malformed; not sending it again", "url", url, "events", len(c.Events()), "err", err)
				r.Dropped += len(c.Events())
				spans = 0
			}
		}
		if err := x.st.WriteCursorState(cursor, next); err != nil {
			return r, errors.Join(err, c.Release())
		}
		if err := c.Ack(ctx); err != nil {
			return r, fmt.Errorf("record exported batch: %w", err)
		}
		state = next
		r.Batches++
		r.Spans += spans
	}
}

// rejectedError is an endpoint's 400: the batch itself is the problem.
type rejectedError struct{ status int }

func (e *rejectedError) Error() string { return fmt.Sprintf("refused with HTTP %d", e.status) }

// post sends one OTLP/HTTP protobuf request.
func (x *Exporter) post(ctx context.Context, url string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	for k, v := range x.o.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "kilometers/"+x.o.Version)
	resp, err := x.o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusBadRequest:
		return &rejectedError{status: resp.StatusCode}
	}
	// 401/403/404 are settings to fix, 408/429/5xx an outage: the events
	// wait for the next shipper either way.
	return fmt.Errorf("export: endpoint answered HTTP %d", resp.StatusCode)
}

func (x *Exporter) resource() []attr {
	res := []attr{str("service.name", "kilometers"), str("service.version", x.o.Version)}
	if x.o.Host != "" {
		res = append(res, str("host.name", x.o.Host))
	}
	return res
}

// tracesState is what the traces signal remembers between batches.
type tracesState struct {
	Pending pendingRequests `json:"pending"`
}

func (x *Exporter) traces(events []event.Event, sessions []event.Session, state []byte) ([]byte, []byte, int, error) {
	st := tracesState{Pending: pendingRequests{}}
	if len(state) > 0 {
		if err := json.Unmarshal(state, &st); err != nil {
			x.o.Logger.Warn("otel: unreadable traces state; starting afresh", "err", err)
			st = tracesState{Pending: pendingRequests{}}
		}
		if st.Pending == nil {
			st.Pending = pendingRequests{}
		}
	}
	spans := buildSpans(events, sessionMap(sessions), st.Pending, x.o.CaptureMode)
	next, err := json.Marshal(st)
	if err != nil {
		return nil, nil, 0, err
	}
	if len(spans) == 0 {
		return nil, next, 0, nil
	}
	return encodeSpans(spans, x.resource(), x.o.Version), next, len(spans), nil
}

// metricsState is what the metrics signal remembers between batches: the
// ended sessions already counted (a session's last record comes with
// several batches).
type metricsState struct {
	Ended []string `json:"ended"`
}

// maxEnded bounds metricsState.Ended; a session's final record never
// comes back after many more sessions ended.
const maxEnded = 1024

func (x *Exporter) metrics(events []event.Event, sessions []event.Session, state []byte) ([]byte, []byte, int, error) {
	var st metricsState
	if len(state) > 0 {
		if err := json.Unmarshal(state, &st); err != nil {
			x.o.Logger.Warn("otel: unreadable metrics state; starting afresh", "err", err)
			st = metricsState{}
		}
	}
	byID := sessionMap(sessions)
	m := newMetricBatch()
	for i := range events {
		if events[i].IsReply() {
			m.addReply(&events[i], byID[events[i].SessionID])
		}
	}
	ended := map[string]bool{}
	for _, id := range st.Ended {
		ended[id] = true
	}
	for _, s := range sessions {
		if s.EndedAt != nil && !ended[s.ID] {
			m.addSession(s)
			ended[s.ID] = true
			st.Ended = append(st.Ended, s.ID)
		}
	}
	if len(st.Ended) > maxEnded {
		st.Ended = st.Ended[len(st.Ended)-maxEnded:]
	}
	next, err := json.Marshal(st)
	if err != nil {
		return nil, nil, 0, err
	}
	if m.empty() {
		return nil, next, 0, nil
	}
	return m.encode(x.resource(), x.o.Version), next, 0, nil
}

func sessionMap(sessions []event.Session) map[string]event.Session {
	m := make(map[string]event.Session, len(sessions))
	for _, s := range sessions {
		m[s.ID] = s
	}
	return m
}
