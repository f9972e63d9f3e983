package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Keys of the OpenTelemetry export settings. Each is the standard OTLP
// exporter variable in lower case, and that variable (not a KILOMETERS_
// one) sets it: a team's existing OTEL_EXPORTER_OTLP_* environment works
// unchanged, and the config file holds the same names. docs/otel.md
// describes them.
const (
	KeyOTLPEndpoint        = "otel_exporter_otlp_endpoint"
	KeyOTLPTracesEndpoint  = "otel_exporter_otlp_traces_endpoint"
	KeyOTLPMetricsEndpoint = "otel_exporter_otlp_metrics_endpoint"
	KeyOTLPHeaders         = "otel_exporter_otlp_headers"
	KeyOTLPProtocol        = "otel_exporter_otlp_protocol"
)

// OTLPProtocolHTTPProtobuf is the one OTLP protocol Kilometers speaks, and
// the standard default.
const OTLPProtocolHTTPProtobuf = "http/protobuf"

// otlpKeys are the OTLP settings in display order, appended to Keys.
var otlpKeys = []string{KeyOTLPEndpoint, KeyOTLPTracesEndpoint, KeyOTLPMetricsEndpoint, KeyOTLPHeaders, KeyOTLPProtocol}

// OTLPSettings are the effective OpenTelemetry export settings.
type OTLPSettings struct {
	// Endpoint is the base URL; /v1/traces and /v1/metrics are appended.
	Endpoint string
	// TracesEndpoint and MetricsEndpoint, when set, are used as they are.
	TracesEndpoint  string
	MetricsEndpoint string
	// Headers is the standard "key=value,key2=value2" list, values
	// URL-encoded.
	Headers  string
	Protocol string
}

// OTLPFile is the on-disk form of the OTLP settings, embedded in File.
type OTLPFile struct {
	OTLPEndpoint        string `json:"otel_exporter_otlp_endpoint,omitempty"`
	OTLPTracesEndpoint  string `json:"otel_exporter_otlp_traces_endpoint,omitempty"`
	OTLPMetricsEndpoint string `json:"otel_exporter_otlp_metrics_endpoint,omitempty"`
	OTLPHeaders         string `json:"otel_exporter_otlp_headers,omitempty"`
	OTLPProtocol        string `json:"otel_exporter_otlp_protocol,omitempty"`
}

func isOTLPKey(key string) bool { return strings.HasPrefix(key, "otel_") }

// TracesURL is where spans go: the traces endpoint, or the base endpoint
// with /v1/traces; "" when neither is set.
func (o OTLPSettings) TracesURL() string { return signalURL(o.TracesEndpoint, o.Endpoint, "v1/traces") }

// MetricsURL is where metrics go, as TracesURL.
func (o OTLPSettings) MetricsURL() string {
	return signalURL(o.MetricsEndpoint, o.Endpoint, "v1/metrics")
}

func signalURL(specific, base, path string) string {
	if specific != "" {
		return specific
	}
	if base == "" {
		return ""
	}
	return strings.TrimRight(base, "/") + "/" + path
}

// Enabled reports whether any OTLP endpoint is configured.
func (o OTLPSettings) Enabled() bool { return o.TracesURL() != "" || o.MetricsURL() != "" }

// ParseHeaders decodes the standard header list. Values are URL-decoded;
// a malformed pair is an error rather than a header silently lost.
func (o OTLPSettings) ParseHeaders() (map[string]string, error) {
	h := map[string]string{}
	for pair := range strings.SplitSeq(o.Headers, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: want key=value pairs separated by commas, got %q", KeyOTLPHeaders, pair)
		}
		dv, err := url.QueryUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: value of %q: %w", KeyOTLPHeaders, k, err)
		}
		h[k] = dv
	}
	return h, nil
}

// OTLPEnabled reports whether events are exported to an OTLP endpoint.
func (c *Config) OTLPEnabled() bool { return c.OTLP.Enabled() }

// BackgroundShipping reports whether anything ships from the spool: the
// API, an OTLP endpoint, or both.
func (c *Config) BackgroundShipping() bool { return c.ShippingEnabled() || c.OTLPEnabled() }

func (c *Config) otlpField(key string) *string {
	switch key {
	case KeyOTLPEndpoint:
		return &c.OTLP.Endpoint
	case KeyOTLPTracesEndpoint:
		return &c.OTLP.TracesEndpoint
	case KeyOTLPMetricsEndpoint:
		return &c.OTLP.MetricsEndpoint
	case KeyOTLPHeaders:
		return &c.OTLP.Headers
	case KeyOTLPProtocol:
		return &c.OTLP.Protocol
	}
	return nil
}

func (f *OTLPFile) field(key string) *string {
	switch key {
	case KeyOTLPEndpoint:
		return &f.OTLPEndpoint
	case KeyOTLPTracesEndpoint:
		return &f.OTLPTracesEndpoint
	case KeyOTLPMetricsEndpoint:
		return &f.OTLPMetricsEndpoint
	case KeyOTLPHeaders:
		return &f.OTLPHeaders
	case KeyOTLPProtocol:
		return &f.OTLPProtocol
	}
	return nil
}

// setOTLP parses v into an OTLP key.
func (c *Config) setOTLP(key, v string) error {
	p := c.otlpField(key)
	if p == nil {
		return fmt.Errorf("unknown setting %q", key)
	}
	if key == KeyOTLPProtocol {
		v = strings.ToLower(v)
	}
	*p = v
	return nil
}

func (c *Config) applyOTLPFile(f OTLPFile) error {
	for _, k := range otlpKeys {
		if v := *f.field(k); v != "" {
			if err := c.Set(k, v, SourceFile); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkOTLP checks one OTLP setting: endpoints are http(s) URLs, the
// protocol is one Kilometers speaks, headers parse.
func (c *Config) checkOTLP(key string) error {
	switch key {
	case KeyOTLPEndpoint, KeyOTLPTracesEndpoint, KeyOTLPMetricsEndpoint:
		v := *c.otlpField(key)
		if v == "" {
			return nil
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s: want an http(s) URL such as http://localhost:4318, got %q", key, v)
		}
	case KeyOTLPProtocol:
		switch c.OTLP.Protocol {
		case "", OTLPProtocolHTTPProtobuf:
		default:
			return fmt.Errorf("%s: only %s is supported, got %q", KeyOTLPProtocol, OTLPProtocolHTTPProtobuf, c.OTLP.Protocol)
		}
	case KeyOTLPHeaders:
		_, err := c.OTLP.ParseHeaders()
		return err
	default:
		return fmt.Errorf("unknown setting %q", key)
	}
	return nil
}

// otlpValue returns an OTLP key's value as text; header values, which
// carry credentials, are masked.
func (c *Config) otlpValue(key string) string {
	if key == KeyOTLPProtocol && c.OTLP.Protocol == "" {
		return OTLPProtocolHTTPProtobuf
	}
	if key == KeyOTLPHeaders {
		h, err := c.OTLP.ParseHeaders()
		if err != nil || len(h) == 0 {
			return ""
		}
		var parts []string
		for k, v := range h {
			parts = append(parts, k+"="+MaskKey(v))
		}
		return strings.Join(parts, ",")
	}
	if p := c.otlpField(key); p != nil {
		return *p
	}
	return ""
}

func (c *Config) otlpFile() OTLPFile {
	var f OTLPFile
	for _, k := range otlpKeys {
		if c.Sources[k] != SourceDefault && c.Sources[k] != "" {
			*f.field(k) = *c.otlpField(k)
		}
	}
	return f
}
