package sync

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/kilometers-ai/kilometers/cli/internal/alerts"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/otelexport"
	"github.com/kilometers-ai/kilometers/cli/internal/ship"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
)

// result is what one destination of a background shipper did.
type result struct {
	configured bool
	err        error
}

// backgroundOutcome is a background shipper's exit: a failure, for the
// monitor to back off before the next launch, only when every configured
// destination failed. The monitor's backoff is shared by all of them, so
// one destination down (an OTLP endpoint misconfigured, the API in an
// outage) must not slow the others to its pace; it is tried again by the
// next shipper, launched as the session records more events.
func backgroundOutcome(rs ...result) error {
	var errs []error
	delivered := false
	for _, r := range rs {
		if !r.configured {
			continue
		}
		if r.err != nil {
			errs = append(errs, r.err)
		} else {
			delivered = true
		}
	}
	if delivered {
		return nil
	}
	return errors.Join(errs...)
}

// exportOTLP exports what is pending for the configured OTLP endpoint, if
// any: the background shipper's second destination, with its own delivery
// state in the store.
func exportOTLP(ctx context.Context, c *config.Config, st *store.Store, userAgent string) result {
	o := syncOTLP(ctx, c, st, userAgent)
	if o == nil {
		return result{}
	}
	return result{configured: true, err: o.err}
}

// syncOTLP exports what is pending for the configured OTLP endpoint; nil
// when none is configured.
func syncOTLP(ctx context.Context, c *config.Config, st *store.Store, userAgent string) *OTLPOutput {
	if !c.OTLPEnabled() {
		return nil
	}
	out := &OTLPOutput{Endpoint: c.OTLP.TracesURL()}
	if out.Endpoint == "" {
		out.Endpoint = c.OTLP.MetricsURL()
	}
	o, err := otelexport.OptionsFromConfig(c, strings.TrimPrefix(userAgent, "kilometers/"))
	if err != nil {
		out.err, out.Error = err, err.Error()
		return out
	}
	o.Host, _ = os.Hostname()
	// Background-sized batches, as for the API: the shipper runs beside
	// the user's MCP client and stays small.
	o.MaxBytes = ship.BackgroundMaxBytes
	out.Report, err = otelexport.New(st, o).Flush(ctx)
	if err != nil {
		out.err, out.Error = err, err.Error()
	}
	return out
}

// evaluateAlerts runs the local alert rules, if any, over what was recorded
// since the last run and delivers what fires.
func evaluateAlerts(ctx context.Context, c *config.Config, st *store.Store, userAgent string, getenv func(string) string) result {
	a := syncAlerts(ctx, c, st, userAgent, getenv)
	if a == nil {
		return result{}
	}
	return result{configured: true, err: a.err}
}

// syncAlerts runs the local alert rules; nil when there are none.
func syncAlerts(ctx context.Context, c *config.Config, st *store.Store, userAgent string, getenv func(string) string) *AlertsOutput {
	if !alerts.Configured(c.Home) {
		return nil
	}
	out := &AlertsOutput{}
	var err error
	out.Report, err = alerts.Run(ctx, st, c.Home, &alerts.Sender{Getenv: getenv, UserAgent: userAgent})
	if err != nil {
		out.err, out.Error = err, err.Error()
	}
	return out
}
