package admin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// MaintenanceOptions are the flags of `admin maintenance`.
type MaintenanceOptions struct {
	*Common
	JSON bool
}

func newMaintenanceCmd(c *Common, runF func(context.Context, *MaintenanceOptions) error) *cobra.Command {
	o := &MaintenanceOptions{Common: c}
	cmd := &cobra.Command{
		Use:   "maintenance",
		Short: "Run the maintenance job now: time partitions ahead, expired ones dropped",
		Long: `Run the backend's maintenance job now: make the time partitions ahead
(events a week ahead, rollups two months) and drop those older than every
tenant's retention. The job runs by itself every hour; this is for
operators and tests. Running it while a scheduled run is going is safe.`,
		Example: `  kilometers admin maintenance
  kilometers admin maintenance --json | jq -r '.dropped[]'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return run(cmd.Context(), o, runF, RunMaintenance) },
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, `print {"created": [...], "dropped": [...], "duration_ms": ...} as JSON`)
	return cmd
}

// RunMaintenance runs the job and says what it did.
func RunMaintenance(ctx context.Context, o *MaintenanceOptions) error {
	client, err := o.Client()
	if err != nil {
		return err
	}
	res, err := client.Maintenance(ctx)
	if err != nil {
		return fmt.Errorf("run maintenance: %w", err)
	}
	return jsonOr(o.IO, o.JSON, res, func() error {
		fmt.Fprintf(o.IO.Out, "Maintenance done in %.0f ms: %d partitions created, %d dropped\n", res.DurationMS, len(res.Created), len(res.Dropped))
		for _, p := range res.Created {
			fmt.Fprintf(o.IO.Out, "  created %s\n", p)
		}
		for _, p := range res.Dropped {
			fmt.Fprintf(o.IO.Out, "  dropped %s\n", p)
		}
		return nil
	})
}
