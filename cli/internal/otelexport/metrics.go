package otelexport

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/kilometers-ai/kilometers/shared/event"
)

// Metric names: the conventions' two histograms (seen from the client
// side of the pipe, where Kilometers sits), and call and failure counts per
// tool of our own namespace.
const (
	metricOperationDuration = "mcp.client.operation.duration"
	metricSessionDuration   = "mcp.client.session.duration"
	metricToolCalls         = "kilometers.mcp.tool.calls"
	metricToolFailures      = "kilometers.mcp.tool.failures"
)

// durationBounds are the bucket boundaries the conventions ask for, in
// seconds, for both histograms.
var durationBounds = []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300}

// histogram is one data point of a delta histogram.
type histogram struct {
	attrs      []attr
	count      uint64
	sum        float64
	min, max   float64
	buckets    []uint64
	start, end time.Time
}

func (h *histogram) record(v float64, at time.Time) {
	if h.buckets == nil {
		h.buckets = make([]uint64, len(durationBounds)+1)
		h.min, h.max, h.start, h.end = v, v, at, at
	}
	h.count++
	h.sum += v
	h.min, h.max = min(h.min, v), max(h.max, v)
	if at.Before(h.start) {
		h.start = at
	}
	if at.After(h.end) {
		h.end = at
	}
	i := sort.SearchFloat64s(durationBounds, v) // bucket i holds (bounds[i-1], bounds[i]]
	h.buckets[i]++
}

// counter is one data point of a delta sum.
type counter struct {
	attrs      []attr
	n          int64
	start, end time.Time
}

// metricBatch is the metrics of one batch of events: deltas, so each
// event is counted in exactly one export.
type metricBatch struct {
	ops, sessions      map[string]*histogram
	calls, failures    map[string]*counter
	opOrder, sessOrder []string
	toolOrder          []string
}

func newMetricBatch() *metricBatch {
	return &metricBatch{ops: map[string]*histogram{}, sessions: map[string]*histogram{}, calls: map[string]*counter{}, failures: map[string]*counter{}}
}

func (m *metricBatch) empty() bool { return len(m.ops) == 0 && len(m.sessions) == 0 }

// attrKey identifies a set of attributes.
func attrKey(attrs []attr) string {
	var b strings.Builder
	for _, a := range attrs {
		b.WriteString(a.key)
		b.WriteByte('=')
		b.WriteString(a.s)
		b.WriteByte(0)
	}
	return b.String()
}

// addReply records a reply: its operation's duration, and for a tool call
// the call and whether it failed.
func (m *metricBatch) addReply(e *event.Event, sess event.Session) {
	if e.LatencyMS == nil || e.Method == "" {
		return
	}
	attrs := []attr{str("mcp.method.name", e.Method), str("network.transport", "pipe")}
	if sess.ProtocolVersion != "" {
		attrs = append(attrs, str("mcp.protocol.version", sess.ProtocolVersion))
	}
	if e.Tool != "" {
		attrs = append(attrs, str("gen_ai.tool.name", e.Tool))
	}
	if e.Method == "tools/call" {
		attrs = append(attrs, str("gen_ai.operation.name", "execute_tool"))
	}
	if e.Prompt != "" {
		attrs = append(attrs, str("gen_ai.prompt.name", e.Prompt))
	}
	et := errorType(e)
	if et != "" {
		attrs = append(attrs, str("error.type", et))
	}
	k := attrKey(attrs)
	h, ok := m.ops[k]
	if !ok {
		h = &histogram{attrs: attrs}
		m.ops[k] = h
		m.opOrder = append(m.opOrder, k)
	}
	h.record(*e.LatencyMS/1000, e.TS)

	if e.Method != "tools/call" || e.Tool == "" {
		return
	}
	tattrs := []attr{str("gen_ai.tool.name", e.Tool)}
	if server := firstNonEmpty(e.Server, sess.Server); server != "" {
		tattrs = append(tattrs, str(attrServer, server))
	}
	tk := attrKey(tattrs)
	if _, ok := m.calls[tk]; !ok {
		m.calls[tk] = &counter{attrs: tattrs, start: e.TS, end: e.TS}
		m.failures[tk] = &counter{attrs: tattrs, start: e.TS, end: e.TS}
		m.toolOrder = append(m.toolOrder, tk)
	}
	for _, c := range []*counter{m.calls[tk], m.failures[tk]} {
		if e.TS.Before(c.start) {
			c.start = e.TS
		}
		if e.TS.After(c.end) {
			c.end = e.TS
		}
	}
	m.calls[tk].n++
	if et != "" {
		m.failures[tk].n++
	}
}

// addSession records the duration of a session that ended.
func (m *metricBatch) addSession(s event.Session) {
	if s.EndedAt == nil {
		return
	}
	attrs := []attr{str("network.transport", "pipe")}
	if s.ProtocolVersion != "" {
		attrs = append(attrs, str("mcp.protocol.version", s.ProtocolVersion))
	}
	k := attrKey(attrs)
	h, ok := m.sessions[k]
	if !ok {
		h = &histogram{attrs: attrs}
		m.sessions[k] = h
		m.sessOrder = append(m.sessOrder, k)
	}
	h.record(s.EndedAt.Sub(s.StartedAt).Seconds(), *s.EndedAt)
}

// encode writes an ExportMetricsServiceRequest.
func (m *metricBatch) encode(res []attr, version string) []byte {
	return message(nil, fExportResource, func(rm []byte) []byte {
		rm = message(rm, fRSResource, func(r []byte) []byte { return appendAttrs(r, fResourceAttrs, res) })
		return message(rm, fRSScope, func(sm []byte) []byte {
			sm = appendScope(sm, version)
			if len(m.opOrder) > 0 {
				sm = message(sm, fScopeItems, func(b []byte) []byte {
					return encodeHistogram(b, metricOperationDuration, "The duration of the MCP request as observed between the request and its reply on the pipe.", m.ops, m.opOrder)
				})
			}
			if len(m.sessOrder) > 0 {
				sm = message(sm, fScopeItems, func(b []byte) []byte {
					return encodeHistogram(b, metricSessionDuration, "The duration of the MCP session as observed by Kilometers.", m.sessions, m.sessOrder)
				})
			}
			if len(m.toolOrder) > 0 {
				sm = message(sm, fScopeItems, func(b []byte) []byte {
					return encodeSum(b, metricToolCalls, "Tool calls answered.", m.calls, m.toolOrder)
				})
				sm = message(sm, fScopeItems, func(b []byte) []byte {
					return encodeSum(b, metricToolFailures, "Tool calls that failed: a JSON-RPC error or a result with isError.", m.failures, m.toolOrder)
				})
			}
			return sm
		})
	})
}

func encodeHistogram(b []byte, name, desc string, points map[string]*histogram, order []string) []byte {
	b = appendString(b, fMetricName, name)
	b = appendString(b, fMetricDesc, desc)
	b = appendString(b, fMetricUnit, "s")
	return message(b, fMetricHistogram, func(h []byte) []byte {
		for _, k := range order {
			p := points[k]
			h = message(h, fDataPoints, func(d []byte) []byte {
				d = appendFixed64(d, fHDPStart, uint64(p.start.UnixNano()))
				d = appendFixed64(d, fHDPTime, uint64(p.end.UnixNano()))
				d = appendFixed64(d, fHDPCount, p.count)
				d = appendDouble(d, fHDPSum, p.sum)
				d = message(d, fHDPBuckets, func(x []byte) []byte {
					for _, n := range p.buckets {
						x = appendRawFixed64(x, n)
					}
					return x
				})
				d = message(d, fHDPBounds, func(x []byte) []byte {
					for _, v := range durationBounds {
						x = appendRawFixed64(x, math.Float64bits(v))
					}
					return x
				})
				d = appendAttrs(d, fHDPAttrs, p.attrs)
				d = appendDouble(d, fHDPMin, p.min)
				return appendDouble(d, fHDPMax, p.max)
			})
		}
		return appendVarint(h, fTemporality, temporalityDelta)
	})
}

func encodeSum(b []byte, name, desc string, points map[string]*counter, order []string) []byte {
	b = appendString(b, fMetricName, name)
	b = appendString(b, fMetricDesc, desc)
	b = appendString(b, fMetricUnit, "{call}")
	return message(b, fMetricSum, func(s []byte) []byte {
		for _, k := range order {
			p := points[k]
			s = message(s, fDataPoints, func(d []byte) []byte {
				d = appendFixed64(d, fNDPStart, uint64(p.start.UnixNano()))
				d = appendFixed64(d, fNDPTime, uint64(p.end.UnixNano()))
				d = appendFixed64(d, fNDPInt, uint64(p.n))
				return appendAttrs(d, fNDPAttrs, p.attrs)
			})
		}
		s = appendVarint(s, fTemporality, temporalityDelta)
		return appendVarint(s, fMonotonic, 1)
	})
}
