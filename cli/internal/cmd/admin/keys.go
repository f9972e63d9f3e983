package admin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/output"
	"github.com/kilometers-ai/kilometers/shared/backend"
)

func newKeysCmd(c *Common, runs *KeyRuns) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "keys <command>",
		Aliases: []string{"key"},
		Short:   "Create, list and revoke a tenant's API keys",
		Example: `  kilometers admin keys list 01a207de-8b16-7d10-afc3-6313c71168c2
  kilometers admin keys revoke 01a207de-8ead-7180-951c-d8d04e15d552`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	if runs == nil {
		runs = &KeyRuns{}
	}
	cmd.AddCommand(newKeysListCmd(c, runs.List), newKeysCreateCmd(c, runs.Create), newKeysRevokeCmd(c, runs.Revoke))
	return cmd
}

// KeyRuns replace the run functions of the keys subcommands in tests.
type KeyRuns struct {
	List   func(context.Context, *KeysListOptions) error
	Create func(context.Context, *KeysCreateOptions) error
	Revoke func(context.Context, *KeysRevokeOptions) error
}

// KeysListOptions are the flags of `admin keys list`.
type KeysListOptions struct {
	*Common
	TenantID string
	JSON     bool
}

func newKeysListCmd(c *Common, runF func(context.Context, *KeysListOptions) error) *cobra.Command {
	o := &KeysListOptions{Common: c}
	cmd := &cobra.Command{
		Use:   "list <tenant-id>",
		Short: "List a tenant's keys, revoked ones included",
		Example: `  kilometers admin keys list 01a207de-8b16-7d10-afc3-6313c71168c2
  kilometers admin keys list 01a207de-8b16-7d10-afc3-6313c71168c2 --json | jq '.keys[] | select(.revoked_at == null)'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.TenantID = args[0]
			return run(cmd.Context(), o, runF, RunKeysList)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, `print {"keys": [...]} as JSON`)
	return cmd
}

// RunKeysList prints the tenant's keys.
func RunKeysList(ctx context.Context, o *KeysListOptions) error {
	client, err := o.Client()
	if err != nil {
		return err
	}
	r, err := client.Keys(ctx, o.TenantID)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	return jsonOr(o.IO, o.JSON, r, func() error {
		tb := output.NewTable(o.IO, "KEY ID", "PREFIX", "SCOPES", "CREATED", "LAST USED", "REVOKED")
		for _, k := range r.Keys {
			var c func(string) string
			if k.RevokedAt != nil {
				c = output.Gray
			}
			cells := []string{k.ID, k.Prefix, joinScopes(k.Scopes), when(o.IO, &k.CreatedAt), when(o.IO, k.LastUsedAt), when(o.IO, k.RevokedAt)}
			tb.AddColoredRow(cells, []func(string) string{c, c, c, c, c, c})
		}
		return tb.Render()
	})
}

// KeysCreateOptions are the flags of `admin keys create`.
type KeysCreateOptions struct {
	*Common
	TenantID string
	Scopes   []string
	JSON     bool
}

func newKeysCreateCmd(c *Common, runF func(context.Context, *KeysCreateOptions) error) *cobra.Command {
	o := &KeysCreateOptions{Common: c}
	cmd := &cobra.Command{
		Use:   "create <tenant-id>",
		Short: "Create an API key for a tenant",
		Long: `Create an API key for a tenant. By default it may ingest and read; a
dashboard or a script that only reads should get --scopes read, a collector
that only ships --scopes ingest. The key is printed this once.`,
		Example: `  kilometers admin keys create 01a207de-8b16-7d10-afc3-6313c71168c2
  kilometers admin keys create 01a207de-8b16-7d10-afc3-6313c71168c2 --scopes read --json | jq -r .api_key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.TenantID = args[0]
			if !cmd.Flags().Changed("scopes") {
				o.Scopes = nil
			}
			return run(cmd.Context(), o, runF, RunKeysCreate)
		},
	}
	scopesFlag(cmd, &o.Scopes)
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the answer (with the key) as JSON")
	return cmd
}

// RunKeysCreate creates the key.
func RunKeysCreate(ctx context.Context, o *KeysCreateOptions) error {
	if o.Scopes != nil {
		if _, err := backend.ParseScopes(o.Scopes); err != nil {
			return cmdutil.FlagErrorf("invalid --scopes: %s", backend.ErrorMessage(err))
		}
	}
	client, err := o.Client()
	if err != nil {
		return err
	}
	r, err := client.CreateKey(ctx, o.TenantID, backend.CreateKeyRequest{Scopes: o.Scopes})
	if err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	return jsonOr(o.IO, o.JSON, r, func() error {
		fmt.Fprintln(o.IO.ErrOut, "The API key is shown this once: keep it now.")
		return printNewKey(o.IO, [][2]string{{"Tenant", r.TenantID}}, r.KeyID, r.Prefix, r.Scopes, r.APIKey)
	})
}

// KeysRevokeOptions are the flags of `admin keys revoke`.
type KeysRevokeOptions struct {
	*Common
	KeyID string
	JSON  bool
}

func newKeysRevokeCmd(c *Common, runF func(context.Context, *KeysRevokeOptions) error) *cobra.Command {
	o := &KeysRevokeOptions{Common: c}
	cmd := &cobra.Command{
		Use:     "revoke <key-id>",
		Short:   "Revoke an API key at once",
		Example: `  kilometers admin keys revoke 01a207de-8ead-7180-951c-d8d04e15d552`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.KeyID = args[0]
			return run(cmd.Context(), o, runF, RunKeysRevoke)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the answer as JSON")
	return cmd
}

// RunKeysRevoke revokes the key.
func RunKeysRevoke(ctx context.Context, o *KeysRevokeOptions) error {
	client, err := o.Client()
	if err != nil {
		return err
	}
	r, err := client.RevokeKey(ctx, o.KeyID)
	if err != nil {
		return fmt.Errorf("revoke key: %w", err)
	}
	return jsonOr(o.IO, o.JSON, r, func() error {
		_, err := fmt.Fprintf(o.IO.Out, "Revoked key %s of tenant %s\n", r.KeyID, r.TenantID)
		return err
	})
}
