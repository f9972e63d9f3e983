package config

import (
	"strings"
	"testing"
)

func TestOTLPSettings(t *testing.T) {
	home := t.TempDir()
	if err := WriteFile(Path(home), File{OTLPFile: OTLPFile{OTLPEndpoint: "http://file.example:4318", OTLPHeaders: "x-file=1"}}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(home, env(map[string]string{
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://metrics.example/otlp/v1/metrics",
		"OTEL_EXPORTER_OTLP_HEADERS":          "Authorization=Bearer%20tok123456789,x-team=a",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.OTLPEnabled() || !c.BackgroundShipping() || c.ShippingEnabled() {
		t.Errorf("enabled: otlp %v background %v api %v", c.OTLPEnabled(), c.BackgroundShipping(), c.ShippingEnabled())
	}
	if got := c.OTLP.TracesURL(); got != "http://file.example:4318/v1/traces" {
		t.Errorf("traces URL = %q", got)
	}
	if got := c.OTLP.MetricsURL(); got != "https://metrics.example/otlp/v1/metrics" {
		t.Errorf("metrics URL = %q (a signal endpoint is used as it is)", got)
	}
	h, err := c.OTLP.ParseHeaders()
	if err != nil || h["Authorization"] != "Bearer tok123456789" || h["x-team"] != "a" || len(h) != 2 {
		t.Errorf("headers = %v, %v (the variable wins over the file, values URL-decoded)", h, err)
	}
	if c.Sources[KeyOTLPHeaders] != SourceEnv || c.Sources[KeyOTLPEndpoint] != SourceFile {
		t.Errorf("sources = %v", c.Sources)
	}
	if v := c.Value(KeyOTLPHeaders); strings.Contains(v, "tok123456789") {
		t.Errorf("Value shows a header credential: %q", v)
	}
	if v := c.Value(KeyOTLPProtocol); v != OTLPProtocolHTTPProtobuf {
		t.Errorf("default protocol = %q", v)
	}
	if f := c.ToFile(); f.OTLPEndpoint != "http://file.example:4318" || f.OTLPHeaders == "" {
		t.Errorf("ToFile = %+v", f.OTLPFile)
	}
	if EnvVar(KeyOTLPTracesEndpoint) != "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" {
		t.Errorf("EnvVar = %s", EnvVar(KeyOTLPTracesEndpoint))
	}
}

// A bad OTLP setting is a Problem like any other: Load goes on, the setting
// keeps what the layers below gave it, and Check on it fails, naming it.
func TestOTLPInvalid(t *testing.T) {
	cases := map[string]struct {
		vars map[string]string
		key  string
	}{
		"grpc":        {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, KeyOTLPProtocol},
		"not a URL":   {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"}, KeyOTLPEndpoint},
		"bad scheme":  {map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://x/v1/traces"}, KeyOTLPTracesEndpoint},
		"bad headers": {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, KeyOTLPHeaders},
		"bad escape":  {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_EXPORTER_OTLP_HEADERS": "a=%zz"}, KeyOTLPHeaders},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, err := Load(t.TempDir(), env(c.vars))
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Check(c.key); err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP") {
				t.Errorf("Check(%s) = %v, want the problem, naming the variable", c.key, err)
			}
			if v := *cfg.otlpField(c.key); v != "" {
				t.Errorf("%s = %q: the bad value was applied", c.key, v)
			}
		})
	}
	c, err := Load(t.TempDir(), env(map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "HTTP/Protobuf"}))
	if err != nil || c.OTLPEnabled() || len(c.Problems) != 0 {
		t.Errorf("protocol alone = %v, problems %v; want accepted and nothing enabled", err, c.Problems)
	}
}
