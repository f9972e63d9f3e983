// Package otlptest is a real OTLP/HTTP receiver for tests: it decodes what
// arrives with the generated OTLP protobuf types, so a test checks the
// bytes an exporter wrote against the OTLP definitions, not against the
// exporter's own idea of them.
package otlptest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Receiver collects the spans and metrics posted to /v1/traces and
// /v1/metrics.
type Receiver struct {
	URL string
	srv *httptest.Server

	mu      sync.Mutex
	status  int           // answered instead of 200 when not 0
	hold    chan struct{} // when set, requests wait for it to close
	spans   []*tracepb.Span
	metrics []*metricspb.Metric
	headers []http.Header
	errs    []string
	// Requests counts every request, answered or not.
	requests int
	// held counts the requests waiting for a release now; abandoned, those
	// whose client went away while they waited.
	held, abandoned int
}

// New starts a receiver, stopped when the test ends.
func New(t testing.TB) *Receiver {
	r := &Receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL
	t.Cleanup(r.srv.Close)
	return r
}

// SetStatus makes the receiver answer code (and keep nothing) until
// SetStatus(0).
func (r *Receiver) SetStatus(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = code
}

// Hold makes requests wait, unanswered, until the returned release is
// called; a request whose client went away meanwhile is not kept, once the
// receiver has seen it go (Held, Abandoned): a client killed just before
// the release may still look connected, and its request would be kept.
func (r *Receiver) Hold() (release func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	r.hold = ch
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.hold = nil
			r.mu.Unlock()
			close(ch)
		})
	}
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests++
	hold, status := r.hold, r.status
	if hold != nil {
		r.held++
	}
	r.mu.Unlock()
	if hold != nil {
		gone := false
		select {
		case <-hold:
			gone = req.Context().Err() != nil
		case <-req.Context().Done():
			gone = true
		}
		r.mu.Lock()
		r.held--
		if gone {
			r.abandoned++
		}
		r.mu.Unlock()
		if gone {
			return // the exporter is gone: it never learnt of an answer
		}
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		r.fail("content type " + ct)
		http.Error(w, "want application/x-protobuf", http.StatusUnsupportedMediaType)
		return
	}
	switch req.URL.Path {
	case "/v1/traces":
		var m coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &m); err != nil {
			r.fail("traces: " + err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range m.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(b)
	case "/v1/metrics":
		var m colmetricspb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(body, &m); err != nil {
			r.fail("metrics: " + err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rm := range m.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				r.metrics = append(r.metrics, sm.Metrics...)
			}
		}
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		b, _ := proto.Marshal(&colmetricspb.ExportMetricsServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(b)
	default:
		http.NotFound(w, req)
	}
}

func (r *Receiver) fail(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, msg)
}

// Spans are the spans kept so far.
func (r *Receiver) Spans() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...)
}

// Metrics are the metrics kept so far.
func (r *Receiver) Metrics() []*metricspb.Metric {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*metricspb.Metric(nil), r.metrics...)
}

// Headers are the headers of the requests kept.
func (r *Receiver) Headers() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...)
}

// Requests counts the requests that arrived, kept or not.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Held counts the requests waiting, unanswered, for Hold's release.
func (r *Receiver) Held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held
}

// Abandoned counts the held requests whose client went away before they
// were answered: none of them was kept.
func (r *Receiver) Abandoned() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.abandoned
}

// Check fails the test if anything arrived that did not decode.
func (r *Receiver) Check(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Errorf("OTLP receiver: %s", e)
	}
}

// Attrs flattens attributes into a map of their values as Go values:
// string, int64, bool, float64 or []string.
func Attrs(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = value(kv.Value)
	}
	return m
}

func value(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_ArrayValue:
		var out []string
		for _, e := range x.ArrayValue.Values {
			out = append(out, e.GetStringValue())
		}
		return out
	}
	return nil
}
