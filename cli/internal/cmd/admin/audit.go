package admin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
	"github.com/kilometers-ai/kilometers/shared/backend"
)

// AuditOptions are the flags of `admin audit`.
type AuditOptions struct {
	*Common
	Query backend.AuditQuery
	JSON  bool
}

func newAuditCmd(c *Common, runF func(context.Context, *AuditOptions) error) *cobra.Command {
	o := &AuditOptions{Common: c}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read the audit trail of admin actions, newest first",
		Long: `Read the audit trail: one entry per admin action (reads included), with
when, which admin credential (the first 12 hex digits of its SHA-256),
what, on which tenant or key, and from which address. One page at a time;
the next page's --cursor is printed on stderr.`,
		Example: `  kilometers admin audit
  kilometers admin audit --tenant 01a207de-8b16-7d10-afc3-6313c71168c2 --limit 20
  kilometers admin audit --json | jq '.entries[] | select(.action == "tenant.delete")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return run(cmd.Context(), o, runF, RunAudit) },
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Query.TenantID, "tenant", "", "only entries about this `tenant-id`")
	fl.IntVarP(&o.Query.Limit, "limit", "L", 50, fmt.Sprintf("entries per page (1-%d)", backend.MaxPageLimit))
	fl.StringVar(&o.Query.Cursor, "cursor", "", "start after this `cursor` (from the previous page)")
	fl.BoolVar(&o.JSON, "json", false, `print {"entries": [...], "next_cursor": ...} as JSON`)
	return cmd
}

// RunAudit prints one page of the audit trail.
func RunAudit(ctx context.Context, o *AuditOptions) error {
	if o.Query.Limit < 1 || o.Query.Limit > backend.MaxPageLimit {
		return cmdutil.FlagErrorf("invalid --limit %d: want 1-%d", o.Query.Limit, backend.MaxPageLimit)
	}
	client, err := o.Client()
	if err != nil {
		return err
	}
	page, err := client.Audit(ctx, o.Query)
	if err != nil {
		return fmt.Errorf("read the audit trail: %w", err)
	}
	return jsonOr(o.IO, o.JSON, page, func() error {
		tb := output.NewTable(o.IO, "ID", "AT", "ADMIN", "ACTION", "TENANT", "KEY", "ADDRESS")
		for _, e := range page.Entries {
			tb.AddRow(fmt.Sprint(e.ID), when(o.IO, &e.At), dash(e.Admin), e.Action, dash(e.TenantID), dash(e.KeyID), dash(e.Address))
		}
		if err := tb.Render(); err != nil {
			return err
		}
		if page.NextCursor != "" {
			more := "kilometers admin audit --cursor " + page.NextCursor
			if o.Query.TenantID != "" {
				more += " --tenant " + o.Query.TenantID
			}
			fmt.Fprintf(o.IO.ErrOut, "More: %s\n", more)
		}
		return nil
	})
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
