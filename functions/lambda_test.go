package functions_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-lambda-go/events"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kilometers-ai/kilometers/shared/activity"
	"github.com/kilometers-ai/kilometers/shared/alerts"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/dbconfig/dbconfigtest"
	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/httpapi/apitest"
	"github.com/kilometers-ai/kilometers/shared/lambdahttp/runtimetest"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// lambdaFunctions are the packages deployed to Lambda (template.yaml).
var lambdaFunctions = []string{"ingest", "activity", "stats", "admin", "migrate", "ui", "maintenance", "alerts"}

const adminToken = "lambda-admin-token"

// buildAll builds every function as bootstrap for this machine, as Lambda
// runs it (-tags lambda.norpc, CGO_ENABLED=0), and returns name -> path.
func buildAll(t *testing.T) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pkgs := make([]string, len(lambdaFunctions))
	for i, name := range lambdaFunctions {
		pkgs[i] = "./functions/" + name
	}
	bins, err := runtimetest.Build(ctx, testenv.RepoRoot(t), t.TempDir(), goos(), goarch(), pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	return bins
}

func goos() string   { return envOr("GOHOSTOS") }
func goarch() string { return envOr("GOHOSTARCH") }

// envOr asks the go tool for a value of `go env` (the host's platform).
func envOr(key string) string {
	b, err := exec.Command("go", "env", key).Output()
	if err != nil {
		panic("go env " + key + ": " + err.Error())
	}
	return strings.TrimSpace(string(b))
}

// TestCrossBuildLinuxArm64 checks what template.yaml deploys compiles:
// every function for provided.al2023 on arm64, static.
func TestCrossBuildLinuxArm64(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pkgs := make([]string, len(lambdaFunctions))
	for i, name := range lambdaFunctions {
		pkgs[i] = "./functions/" + name
	}
	bins, err := runtimetest.Build(ctx, testenv.RepoRoot(t), t.TempDir(), "linux", "arm64", pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range lambdaFunctions {
		f, err := elf.Open(bins[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.Machine != elf.EM_AARCH64 {
			t.Errorf("%s: machine %v, want aarch64", name, f.Machine)
		}
		if interp := f.Section(".interp"); interp != nil {
			t.Errorf("%s: dynamically linked (has .interp); provided.al2023 needs a static binary", name)
		}
		f.Close()
	}
}

// gateway routes like the HTTP API in template.yaml: each route to its
// function's runtime.
type gateway map[string]*runtimetest.Runtime

// route picks the function template.yaml wires method and path to.
func (g gateway) route(method, path string) *runtimetest.Runtime {
	switch {
	case method == http.MethodGet && strings.HasPrefix(path, "/api/events/"):
		return g["activity"] // GET /api/events/{id}
	case path == "/health", strings.HasPrefix(path, "/api/events"):
		return g["ingest"]
	case strings.HasPrefix(path, "/api/activity"), strings.HasPrefix(path, "/api/sessions"), strings.HasPrefix(path, "/api/export"), strings.HasPrefix(path, "/api/alerts"):
		return g["activity"]
	case strings.HasPrefix(path, "/api/stats"):
		return g["stats"]
	case strings.HasPrefix(path, "/api/admin/"):
		return g["admin"]
	}
	return nil
}

// invoke sends one API Gateway v2 event to rt and turns the gateway
// response back into an HTTP answer.
func invoke(tb testing.TB, rt *runtimetest.Runtime, r apitest.Request) (events.APIGatewayV2HTTPResponse, apitest.Answer) {
	tb.Helper()
	h := map[string]string{}
	if r.Token != "" {
		h["Authorization"] = "Bearer " + r.Token
	}
	if r.Body != nil {
		h["Content-Type"] = "application/json"
	}
	for k, v := range r.Header {
		h[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := rt.InvokeHTTP(ctx, runtimetest.HTTPRequest(r.Method, r.Path, h, r.Body))
	if err != nil {
		tb.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			tb.Fatalf("%s %s: body is not base64: %v", r.Method, r.Path, err)
		}
	}
	hdr := http.Header{}
	for k, v := range resp.Headers {
		hdr.Set(k, v)
	}
	return resp, apitest.Answer{Status: resp.StatusCode, Header: hdr, Body: body}
}

func (g gateway) do(tb testing.TB, r apitest.Request) apitest.Answer {
	tb.Helper()
	path, _, _ := strings.Cut(r.Path, "?")
	rt := g.route(r.Method, path)
	if rt == nil {
		tb.Fatalf("no function serves %s", path)
	}
	_, a := invoke(tb, rt, r)
	return a
}

// awsEnv is the environment template.yaml gives the API functions: the
// database from a Secrets Manager secret (moto here) with the host from
// DATABASE_HOST; the admin function also gets ADMIN_TOKEN_SECRET_ARN.
func awsEnv(t *testing.T, moto *dbconfigtest.Moto, dsn string) (common, admin []string) {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := json.Marshal(map[string]any{"username": cfg.User, "password": cfg.Password, "port": cfg.Port, "dbname": cfg.Database})
	dbARN := moto.CreateSecret(t, "kilometers/db", string(secret))
	tokenARN := moto.CreateSecret(t, "kilometers/admin-token", adminToken)
	common = append(moto.Env(), "DATABASE_SECRET_ARN="+dbARN, "DATABASE_HOST="+cfg.Host, "DATABASE_SSLMODE=disable")
	return common, append(common, "ADMIN_TOKEN_SECRET_ARN="+tokenARN)
}

// TestFunctions_Postgres runs the built ingest, activity, stats and admin
// bootstraps under the Runtime API harness, configured as on AWS (secrets
// in moto_server), over a fresh PostgreSQL database, and plays the
// end-to-end scenario through them.
//
// It builds the functions and starts moto_server once, for these subtests:
// the API functions, recovery after a cold start during an outage, and the
// migrate function.
func TestFunctions_Postgres(t *testing.T) {
	bins := buildAll(t)
	moto := dbconfigtest.StartMoto(t)
	t.Run("api", func(t *testing.T) { testAPI(t, bins, moto) })
	t.Run("recovers", func(t *testing.T) { testRecovers(t, bins, moto) })
	t.Run("migrate", func(t *testing.T) { testMigrate(t, bins) })
	t.Run("ui", func(t *testing.T) { testUI(t, bins) })
	t.Run("maintenance", func(t *testing.T) { testMaintenance(t, bins) })
	t.Run("alerts", func(t *testing.T) { testAlerts(t, bins) })
}

// failsOnMissingDatabase invokes the scheduled function bin against a
// database that does not exist: the invocation must fail, naming the job,
// for the function's alarm to count it.
func failsOnMissingDatabase(ctx context.Context, t *testing.T, bin, dsn string, event any, job string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/km_test_does_not_exist"
	bad := runtimetest.New(t)
	bad.Start(t, bin, "DATABASE_URL="+u.String())
	var out json.RawMessage
	err = bad.InvokeJSON(ctx, event, &out)
	var fe *runtimetest.FunctionError
	if !errors.As(err, &fe) || !strings.Contains(fe.Message, job) {
		t.Errorf("%s run on a missing database: %v, want a function error", job, err)
	}
}

// testAlerts invokes the built alerts function with an EventBridge
// scheduled event, as its schedule does every minute: an alert that an
// ingest fired reaches a real webhook receiver, signed, on the first run and
// not again on the next; on a database that does not exist the invocation
// fails, which the function's alarm counts.
func testAlerts(t *testing.T, bins map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	scheduled := map[string]any{"version": "0", "detail-type": "Scheduled Event", "source": "aws.events",
		"time": time.Now().UTC().Format(time.RFC3339), "detail": map[string]any{}}

	var mu sync.Mutex
	var bodies [][]byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if got, want := r.Header.Get(alerts.SignatureHeader), alerts.Sign("hook-secret", b); got != want {
			t.Errorf("signature %q, want %q", got, want)
		}
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	defer hook.Close()
	delivered := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(bodies)
	}

	db, dsn := pgtest.MustOpenDBDSN(t)
	api := httptest.NewServer(httpapi.New(httpapi.Config{Store: db,
		AdminToken: func(context.Context) (string, error) { return adminToken, nil }}))
	defer api.Close()
	do := apitest.HTTP(api.URL)
	team := apitest.CreateTenant(t, do, adminToken, "scheduled-alerts")
	if a := do(t, apitest.Request{Method: "POST", Path: "/api/alerts/rules", Token: team.APIKey,
		Body: []byte(`{"on":"new_server","webhook":"` + hook.URL + `","secret":"hook-secret"}`)}); a.Status != 201 {
		t.Fatalf("create rule: %d %s", a.Status, a.Body)
	}
	// Rules see only events after their creation.
	batch := apitest.SampleBatch(time.Now().Add(2*time.Hour), 1)
	if a := do(t, apitest.Request{Method: "POST", Path: "/api/events/batch", Token: team.APIKey, Body: apitest.MustJSON(t, batch)}); a.Status != 200 {
		t.Fatalf("batch: %d %s", a.Status, a.Body)
	}

	rt := runtimetest.New(t)
	rt.Start(t, bins["alerts"], "DATABASE_URL="+dsn)
	var run backend.AlertRun
	if err := rt.InvokeJSON(ctx, scheduled, &run); err != nil {
		t.Fatalf("scheduled run: %v", err)
	}
	if run.Delivered != 2 || delivered() != 2 { // servers fs and shell
		t.Errorf("first run: %+v, %d delivered; want 2 (one per new server)", run, delivered())
	}
	if err := rt.InvokeJSON(ctx, scheduled, &run); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if run.Delivered != 0 || delivered() != 2 {
		t.Errorf("second run: %+v, %d delivered in all; want nothing more", run, delivered())
	}

	failsOnMissingDatabase(ctx, t, bins["alerts"], dsn, scheduled, "alerts")
}

// testUI runs the ui bootstrap with no configuration at all (it reads no
// database and no secret) and fetches every route template.yaml gives it.
func testUI(t *testing.T, bins map[string]string) {
	rt := runtimetest.New(t)
	rt.FunctionARN = "arn:aws:lambda:us-east-1:123456789012:function:kilometers-ui"
	rt.Start(t, bins["ui"])
	for _, c := range []struct{ path, ctype, body string }{
		{"/", "text/html; charset=utf-8", "<script src=\"app.js\""},
		{"/app.js", "text/javascript; charset=utf-8", "/api/stats"},
		{"/app.css", "text/css; charset=utf-8", "prefers-color-scheme"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
	} {
		_, a := invoke(t, rt, apitest.Request{Method: "GET", Path: c.path})
		if a.Status != 200 || a.Header.Get("Content-Type") != c.ctype || !strings.Contains(string(a.Body), c.body) {
			t.Errorf("GET %s: %d %q, want 200 %s with %q", c.path, a.Status, a.Header.Get("Content-Type"), c.ctype, c.body)
		}
		if csp := a.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, csp)
		}
	}
	if _, a := invoke(t, rt, apitest.Request{Method: "GET", Path: "/nope.js"}); a.Status != 404 {
		t.Errorf("GET /nope.js: %d, want 404", a.Status)
	}
}

// testMaintenance invokes the built maintenance function with an
// EventBridge scheduled event, as its schedule does: it answers what it did
// and writes the audit trail; on a database that does not exist the
// invocation fails, which the function's alarm counts.
func testMaintenance(t *testing.T, bins map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	scheduled := map[string]any{"version": "0", "detail-type": "Scheduled Event", "source": "aws.events",
		"time": time.Now().UTC().Format(time.RFC3339), "detail": map[string]any{}}

	_, dsn := pgtest.MustOpenDBDSN(t)
	pool := pgtest.MustOpenPool(t, dsn)
	// A day past the partitions made ahead: the run must make it.
	if _, err := pool.Exec(ctx, `DROP TABLE events_p`+time.Now().UTC().AddDate(0, 0, 7).Format("20060102")); err != nil {
		t.Fatal(err)
	}
	rt := runtimetest.New(t)
	rt.Start(t, bins["maintenance"], "DATABASE_URL="+dsn)
	var res backend.MaintenanceResult
	if err := rt.InvokeJSON(ctx, scheduled, &res); err != nil {
		t.Fatalf("scheduled run: %v", err)
	}
	if want := "events_p" + time.Now().UTC().AddDate(0, 0, 7).Format("20060102"); !slices.Contains(res.Created, want) {
		t.Errorf("scheduled run created %v, want %s among them", res.Created, want)
	}
	var admin string
	if err := pool.QueryRow(ctx, `SELECT admin FROM admin_audit WHERE action = 'maintenance.run' ORDER BY id DESC LIMIT 1`).Scan(&admin); err != nil || admin != "schedule" {
		t.Errorf("audit of the scheduled run: %q, %v", admin, err)
	}

	failsOnMissingDatabase(ctx, t, bins["maintenance"], dsn, scheduled, "maintenance")
}

func testAPI(t *testing.T, bins map[string]string, moto *dbconfigtest.Moto) {
	_, dsn := pgtest.MustOpenDBDSN(t)
	common, admin := awsEnv(t, moto, dsn)

	g := gateway{}
	for _, name := range []string{"ingest", "activity", "stats", "admin"} {
		rt := runtimetest.New(t)
		rt.FunctionARN = "arn:aws:lambda:us-east-1:123456789012:function:kilometers-" + name
		env := common
		if name == "admin" {
			env = admin
		}
		rt.Start(t, bins[name], env...)
		g[name] = rt
	}

	t.Run("scenario", func(t *testing.T) { apitest.Scenario(t, g.do, adminToken) })

	tenant := apitest.CreateTenant(t, g.do, adminToken, "lambda")
	batch := apitest.SampleBatch(time.Now(), 10)
	body := apitest.MustJSON(t, batch)
	n := len(batch.Events)

	t.Run("ingest new and duplicate, plain and gzip", func(t *testing.T) {
		var res backend.IngestResult
		a := g.do(t, apitest.Request{Method: "POST", Path: "/api/events/batch", Token: tenant.APIKey, Body: apitest.Gzip(t, body),
			Header: map[string]string{"Content-Encoding": "gzip"}})
		a.Decode(t, &res)
		if a.Status != 200 || res != (backend.IngestResult{Accepted: n}) {
			t.Fatalf("gzipped batch: %d %s, want %d accepted", a.Status, a.Body, n)
		}
		a = g.do(t, apitest.Request{Method: "POST", Path: "/api/events/batch", Token: tenant.APIKey, Body: body})
		a.Decode(t, &res)
		if a.Status != 200 || res != (backend.IngestResult{Duplicates: n}) {
			t.Fatalf("plain repeat: %d %s, want %d duplicates", a.Status, a.Body, n)
		}
		if ct := a.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
	})

	t.Run("gzip bomb is refused", func(t *testing.T) {
		bomb := apitest.Gzip(t, bytes.Repeat([]byte(" "), backend.MaxBodyBytes+1))
		a := g.do(t, apitest.Request{Method: "POST", Path: "/api/events/batch", Token: tenant.APIKey, Body: bomb,
			Header: map[string]string{"Content-Encoding": "gzip"}})
		if a.Status != 413 || a.ErrorCode(t) != "too_large" {
			t.Errorf("gzip bomb: %d %s", a.Status, a.Body)
		}
	})

	t.Run("activity answers gzip when asked", func(t *testing.T) {
		resp, a := invoke(t, g["activity"], apitest.Request{Method: "GET", Path: "/api/activity?limit=1000&since=3h", Token: tenant.APIKey,
			Header: map[string]string{"Accept-Encoding": "gzip, deflate"}})
		if a.Status != 200 || !resp.IsBase64Encoded || a.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("activity with gzip: %d base64=%v headers %v", a.Status, resp.IsBase64Encoded, resp.Headers)
		}
		zr, err := gzip.NewReader(bytes.NewReader(a.Body))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		var page activity.Page
		if err := json.Unmarshal(plain, &page); err != nil || len(page.Events) != n {
			t.Errorf("gunzipped activity: %d events (%v), want %d", len(page.Events), err, n)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			fn     string
			req    apitest.Request
			status int
			code   string
		}{
			{"activity", apitest.Request{Method: "GET", Path: "/api/activity"}, 401, "unauthorized"},
			{"stats", apitest.Request{Method: "GET", Path: "/api/stats"}, 401, "unauthorized"},
			{"ingest", apitest.Request{Method: "POST", Path: "/api/events/batch", Body: body}, 401, "unauthorized"},
			{"stats", apitest.Request{Method: "GET", Path: "/api/stats", Token: "km_nope"}, 401, "unauthorized"},
			{"admin", apitest.Request{Method: "POST", Path: "/api/admin/tenants", Token: tenant.APIKey, Body: []byte(`{"name":"x"}`)}, 401, "unauthorized"},
			{"ingest", apitest.Request{Method: "GET", Path: "/api/nope"}, 404, "not_found"},
			{"activity", apitest.Request{Method: "GET", Path: "/api/stats", Token: tenant.APIKey}, 404, "not_found"},
			{"admin", apitest.Request{Method: "GET", Path: "/health"}, 404, "not_found"},
			{"ingest", apitest.Request{Method: "GET", Path: "/api/events/batch", Token: tenant.APIKey}, 405, "bad_method"},
			{"ingest", apitest.Request{Method: "POST", Path: "/api/events/batch", Token: tenant.APIKey, Body: []byte(`{"events":[{"id":`)}, 400, "invalid"},
			{"activity", apitest.Request{Method: "GET", Path: "/api/activity?limit=-1", Token: tenant.APIKey}, 400, "invalid"},
			{"activity", apitest.Request{Method: "GET", Path: "/api/sessions"}, 401, "unauthorized"},
			{"activity", apitest.Request{Method: "GET", Path: "/api/sessions?limit=x", Token: tenant.APIKey}, 400, "invalid"},
			{"activity", apitest.Request{Method: "GET", Path: "/api/events/0196f1c2-7a3b-7c11-9d2e-5b0c3a7e9f10", Token: tenant.APIKey}, 404, "not_found"},
			{"activity", apitest.Request{Method: "POST", Path: "/api/sessions", Token: tenant.APIKey}, 405, "bad_method"},
			{"ingest", apitest.Request{Method: "GET", Path: "/api/sessions", Token: tenant.APIKey}, 404, "not_found"},
		} {
			_, a := invoke(t, g[tc.fn], tc.req)
			if a.Status != tc.status || a.ErrorCode(t) != tc.code {
				t.Errorf("%s %s %s: %d %s, want %d %s", tc.fn, tc.req.Method, tc.req.Path, a.Status, a.Body, tc.status, tc.code)
			}
			if a.Status == 401 && a.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: 401 without WWW-Authenticate", tc.fn, tc.req.Path)
			}
		}
	})

	t.Run("not an HTTP API event", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var resp events.APIGatewayV2HTTPResponse
		if err := g["stats"].InvokeJSON(ctx, map[string]any{"hello": "world"}, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 400 || !strings.Contains(resp.Body, `"code":"invalid"`) {
			t.Errorf("non-HTTP event: %+v", resp)
		}
	})
}

// testRecovers starts the ingest function while its secret does not exist
// yet and its database is unreachable: /health says why with 503, and the
// same execution environment recovers once each is back, and again after a
// later outage.
func testRecovers(t *testing.T, bins map[string]string, moto *dbconfigtest.Moto) {
	_, dsn := pgtest.MustOpenDBDSN(t)
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	relay := testenv.NewTCPRelay(t, cfg.Host+":"+strconv.Itoa(int(cfg.Port)), false)
	relayHost, relayPort, _ := strings.Cut(relay.Addr(), ":")

	rt := runtimetest.New(t)
	const secretName = "kilometers/db-late"
	rt.Start(t, bins["ingest"], append(moto.Env(), "DATABASE_SECRET_ARN="+secretName, "DATABASE_HOST="+relayHost, "DATABASE_SSLMODE=disable")...)
	health := func(status int, reason string) {
		t.Helper()
		_, a := invoke(t, rt, apitest.Request{Method: "GET", Path: "/health"})
		if a.Status != status || !strings.Contains(string(a.Body), reason) {
			t.Fatalf("health: %d %s, want %d with %q", a.Status, a.Body, status, reason)
		}
		if status == 503 && a.Header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
	}
	health(503, `"database":"unreachable"`) // no secret yet
	secret, _ := json.Marshal(map[string]any{"username": cfg.User, "password": cfg.Password, "port": relayPort, "dbname": cfg.Database})
	moto.CreateSecret(t, secretName, string(secret))
	health(503, `"database":"unreachable"`) // secret, but the database is down
	relay.SetUp(true)
	health(200, `{"status":"ok","database":"ok"}`)
	relay.SetUp(false)
	health(503, `"error":{"code":"unavailable"`)
	relay.SetUp(true)
	health(200, `{"status":"ok","database":"ok"}`)
}

// cfnServer plays CloudFormation's pre-signed ResponseURL: it records the
// replies PUT to it.
type cfnServer struct {
	*httptest.Server
	mu      sync.Mutex
	replies []cfn.Response
}

func newCFNServer(t *testing.T) *cfnServer {
	s := &cfnServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var resp cfn.Response
		if r.Method != http.MethodPut || json.NewDecoder(r.Body).Decode(&resp) != nil {
			http.Error(w, "want a PUT of a JSON reply", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.replies = append(s.replies, resp)
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *cfnServer) last(t *testing.T) cfn.Response {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.replies) == 0 {
		t.Fatal("no reply reached the ResponseURL")
	}
	return s.replies[len(s.replies)-1]
}

func cfnEvent(requestType cfn.RequestType, responseURL string) cfn.Event {
	return cfn.Event{
		RequestType:        requestType,
		RequestID:          "req-" + string(requestType),
		ResponseURL:        responseURL + "/reply?X-Amz-Signature=abc",
		ResourceType:       "Custom::Migrations",
		LogicalResourceID:  "Migrations",
		StackID:            "arn:aws:cloudformation:us-east-1:123456789012:stack/km/1",
		ResourceProperties: map[string]any{"ServiceToken": "arn", "DeployId": "1"},
	}
}

type migrateResult struct {
	Status string `json:"status"`
}

// testMigrate runs the built migrate function as the CloudFormation custom
// resource and as a direct invoke, on a database that exists and on one
// that does not.
func testMigrate(t *testing.T, bins map[string]string) {
	bin := bins["migrate"]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cf := newCFNServer(t)

	t.Run("creates the schema", func(t *testing.T) {
		dsn := pgtest.MustCreateDatabase(t)
		rt := runtimetest.New(t)
		rt.Start(t, bin, "DATABASE_URL="+dsn)
		var res migrateResult
		if err := rt.InvokeJSON(ctx, cfnEvent(cfn.RequestCreate, cf.URL), &res); err != nil || res.Status != "ok" {
			t.Fatalf("Create: %+v, %v", res, err)
		}
		reply := cf.last(t)
		if reply.Status != cfn.StatusSuccess || reply.PhysicalResourceID != "kilometers-migrations" ||
			reply.RequestID != "req-Create" || reply.LogicalResourceID != "Migrations" || reply.StackID == "" {
			t.Errorf("Create reply = %+v", reply)
		}
		if n := countTables(t, dsn); n != 4 {
			t.Fatalf("%d of the 4 main tables after the Create", n)
		}
		// Update and a direct invoke run again, changing nothing.
		if err := rt.InvokeJSON(ctx, cfnEvent(cfn.RequestUpdate, cf.URL), &res); err != nil || cf.last(t).Status != cfn.StatusSuccess {
			t.Errorf("Update: %+v, %v, reply %+v", res, err, cf.last(t))
		}
		if err := rt.InvokeJSON(ctx, map[string]any{}, &res); err != nil || res.Status != "ok" {
			t.Errorf("direct invoke: %+v, %v", res, err)
		}
	})

	t.Run("database missing", func(t *testing.T) {
		u, err := url.Parse(testenv.DatabaseURL(t))
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/km_test_does_not_exist"
		rt := runtimetest.New(t)
		rt.Start(t, bin, "DATABASE_URL="+u.String())
		var res migrateResult
		if err := rt.InvokeJSON(ctx, cfnEvent(cfn.RequestCreate, cf.URL), &res); err != nil || res.Status != "failed" {
			t.Fatalf("Create: %+v, %v; want status failed after replying", res, err)
		}
		if reply := cf.last(t); reply.Status != cfn.StatusFailed || !strings.Contains(reply.Reason, "migrate") {
			t.Errorf("Create reply = %+v, want FAILED with a reason", reply)
		}
		// Delete never touches the database: it succeeds even here.
		if err := rt.InvokeJSON(ctx, cfnEvent(cfn.RequestDelete, cf.URL), &res); err != nil || res.Status != "ok" || cf.last(t).Status != cfn.StatusSuccess {
			t.Errorf("Delete: %+v, %v, reply %+v", res, err, cf.last(t))
		}
		// A direct invoke fails the invocation (posted to /error).
		err = rt.InvokeJSON(ctx, map[string]any{}, &res)
		var fe *runtimetest.FunctionError
		if !errors.As(err, &fe) || !strings.Contains(fe.Message, "migrate") {
			t.Errorf("direct invoke on a missing database: %v, want a function error", err)
		}
	})
}

func countTables(t *testing.T, dsn string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_name IN ('tenants','api_keys','sessions','events')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
