package sync

import (
	"context"
	"os"
	"strings"

	"github.com/kilometers-ai/kilometers/cli/internal/alerts"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/cli/internal/otelexport"
	"github.com/kilometers-ai/kilometers/cli/internal/ship"
	"github.com/kilometers-ai/kilometers/cli/internal/store"
)

// exportOTLP exports what is pending for the configured OTLP endpoint, if
// any: the background shipper's second destination, with its own delivery
// state in the store.
func exportOTLP(ctx context.Context, c *config.Config, st *store.Store, userAgent string) error {
	if !c.OTLPEnabled() {
		return nil
	}
	o, err := otelexport.OptionsFromConfig(c, strings.TrimPrefix(userAgent, "kilometers/"))
	if err != nil {
		return err
	}
	o.Host, _ = os.Hostname()
	// Background-sized batches, as for the API: the shipper runs beside
	// the user's MCP client and stays small.
	o.MaxBytes = ship.BackgroundMaxBytes
	_, err = otelexport.New(st, o).Flush(ctx)
	return err
}

// evaluateAlerts runs the local alert rules, if any, over what was recorded
// since the last run and delivers what fires.
func evaluateAlerts(ctx context.Context, c *config.Config, st *store.Store, userAgent string, getenv func(string) string) error {
	if !alerts.Configured(c.Home) {
		return nil
	}
	_, err := alerts.Run(ctx, st, c.Home, &alerts.Sender{Getenv: getenv, UserAgent: userAgent})
	return err
}
