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
	if !c.OTLPEnabled() {
		return result{}
	}
	o, err := otelexport.OptionsFromConfig(c, strings.TrimPrefix(userAgent, "kilometers/"))
	if err != nil {
		return result{configured: true, err: err}
	}
	o.Host, _ = os.Hostname()
	// Background-sized batches, as for the API: the shipper runs beside
	// the user's MCP client and stays small.
	o.MaxBytes = ship.BackgroundMaxBytes
	_, err = otelexport.New(st, o).Flush(ctx)
	return result{configured: true, err: err}
}

// evaluateAlerts runs the local alert rules, if any, over what was recorded
// since the last run and delivers what fires.
func evaluateAlerts(ctx context.Context, c *config.Config, st *store.Store, userAgent string, getenv func(string) string) result {
	if !alerts.Configured(c.Home) {
		return result{}
	}
	_, err := alerts.Run(ctx, st, c.Home, &alerts.Sender{Getenv: getenv, UserAgent: userAgent})
	return result{configured: true, err: err}
}
