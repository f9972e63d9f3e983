package lambdafn_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kilometers-ai/kilometers/shared/dbconfig"
	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/lambdahttp/lambdafn"
	"github.com/kilometers-ai/kilometers/shared/lambdahttp/runtimetest"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestAPI_Postgres checks the wiring in process: the routes a function
// serves, the admin token, and a database configured in the environment.
// (functions' tests run the same wiring in the built binaries.)
func TestAPI_Postgres(t *testing.T) {
	_, dsn := pgtest.MustOpenDBDSN(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		env    map[string]string
		routes httpapi.Group
		method string
		path   string
		token  string
		body   string
		status int
	}{
		{"health served", map[string]string{"DATABASE_URL": dsn}, httpapi.Health | httpapi.Ingest, "GET", "/health", "", "", 200},
		{"other routes are not", map[string]string{"DATABASE_URL": dsn}, httpapi.Health | httpapi.Ingest, "GET", "/api/stats", "k", "", 404},
		{"admin with token", map[string]string{"DATABASE_URL": dsn, "KILOMETERS_ADMIN_TOKEN": "tok"}, httpapi.Admin, "POST", "/api/admin/tenants", "tok", `{"name":"a"}`, 201},
		{"admin, wrong token", map[string]string{"DATABASE_URL": dsn, "KILOMETERS_ADMIN_TOKEN": "tok"}, httpapi.Admin, "POST", "/api/admin/tenants", "nope", `{"name":"a"}`, 401},
		{"admin without a token is off", map[string]string{"DATABASE_URL": dsn}, httpapi.Admin, "POST", "/api/admin/tenants", "tok", `{"name":"a"}`, 404},
		{"admin token secret unreadable", map[string]string{"DATABASE_URL": dsn, "ADMIN_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
			"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1"},
			httpapi.Admin, "POST", "/api/admin/tenants", "tok", `{"name":"a"}`, 503},
		{"no database configured", map[string]string{}, httpapi.Health, "GET", "/health", "", "", 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasPrefix(tc.env["AWS_ENDPOINT_URL_SECRETS_MANAGER"], "http") {
				// The default AWS configuration reads the process environment.
				for k, v := range tc.env {
					if strings.HasPrefix(k, "AWS_") {
						t.Setenv(k, v)
					}
				}
				t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
				t.Setenv("AWS_MAX_ATTEMPTS", "1")
			}
			h := lambdafn.API(getenv(tc.env), tc.routes)
			hdr := map[string]string{"Content-Type": "application/json"}
			if tc.token != "" {
				hdr["Authorization"] = "Bearer " + tc.token
			}
			resp, err := h(ctx, runtimetest.HTTPRequest(tc.method, tc.path, hdr, []byte(tc.body)))
			if err != nil || resp.StatusCode != tc.status {
				t.Errorf("%s %s: %d %s (%v), want %d", tc.method, tc.path, resp.StatusCode, resp.Body, err, tc.status)
			}
		})
	}
}

func TestMigrateFunc_Postgres(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.MustCreateDatabase(t)
	migrate := lambdafn.MigrateFunc(dbconfig.New(getenv(map[string]string{"DATABASE_URL": dsn}), nil))
	for i := range 2 { // the second run finds nothing to do
		if err := migrate(ctx); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	if err := lambdafn.MigrateFunc(dbconfig.New(getenv(nil), nil))(ctx); err == nil || !strings.Contains(err.Error(), "no database configured") {
		t.Errorf("without configuration: %v", err)
	}
}
