package admin

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
	"github.com/kilometers-ai/kilometers/shared/backend"
)

func newTenantsCmd(c *Common, runs *Runs) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tenants <command>",
		Aliases: []string{"tenant"},
		Short:   "Create, list, show, rename and delete tenants",
		Example: `  kilometers admin tenants list
  kilometers admin tenants create acme`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	if runs == nil {
		runs = &Runs{}
	}
	cmd.AddCommand(newTenantsListCmd(c, runs.TenantsList), newTenantsGetCmd(c, runs.TenantsGet), newTenantsCreateCmd(c, runs.TenantsCreate),
		newTenantsRenameCmd(c, runs.TenantsRename), newTenantsDeleteCmd(c, runs.TenantsDelete))
	return cmd
}

// Runs replace the run functions of subcommands in tests of their flags.
type Runs struct {
	TenantsList   func(context.Context, *TenantsListOptions) error
	TenantsGet    func(context.Context, *TenantsGetOptions) error
	TenantsCreate func(context.Context, *TenantsCreateOptions) error
	TenantsRename func(context.Context, *TenantsRenameOptions) error
	TenantsDelete func(context.Context, *TenantsDeleteOptions) error
}

// TenantsListOptions are the flags of `admin tenants list`.
type TenantsListOptions struct {
	*Common
	JSON bool
}

func newTenantsListCmd(c *Common, runF func(context.Context, *TenantsListOptions) error) *cobra.Command {
	o := &TenantsListOptions{Common: c}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every tenant, oldest first",
		Example: `  kilometers admin tenants list
  kilometers admin tenants list --json | jq -r '.tenants[].tenant_id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return run(cmd.Context(), o, runF, RunTenantsList) },
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, `print {"tenants": [...]} as JSON`)
	return cmd
}

// RunTenantsList follows the pages of GET /api/admin/tenants.
func RunTenantsList(ctx context.Context, o *TenantsListOptions) error {
	client, err := o.Client()
	if err != nil {
		return err
	}
	all := backend.TenantPage{Tenants: []backend.Tenant{}}
	q := backend.PageQuery{Limit: backend.MaxPageLimit}
	for {
		page, err := client.Tenants(ctx, q)
		if err != nil {
			return fmt.Errorf("list tenants: %w", err)
		}
		all.Tenants = append(all.Tenants, page.Tenants...)
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	return jsonOr(o.IO, o.JSON, all, func() error {
		if len(all.Tenants) == 0 {
			fmt.Fprintln(o.IO.ErrOut, "No tenants yet. Create one with 'kilometers admin tenants create <name>'.")
			return nil
		}
		tb := output.NewTable(o.IO, "TENANT ID", "NAME", "CREATED")
		for _, t := range all.Tenants {
			tb.AddRow(t.ID, t.Name, when(o.IO, &t.CreatedAt))
		}
		return tb.Render()
	})
}

// TenantsGetOptions are the flags of `admin tenants get`.
type TenantsGetOptions struct {
	*Common
	TenantID string
	JSON     bool
}

func newTenantsGetCmd(c *Common, runF func(context.Context, *TenantsGetOptions) error) *cobra.Command {
	o := &TenantsGetOptions{Common: c}
	cmd := &cobra.Command{
		Use:     "get <tenant-id>",
		Short:   "Show a tenant and its settings",
		Example: `  kilometers admin tenants get 01a207de-8b16-7d10-afc3-6313c71168c2`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.TenantID = args[0]
			return run(cmd.Context(), o, runF, RunTenantsGet)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the tenant as JSON")
	return cmd
}

// RunTenantsGet prints one tenant.
func RunTenantsGet(ctx context.Context, o *TenantsGetOptions) error {
	client, err := o.Client()
	if err != nil {
		return err
	}
	t, err := client.Tenant(ctx, o.TenantID)
	if err != nil {
		return fmt.Errorf("get tenant: %w", err)
	}
	return jsonOr(o.IO, o.JSON, t, func() error { return printTenant(o.IO, t) })
}

func printTenant(ios *cmdutil.IOStreams, t backend.Tenant) error {
	return output.KeyValues(ios.Out, append([][2]string{
		{"Tenant", t.ID},
		{"Name", t.Name},
		{"Created", when(ios, &t.CreatedAt)},
	}, settingsPairs(t.Settings)...))
}

func settingsPairs(s backend.Settings) [][2]string {
	limit := func(n int64, unit string) string {
		if n == 0 {
			return "no limit"
		}
		return fmt.Sprintf("%d %s", n, unit)
	}
	return [][2]string{
		{"Event retention", fmt.Sprintf("%d days", s.EventRetentionDays)},
		{"Rollup retention", fmt.Sprintf("%d days", s.RollupRetentionDays)},
		{"Ingest per minute", limit(s.IngestEventsPerMinute, "events")},
		{"Ingest per day", limit(s.IngestEventsPerDay, "events")},
		{"Reads per minute", limit(int64(s.ReadRequestsPerMinute), "requests per key")},
	}
}

// TenantsCreateOptions are the flags of `admin tenants create`.
type TenantsCreateOptions struct {
	*Common
	Name   string
	Scopes []string
	JSON   bool
}

func newTenantsCreateCmd(c *Common, runF func(context.Context, *TenantsCreateOptions) error) *cobra.Command {
	o := &TenantsCreateOptions{Common: c}
	cmd := &cobra.Command{
		Use:   "create <name>",
		Short: "Create a tenant and its first API key",
		Long: `Create a tenant and its first API key, which may ingest and read unless
--scopes says otherwise. The key is printed this once: keep it now.`,
		Example: `  kilometers admin tenants create acme
  kilometers admin tenants create acme --json | jq -r .api_key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			if !cmd.Flags().Changed("scopes") {
				o.Scopes = nil
			}
			return run(cmd.Context(), o, runF, RunTenantsCreate)
		},
	}
	scopesFlag(cmd, &o.Scopes)
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the answer (with the key) as JSON")
	return cmd
}

func scopesFlag(cmd *cobra.Command, v *[]string) {
	cmd.Flags().StringSliceVar(v, "scopes", nil, "the key's `scopes`: ingest, read or both (default both)")
	_ = cmd.RegisterFlagCompletionFunc("scopes", cobra.FixedCompletions([]string{string(backend.ScopeIngest), string(backend.ScopeRead)}, cobra.ShellCompDirectiveNoFileComp))
}

// RunTenantsCreate creates the tenant.
func RunTenantsCreate(ctx context.Context, o *TenantsCreateOptions) error {
	if o.Scopes != nil {
		if _, err := backend.ParseScopes(o.Scopes); err != nil {
			return cmdutil.FlagErrorf("invalid --scopes: %s", backend.ErrorMessage(err))
		}
	}
	client, err := o.Client()
	if err != nil {
		return err
	}
	r, err := client.CreateTenant(ctx, backend.CreateTenantRequest{Name: o.Name, Scopes: o.Scopes})
	if err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	return jsonOr(o.IO, o.JSON, r, func() error {
		fmt.Fprintln(o.IO.ErrOut, "The API key is shown this once: keep it now.")
		return printNewKey(o.IO, [][2]string{{"Tenant", r.TenantID}, {"Name", r.Name}}, r.KeyID, r.Prefix, r.Scopes, r.APIKey)
	})
}

func printNewKey(ios *cmdutil.IOStreams, head [][2]string, keyID, prefix string, scopes []backend.Scope, raw string) error {
	return output.KeyValues(ios.Out, append(head,
		[2]string{"Key ID", keyID},
		[2]string{"Prefix", prefix},
		[2]string{"Scopes", joinScopes(scopes)},
		[2]string{"API key", raw},
	))
}

func joinScopes(scopes []backend.Scope) string {
	s := make([]string, len(scopes))
	for i, sc := range scopes {
		s[i] = string(sc)
	}
	return strings.Join(s, ",")
}

// TenantsRenameOptions are the flags of `admin tenants rename`.
type TenantsRenameOptions struct {
	*Common
	TenantID, Name string
	JSON           bool
}

func newTenantsRenameCmd(c *Common, runF func(context.Context, *TenantsRenameOptions) error) *cobra.Command {
	o := &TenantsRenameOptions{Common: c}
	cmd := &cobra.Command{
		Use:     "rename <tenant-id> <new-name>",
		Short:   "Rename a tenant",
		Example: `  kilometers admin tenants rename 01a207de-8b16-7d10-afc3-6313c71168c2 "Acme Corp"`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.TenantID, o.Name = args[0], args[1]
			return run(cmd.Context(), o, runF, RunTenantsRename)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the renamed tenant as JSON")
	return cmd
}

// RunTenantsRename renames the tenant.
func RunTenantsRename(ctx context.Context, o *TenantsRenameOptions) error {
	client, err := o.Client()
	if err != nil {
		return err
	}
	t, err := client.UpdateTenant(ctx, o.TenantID, backend.UpdateTenantRequest{Name: &o.Name})
	if err != nil {
		return fmt.Errorf("rename tenant: %w", err)
	}
	return jsonOr(o.IO, o.JSON, t, func() error {
		_, err := fmt.Fprintf(o.IO.Out, "Renamed tenant %s to %q\n", t.ID, t.Name)
		return err
	})
}

// TenantsDeleteOptions are the flags of `admin tenants delete`.
type TenantsDeleteOptions struct {
	*Common
	TenantID string
	Yes      bool
	JSON     bool
}

func newTenantsDeleteCmd(c *Common, runF func(context.Context, *TenantsDeleteOptions) error) *cobra.Command {
	o := &TenantsDeleteOptions{Common: c}
	cmd := &cobra.Command{
		Use:   "delete <tenant-id> --yes",
		Short: "Delete a tenant with its keys and all of its data",
		Long: `Delete a tenant, its API keys and every event, session and rollup it
stored. There is no undo; --yes confirms. The audit trail keeps its entries
about the tenant.`,
		Example: `  kilometers admin tenants delete 01a207de-8b16-7d10-afc3-6313c71168c2 --yes`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.TenantID = args[0]
			return run(cmd.Context(), o, runF, RunTenantsDelete)
		},
	}
	cmd.Flags().BoolVar(&o.Yes, "yes", false, "confirm: delete the tenant and all of its data")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the answer as JSON")
	return cmd
}

// RunTenantsDelete deletes the tenant once confirmed.
func RunTenantsDelete(ctx context.Context, o *TenantsDeleteOptions) error {
	if !o.Yes {
		return cmdutil.FlagErrorf("deleting tenant %s removes its keys and all of its data for good; pass --yes to confirm", o.TenantID)
	}
	client, err := o.Client()
	if err != nil {
		return err
	}
	r, err := client.DeleteTenant(ctx, o.TenantID)
	if err != nil {
		return fmt.Errorf("delete tenant: %w", err)
	}
	return jsonOr(o.IO, o.JSON, r, func() error {
		_, err := fmt.Fprintf(o.IO.Out, "Deleted tenant %s and all of its data\n", r.TenantID)
		return err
	})
}
