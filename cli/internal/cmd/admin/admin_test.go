package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilometers-ai/kilometers/cli/internal/apiclient"
	"github.com/kilometers-ai/kilometers/cli/internal/cmdutil"
	"github.com/kilometers-ai/kilometers/cli/internal/config"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/httpapi/apitest"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

const token = "cli-admin-token"

// server serves the real API over a fresh PostgreSQL database, as
// functions/local does.
func server(t *testing.T) string {
	t.Helper()
	db := pgtest.MustOpenDB(t)
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Store: db, AdminToken: httpapi.StaticToken(token)}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// cli runs `kilometers admin` commands with an environment and stdin.
type cli struct {
	t   *testing.T
	env map[string]string
}

func newCLI(t *testing.T, apiURL string) *cli {
	return &cli{t: t, env: map[string]string{"KILOMETERS_HOME": t.TempDir(), "KILOMETERS_API_URL": apiURL, EnvAdminToken: token}}
}

func (c *cli) factory(stdin string) (*cmdutil.Factory, *bytes.Buffer, *bytes.Buffer) {
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	getenv := func(k string) string { return c.env[k] }
	f := &cmdutil.Factory{
		IO:     &cmdutil.IOStreams{In: strings.NewReader(stdin), Out: out, ErrOut: errOut},
		Build:  cmdutil.BuildInfo{Version: "test"},
		Now:    time.Now,
		Getenv: getenv,
	}
	f.Config = func() (*config.Config, error) { return config.Load(c.env["KILOMETERS_HOME"], getenv) }
	return f, out, errOut
}

func execute(cmd *cobra.Command, args []string) error {
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cmdutil.FlagError{Err: err} })
	return cmd.ExecuteContext(context.Background())
}

// run runs args and returns stdout and stderr, failing on an error.
func (c *cli) run(stdin string, args ...string) (string, string) {
	c.t.Helper()
	out, errOut, err := c.try(stdin, args...)
	if err != nil {
		c.t.Fatalf("kilometers admin %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out, errOut
}

func (c *cli) try(stdin string, args ...string) (string, string, error) {
	f, out, errOut := c.factory(stdin)
	err := execute(NewCmd(f), args)
	return out.String(), errOut.String(), err
}

func (c *cli) json(v any, args ...string) {
	c.t.Helper()
	out, _ := c.run("", append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("kilometers admin %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// status sends one request with key and returns the status.
func status(t *testing.T, method, url, key string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAdminCommands drives every subcommand against the real handler.
func TestAdminCommands(t *testing.T) {
	api := server(t)
	c := newCLI(t, api)

	var acme backend.CreateTenantResponse
	c.json(&acme, "tenants", "create", "acme")
	if acme.TenantID == "" || acme.KeyID == "" || !strings.HasPrefix(acme.APIKey, acme.Prefix) || !slices.Equal(acme.Scopes, backend.DefaultScopes()) {
		t.Fatalf("create acme = %+v", acme)
	}
	if s := status(t, "GET", api+"/api/activity", acme.APIKey, nil); s != 200 {
		t.Errorf("acme's first key reads: %d", s)
	}
	out, errOut := c.run("", "tenants", "create", "beta", "--scopes", "ingest")
	if !strings.Contains(out, "API key") || !strings.Contains(out, "km_live_") || !strings.Contains(out, "ingest") || !strings.Contains(errOut, "shown this once") {
		t.Errorf("create beta printed %q, stderr %q", out, errOut)
	}

	out, _ = c.run("", "tenants", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[0] != "TENANT ID\tNAME\tCREATED" || !strings.HasPrefix(lines[1], acme.TenantID+"\tacme\t") || !strings.Contains(lines[2], "\tbeta\t") {
		t.Errorf("tenants list:\n%s", out)
	}
	var page backend.TenantPage
	c.json(&page, "tenants", "list")
	if len(page.Tenants) != 2 || page.Tenants[1].Name != "beta" {
		t.Errorf("tenants list --json = %+v", page)
	}
	beta := page.Tenants[1].ID

	out, _ = c.run("", "tenants", "get", acme.TenantID)
	for _, want := range []string{"Name", "acme", "Event retention    30 days", "Rollup retention   400 days", "Reads per minute   600 requests per key"} {
		if !strings.Contains(out, want) {
			t.Errorf("tenants get lacks %q:\n%s", want, out)
		}
	}
	if out, _ := c.run("", "tenants", "rename", acme.TenantID, "Acme Corp"); !strings.Contains(out, `to "Acme Corp"`) {
		t.Errorf("rename printed %q", out)
	}

	var tn backend.Tenant
	c.json(&tn, "settings", acme.TenantID, "--event-retention-days", "90", "--read-per-minute", "0", "--ingest-per-day", "123")
	want := backend.Settings{EventRetentionDays: 90, RollupRetentionDays: 400, IngestEventsPerMinute: 100000, IngestEventsPerDay: 123, ReadRequestsPerMinute: 0}
	if tn.Name != "Acme Corp" || tn.Settings != want {
		t.Errorf("settings = %+v, want renamed with %+v", tn, want)
	}
	if out, _ := c.run("", "settings", acme.TenantID); !strings.Contains(out, "90 days") || !strings.Contains(out, "Reads per minute   no limit") {
		t.Errorf("settings (show):\n%s", out)
	}

	var reader backend.CreateKeyResponse
	c.json(&reader, "keys", "create", acme.TenantID, "--scopes", "read")
	if !slices.Equal(reader.Scopes, []backend.Scope{backend.ScopeRead}) || reader.TenantID != acme.TenantID {
		t.Fatalf("keys create = %+v", reader)
	}
	if s := status(t, "POST", api+"/api/events", reader.APIKey, apitest.MustJSON(t, apitest.SampleBatch(time.Now(), 1).Events[0])); s != 403 {
		t.Errorf("read-only key posts: %d, want 403", s)
	}
	if out, _ := c.run("", "keys", "revoke", reader.KeyID); !strings.Contains(out, "Revoked key "+reader.KeyID) {
		t.Errorf("revoke printed %q", out)
	}
	var keys backend.KeysResponse
	c.json(&keys, "keys", "list", acme.TenantID)
	if len(keys.Keys) != 2 || keys.Keys[0].ID != acme.KeyID || keys.Keys[0].RevokedAt != nil || keys.Keys[1].RevokedAt == nil {
		t.Errorf("keys list = %+v", keys)
	}
	out, _ = c.run("", "keys", "list", acme.TenantID)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.Contains(lines[1], "\tingest,read\t") || strings.HasSuffix(lines[2], "\t-") {
		t.Errorf("keys list:\n%s", out)
	}

	if _, _, err := c.try("", "tenants", "delete", beta); !isFlagError(err) || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("delete without --yes: %v", err)
	}
	if out, _ := c.run("", "tenants", "delete", beta, "--yes"); !strings.Contains(out, "Deleted tenant "+beta) {
		t.Errorf("delete printed %q", out)
	}
	if _, _, err := c.try("", "tenants", "get", beta); err == nil || !strings.Contains(err.Error(), "404 not_found") {
		t.Errorf("get of a deleted tenant: %v", err)
	}

	var audit backend.AuditPage
	c.json(&audit, "audit", "--tenant", acme.TenantID, "--limit", "1000")
	var actions []string
	for _, e := range audit.Entries {
		actions = append(actions, e.Action)
		if e.Admin != backend.Fingerprint(token) || e.Address != "127.0.0.1" {
			t.Errorf("audit entry %+v", e)
		}
	}
	for _, a := range []string{backend.ActionTenantCreate, backend.ActionTenantGet, backend.ActionTenantUpdate, backend.ActionKeyCreate, backend.ActionKeyRevoke, backend.ActionKeyList} {
		if !slices.Contains(actions, a) {
			t.Errorf("audit of acme lacks %s: %v", a, actions)
		}
	}
	out, errOut = c.run("", "audit", "--limit", "2")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "ID\tAT\tADMIN\tACTION") {
		t.Errorf("audit --limit 2:\n%s", out)
	}
	if !strings.Contains(errOut, "More: kilometers admin audit --cursor ") {
		t.Errorf("audit gave no next page hint: %q", errOut)
	}

	// The maintenance job: acme's retention, raised above, needs one
	// partition for the older days; a second run finds nothing to do.
	if out, _ := c.run("", "maintenance"); !strings.HasPrefix(out, "Maintenance done in ") || !strings.Contains(out, "1 partitions created, 0 dropped") ||
		!strings.Contains(out, "  created events_p") {
		t.Errorf("maintenance printed %q", out)
	}
	var res backend.MaintenanceResult
	c.json(&res, "maintenance")
	if res.Created == nil || res.Dropped == nil || len(res.Created)+len(res.Dropped) != 0 {
		t.Errorf("maintenance --json: %+v", res)
	}
	c.json(&audit, "audit", "--limit", "2")
	if len(audit.Entries) == 0 || audit.Entries[0].Action != backend.ActionMaintenance || audit.Entries[0].Admin != backend.Fingerprint(token) {
		t.Errorf("maintenance not in the audit trail: %+v", audit.Entries)
	}
	if _, _, err := c.try("", "maintenance", "now"); err == nil {
		t.Errorf("maintenance with an argument: %v", err)
	}
}

func isFlagError(err error) bool {
	var fe *cmdutil.FlagError
	return errors.As(err, &fe)
}

// TestAdminToken checks where the token may come from, and where not.
func TestAdminToken(t *testing.T) {
	api := server(t)
	c := newCLI(t, api)
	delete(c.env, EnvAdminToken)

	if _, _, err := c.try("", "tenants", "list"); err == nil || !strings.Contains(err.Error(), "KILOMETERS_ADMIN_TOKEN") || !strings.Contains(err.Error(), "--token-stdin") {
		t.Errorf("no token: %v", err)
	}
	if out, _ := c.run(token+"\n", "--token-stdin", "tenants", "list", "--json"); !strings.Contains(out, `"tenants":[]`) {
		t.Errorf("--token-stdin: %q", out)
	}
	if _, _, err := c.try("  \n", "tenants", "list", "--token-stdin"); err == nil || !strings.Contains(err.Error(), "no admin token") {
		t.Errorf("empty stdin: %v", err)
	}
	if _, _, err := c.try("wrong\n", "tenants", "list", "--token-stdin"); err == nil || !strings.Contains(err.Error(), "401 unauthorized") {
		t.Errorf("wrong token: %v", err)
	}
	for _, flag := range []string{"--token", "--admin-token"} {
		if _, _, err := c.try("", "tenants", "list", flag, token); !isFlagError(err) {
			t.Errorf("%s is accepted (%v); the token must never be a flag value", flag, err)
		}
	}
	c.env[EnvAdminToken] = token
	delete(c.env, "KILOMETERS_API_URL")
	if _, _, err := c.try("", "tenants", "list"); err == nil || !strings.Contains(err.Error(), "no API configured") {
		t.Errorf("no API URL: %v", err)
	}
}

// TestFlags checks what the flags turn into before any request.
func TestFlags(t *testing.T) {
	c := newCLI(t, "http://127.0.0.1:1")
	f, _, _ := c.factory("")
	common := &Common{IO: f.IO, Config: f.Config, Getenv: f.Getenv}

	var got *SettingsOptions
	capture := func(_ context.Context, o *SettingsOptions) error { got = o; return nil }
	if err := execute(newSettingsCmd(common, capture), []string{"t1", "--rollup-retention-days", "700", "--ingest-per-minute", "0"}); err != nil {
		t.Fatal(err)
	}
	u := got.Update
	if u.EventRetentionDays != nil || u.ReadRequestsPerMinute != nil || u.IngestEventsPerDay != nil ||
		u.RollupRetentionDays == nil || *u.RollupRetentionDays != 700 || u.IngestEventsPerMinute == nil || *u.IngestEventsPerMinute != 0 {
		t.Errorf("settings update = %+v; want only the two flags given", u)
	}

	var keys *KeysCreateOptions
	runs := &KeyRuns{Create: func(_ context.Context, o *KeysCreateOptions) error { keys = o; return nil }}
	if err := execute(newKeysCmd(common, runs), []string{"create", "t1"}); err != nil || keys.Scopes != nil {
		t.Errorf("keys create without --scopes: %+v, %v; want nil scopes (the server's default)", keys, err)
	}
	if err := execute(newKeysCmd(common, runs), []string{"create", "t1", "--scopes", "read,ingest"}); err != nil || !slices.Equal(keys.Scopes, []string{"read", "ingest"}) {
		t.Errorf("keys create --scopes read,ingest: %+v, %v", keys, err)
	}

	// Bad values are refused before anything is sent (the API at
	// 127.0.0.1:1 would fail otherwise).
	for _, args := range [][]string{
		{"settings", "t1", "--event-retention-days", "0"},
		{"settings", "t1", "--read-per-minute", "-5"},
		{"settings", "t1", "--ingest-per-day", "many"},
		{"keys", "create", "t1", "--scopes", "admin"},
		{"tenants", "create", "x", "--scopes", ""},
		{"audit", "--limit", "0"},
		{"tenants", "get"},
		{"tenants", "rename", "t1"},
	} {
		f, _, _ := c.factory("")
		err := execute(NewCmd(f), args)
		if err == nil || strings.Contains(err.Error(), "connection refused") {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// TestCheckKeyScopes checks that the key check of `kilometers init`
// accepts a key of either scope and refuses a revoked one.
func TestCheckKeyScopes(t *testing.T) {
	api := server(t)
	c := newCLI(t, api)
	var tenant backend.CreateTenantResponse
	c.json(&tenant, "tenants", "create", "scoped")
	for _, scopes := range []string{"ingest", "read", "ingest,read"} {
		var k backend.CreateKeyResponse
		c.json(&k, "keys", "create", tenant.TenantID, "--scopes", scopes)
		if err := apiclient.New(api, k.APIKey, apiclient.Options{RetryMax: -1}).CheckKey(context.Background()); err != nil {
			t.Errorf("CheckKey with scopes %s: %v", scopes, err)
		}
		c.run("", "keys", "revoke", k.KeyID)
		err := apiclient.New(api, k.APIKey, apiclient.Options{RetryMax: -1}).CheckKey(context.Background())
		if e, ok := apiclient.AsError(err); !ok || e.Status != 401 {
			t.Errorf("CheckKey with a revoked %s key: %v, want 401", scopes, err)
		}
	}
}
