package otelexport

import (
	"encoding/binary"
	"math"
)

// The OTLP messages are written here, field by field, in the protobuf wire
// format, rather than through the OpenTelemetry SDK, the generated
// go.opentelemetry.io/proto/otlp types or even protowire: each of them
// brings init-time work (descriptor registration, gRPC, and the protobuf
// module's hash of the executable) into every process of the binary, and
// the monitor relaying an MCP server is the same binary (docs/otel.md has
// the figures). The wire format needs four encodings: varints, fixed
// 32/64-bit words and length-prefixed bytes. The field numbers are those
// of opentelemetry-proto v1; the tests decode what this writes with the
// generated types.

// number is a protobuf field number.
type number uint32

// Wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

func appendTag(b []byte, num number, typ uint64) []byte {
	return binary.AppendUvarint(b, uint64(num)<<3|typ)
}

func appendRawFixed64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

func appendFixed32(b []byte, num number, v uint32) []byte {
	b = appendTag(b, num, wireFixed32)
	return binary.LittleEndian.AppendUint32(b, v)
}

func appendLen(b []byte, num number, n int) []byte {
	b = appendTag(b, num, wireBytes)
	return binary.AppendUvarint(b, uint64(n))
}

// Field numbers of the OTLP messages written here.
const (
	// ExportTraceServiceRequest / ExportMetricsServiceRequest
	fExportResource = 1
	// ResourceSpans / ResourceMetrics
	fRSResource = 1
	fRSScope    = 2
	// Resource
	fResourceAttrs = 1
	// ScopeSpans / ScopeMetrics
	fScope      = 1
	fScopeItems = 2
	// InstrumentationScope
	fScopeName    = 1
	fScopeVersion = 2
	// Span
	fSpanTraceID    = 1
	fSpanID         = 2
	fSpanTraceState = 3
	fSpanParentID   = 4
	fSpanName       = 5
	fSpanKind       = 6
	fSpanStart      = 7
	fSpanEnd        = 8
	fSpanAttrs      = 9
	fSpanStatus     = 15
	fSpanFlags      = 16
	// Status
	fStatusMessage = 2
	fStatusCode    = 3
	// KeyValue
	fKVKey   = 1
	fKVValue = 2
	// AnyValue
	fAnyString = 1
	fAnyInt    = 3
	fAnyArray  = 5
	// ArrayValue
	fArrayValues = 1
	// Metric
	fMetricName      = 1
	fMetricDesc      = 2
	fMetricUnit      = 3
	fMetricSum       = 7
	fMetricHistogram = 9
	// Sum / Histogram
	fDataPoints  = 1
	fTemporality = 2
	fMonotonic   = 3
	// NumberDataPoint
	fNDPStart = 2
	fNDPTime  = 3
	fNDPInt   = 6
	fNDPAttrs = 7
	// HistogramDataPoint
	fHDPStart   = 2
	fHDPTime    = 3
	fHDPCount   = 4
	fHDPSum     = 5
	fHDPBuckets = 6
	fHDPBounds  = 7
	fHDPAttrs   = 9
	fHDPMin     = 11
	fHDPMax     = 12
)

const (
	spanKindClient    = 3
	statusCodeError   = 2
	temporalityDelta  = 1
	sampledTraceFlags = 1
)

// attr is one attribute: a string, int or list of strings.
type attr struct {
	key  string
	kind byte // 's', 'i', 'a'
	s    string
	i    int64
	list []string
}

func str(k, v string) attr           { return attr{key: k, kind: 's', s: v} }
func integer(k string, v int64) attr { return attr{key: k, kind: 'i', i: v} }
func strs(k string, v []string) attr { return attr{key: k, kind: 'a', list: v} }

// message appends field num holding the message that body writes.
func message(b []byte, num number, body func([]byte) []byte) []byte {
	inner := body(nil)
	b = appendLen(b, num, len(inner))
	return append(b, inner...)
}

func appendString(b []byte, num number, s string) []byte {
	if s == "" {
		return b
	}
	b = appendLen(b, num, len(s))
	return append(b, s...)
}

func appendBytes(b []byte, num number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = appendLen(b, num, len(v))
	return append(b, v...)
}

func appendVarint(b []byte, num number, v uint64) []byte {
	b = appendTag(b, num, wireVarint)
	return binary.AppendUvarint(b, v)
}

func appendFixed64(b []byte, num number, v uint64) []byte {
	b = appendTag(b, num, wireFixed64)
	return appendRawFixed64(b, v)
}

func appendDouble(b []byte, num number, v float64) []byte {
	return appendFixed64(b, num, math.Float64bits(v))
}

func appendAnyString(b []byte, s string) []byte {
	b = appendLen(b, fAnyString, len(s))
	return append(b, s...)
}

func appendAttrs(b []byte, num number, attrs []attr) []byte {
	for _, a := range attrs {
		b = message(b, num, func(kv []byte) []byte {
			kv = appendString(kv, fKVKey, a.key)
			return message(kv, fKVValue, func(v []byte) []byte {
				switch a.kind {
				case 's':
					return appendAnyString(v, a.s)
				case 'i':
					return appendVarint(v, fAnyInt, uint64(a.i))
				default:
					return message(v, fAnyArray, func(arr []byte) []byte {
						for _, s := range a.list {
							arr = message(arr, fArrayValues, func(x []byte) []byte { return appendAnyString(x, s) })
						}
						return arr
					})
				}
			})
		})
	}
	return b
}

// appendScope writes the instrumentation scope: Kilometers and its version.
func appendScope(b []byte, version string) []byte {
	return message(b, fScope, func(s []byte) []byte {
		s = appendString(s, fScopeName, scopeName)
		return appendString(s, fScopeVersion, version)
	})
}
