package admin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
	"github.com/kilometers-ai/kilometers/shared/backend"
)

// SettingsOptions are the flags of `admin settings`. Nil fields were not
// given and are not changed.
type SettingsOptions struct {
	*Common
	TenantID string
	Update   backend.SettingsUpdate
	JSON     bool
}

func newSettingsCmd(c *Common, runF func(context.Context, *SettingsOptions) error) *cobra.Command {
	o := &SettingsOptions{Common: c}
	var eventDays, rollupDays, readPerMinute int
	var ingestPerMinute, ingestPerDay int64
	cmd := &cobra.Command{
		Use:   "settings <tenant-id> [flags]",
		Short: "Show or set a tenant's retention and limits",
		Long: `Show a tenant's settings, or change the ones given as flags. 0 for a limit
means no limit.

The read limit is enforced now, per API key (429 with Retry-After once a key
has made that many read requests in the current minute). Retention and the
ingest limits are stored for the data lifecycle and quotas, which do not
enforce them yet.`,
		Example: `  kilometers admin settings 01a207de-8b16-7d10-afc3-6313c71168c2
  kilometers admin settings 01a207de-8b16-7d10-afc3-6313c71168c2 --event-retention-days 90 --rollup-retention-days 730
  kilometers admin settings 01a207de-8b16-7d10-afc3-6313c71168c2 --ingest-per-minute 50000 --ingest-per-day 5000000 --read-per-minute 1200`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.TenantID = args[0]
			fl := cmd.Flags()
			if fl.Changed("event-retention-days") {
				o.Update.EventRetentionDays = &eventDays
			}
			if fl.Changed("rollup-retention-days") {
				o.Update.RollupRetentionDays = &rollupDays
			}
			if fl.Changed("ingest-per-minute") {
				o.Update.IngestEventsPerMinute = &ingestPerMinute
			}
			if fl.Changed("ingest-per-day") {
				o.Update.IngestEventsPerDay = &ingestPerDay
			}
			if fl.Changed("read-per-minute") {
				o.Update.ReadRequestsPerMinute = &readPerMinute
			}
			return run(cmd.Context(), o, runF, RunSettings)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&eventDays, "event-retention-days", 0, "keep events and payloads this many `days` (1-3660)")
	fl.IntVar(&rollupDays, "rollup-retention-days", 0, "keep stats rollups this many `days` (1-3660)")
	fl.Int64Var(&ingestPerMinute, "ingest-per-minute", 0, "ingest limit in `events` per minute (0: none)")
	fl.Int64Var(&ingestPerDay, "ingest-per-day", 0, "ingest limit in `events` per day (0: none)")
	fl.IntVar(&readPerMinute, "read-per-minute", 0, "read `requests` per minute per API key (0: none)")
	fl.BoolVar(&o.JSON, "json", false, "print the tenant as JSON")
	return cmd
}

// RunSettings shows the settings, after changing those given.
func RunSettings(ctx context.Context, o *SettingsOptions) error {
	u := backend.UpdateTenantRequest{Settings: &o.Update}.Update()
	if err := u.Validate(); err != nil {
		return cmdutil.FlagErrorf("%s", backend.ErrorMessage(err))
	}
	client, err := o.Client()
	if err != nil {
		return err
	}
	var t backend.Tenant
	if u.Empty() {
		t, err = client.Tenant(ctx, o.TenantID)
	} else {
		t, err = client.UpdateTenant(ctx, o.TenantID, backend.UpdateTenantRequest{Settings: &o.Update})
	}
	if err != nil {
		return fmt.Errorf("tenant settings: %w", err)
	}
	return jsonOr(o.IO, o.JSON, t, func() error {
		return output.KeyValues(o.IO.Out, append([][2]string{{"Tenant", t.ID + " (" + t.Name + ")"}}, settingsPairs(t.Settings)...))
	})
}
