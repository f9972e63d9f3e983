package templatetest

import (
	"go/build"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/kilometers-ai/kilometers/shared/webui"
)

// routes maps every API route (docs/api.md) to the function serving it.
var routes = map[string]string{
	"GET /health":                       "IngestFunction",
	"POST /api/events":                  "IngestFunction",
	"POST /api/events/batch":            "IngestFunction",
	"GET /api/activity":                 "ActivityFunction",
	"GET /api/sessions":                 "ActivityFunction",
	"GET /api/events/{id}":              "ActivityFunction",
	"GET /api/export":                   "ActivityFunction",
	"GET /api/stats":                    "StatsFunction",
	"GET /api/admin/tenants":            "AdminFunction",
	"POST /api/admin/tenants":           "AdminFunction",
	"GET /api/admin/tenants/{id}":       "AdminFunction",
	"PATCH /api/admin/tenants/{id}":     "AdminFunction",
	"DELETE /api/admin/tenants/{id}":    "AdminFunction",
	"GET /api/admin/tenants/{id}/keys":  "AdminFunction",
	"POST /api/admin/tenants/{id}/keys": "AdminFunction",
	"DELETE /api/admin/keys/{id}":       "AdminFunction",
	"GET /api/admin/audit":              "AdminFunction",
	"POST /api/admin/alerts/evaluate":   "AdminFunction",
	"GET /api/alerts/rules":             "ActivityFunction",
	"POST /api/alerts/rules":            "ActivityFunction",
	"DELETE /api/alerts/rules":          "ActivityFunction",
	"DELETE /api/alerts/rules/{id}":     "ActivityFunction",
	"GET /api/alerts":                   "ActivityFunction",
	// The dashboard's page, on the API's origin (TestUiServesEveryFile).
	"GET /":                       "UiFunction",
	"GET /app.js":                 "UiFunction",
	"GET /app.css":                "UiFunction",
	"GET /favicon.svg":            "UiFunction",
	"POST /api/admin/maintenance": "AdminFunction",
}

// deployed lists the functions/<name> folders the template must deploy;
// every other folder there (but functions/local, the development server)
// must be deployed too.
var deployed = map[string]string{
	"IngestFunction":   "ingest",
	"ActivityFunction": "activity",
	"StatsFunction":    "stats",
	"AdminFunction":    "admin",
	"MigrateFunction":  "migrate",
	"UiFunction":       "ui",
	// MaintenanceFunction serves no route: a schedule runs it.
	"MaintenanceFunction": "maintenance",
	"AlertsFunction":      "alerts",
}

// The configuration the functions read (docs/deploy.md); the template sets
// these and the Go code under functions/ and shared/ must read them.
var (
	databaseEnv = []string{"DATABASE_SECRET_ARN", "DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_SSLMODE"}
	adminEnv    = "ADMIN_TOKEN_SECRET_ARN"
)

func load(t *testing.T) (*Template, string) {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tmpl, root
}

func TestFunctionsAreBuiltFromFunctionPackages(t *testing.T) {
	tmpl, root := load(t)
	fns := tmpl.Functions()
	for name, dir := range deployed {
		if _, ok := fns[name]; !ok {
			t.Errorf("template has no %s (functions/%s)", name, dir)
		}
	}
	seen := map[string]string{}
	for name, r := range fns {
		uri, _ := tmpl.FunctionProperty(r, "CodeUri").(string)
		rel := filepath.ToSlash(filepath.Clean(uri))
		dir, ok := strings.CutPrefix(rel, "functions/")
		if !ok || strings.Contains(dir, "/") {
			t.Errorf("%s: CodeUri %q is not functions/<name>", name, uri)
			continue
		}
		if dir == "local" {
			t.Errorf("%s deploys functions/local, the development server", name)
		}
		if other, dup := seen[dir]; dup {
			t.Errorf("%s and %s are both built from functions/%s", name, other, dir)
		}
		seen[dir] = name
		if want, ok := deployed[name]; ok && want != dir {
			t.Errorf("%s: CodeUri functions/%s, want functions/%s", name, dir, want)
		}
		if _, err := os.Stat(filepath.Join(root, "functions", dir, "main.go")); err != nil {
			t.Errorf("%s: functions/%s has no main.go: %v", name, dir, err)
		}
		pkg, err := build.ImportDir(filepath.Join(root, "functions", dir), 0)
		switch {
		case err != nil:
			t.Errorf("%s: functions/%s is not a Go package: %v", name, dir, err)
		case pkg.Name != "main":
			t.Errorf("%s: functions/%s is package %s, want main", name, dir, pkg.Name)
		case !slices.Contains(pkg.Imports, "github.com/aws/aws-lambda-go/lambda"):
			t.Errorf("%s: functions/%s does not import github.com/aws/aws-lambda-go/lambda", name, dir)
		}
		if got := r.Metadata["BuildMethod"]; got != "go1.x" {
			t.Errorf("%s: Metadata.BuildMethod %v, want go1.x", name, got)
		}
		if got := tmpl.FunctionProperty(r, "Runtime"); got != "provided.al2023" {
			t.Errorf("%s: Runtime %v, want provided.al2023", name, got)
		}
		if got := tmpl.FunctionProperty(r, "Handler"); got != "bootstrap" {
			t.Errorf("%s: Handler %v, want bootstrap", name, got)
		}
		if got, _ := tmpl.FunctionProperty(r, "Architectures").([]any); len(got) != 1 || got[0] != "arm64" {
			t.Errorf("%s: Architectures %v, want [arm64]", name, got)
		}
	}
	// A new function folder must not be forgotten by the template.
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != "local" && seen[e.Name()] == "" {
			if _, err := build.ImportDir(filepath.Join(root, "functions", e.Name()), 0); err == nil {
				t.Errorf("functions/%s is not deployed by template.yaml", e.Name())
			}
		}
	}
}

// documentedRoutes reads the API routes docs/api.md lists in its table of
// routes (rows such as "| `GET /api/activity` | `activity` | API key |").
func documentedRoutes(t *testing.T, root string) []string {
	data, err := os.ReadFile(filepath.Join(root, "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?m)^\\| `(GET|POST|PUT|PATCH|DELETE) (/[^`\\s]*)` \\|")
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(data), -1) {
		out = append(out, m[1]+" "+m[2])
	}
	if len(out) == 0 {
		t.Fatal("found no routes in docs/api.md")
	}
	return out
}

func TestEveryRouteIsWired(t *testing.T) {
	tmpl, root := load(t)
	documented := documentedRoutes(t, root)
	for _, rt := range documented {
		if _, ok := routes[rt]; !ok {
			t.Errorf("docs/api.md documents %s, which this test (and the template) does not know", rt)
		}
	}
	for rt := range routes {
		if !slices.Contains(documented, rt) {
			t.Errorf("%s is served but not in the table of routes of docs/api.md", rt)
		}
	}
	wired := map[string][]string{}
	for name, r := range tmpl.Functions() {
		events, _ := r.Properties["Events"].(map[string]any)
		for evName, ev := range events {
			ev, _ := ev.(map[string]any)
			if ev["Type"] != "HttpApi" {
				continue
			}
			p, _ := ev["Properties"].(map[string]any)
			if api, ok := Ref(p["ApiId"]); !ok || tmpl.Resources[api].Type != "AWS::Serverless::HttpApi" {
				t.Errorf("%s.%s: ApiId %v is not a Ref to the template's HttpApi", name, evName, p["ApiId"])
			}
			method, _ := p["Method"].(string)
			path, _ := p["Path"].(string)
			key := strings.ToUpper(method) + " " + path
			wired[key] = append(wired[key], name)
		}
	}
	for rt, fn := range routes {
		switch got := wired[rt]; {
		case len(got) == 0:
			t.Errorf("%s is not wired to any function (want %s)", rt, fn)
		case len(got) > 1 || got[0] != fn:
			t.Errorf("%s is wired to %v, want %s", rt, got, fn)
		}
	}
	for rt, fns := range wired {
		if _, ok := routes[rt]; !ok {
			t.Errorf("%s (on %v) is not a documented route", rt, fns)
		}
	}
}

func TestMigrationsRunOnEveryDeploy(t *testing.T) {
	tmpl, _ := load(t)
	var migrations string
	for name, r := range tmpl.Resources {
		if !strings.HasPrefix(r.Type, "Custom::") && r.Type != "AWS::CloudFormation::CustomResource" {
			continue
		}
		token, _ := r.Properties["ServiceToken"].(map[string]any)
		if ref, _ := Ref(token); strings.HasPrefix(ref, "MigrateFunction") {
			migrations = name
			if id, _ := Ref(r.Properties["DeployId"]); id != "DeployId" {
				t.Errorf("%s does not change per deploy (want DeployId: !Ref DeployId)", name)
			}
		} else if getatt, ok := token["Fn::GetAtt"].([]any); ok && len(getatt) > 0 && getatt[0] == "MigrateFunction" {
			migrations = name
		}
	}
	if migrations == "" {
		t.Fatal("no custom resource calls MigrateFunction")
	}
	if _, ok := tmpl.Parameters["DeployId"]; !ok {
		t.Error("no DeployId parameter")
	}
	// New code must not serve traffic before its migrations ran.
	for name := range tmpl.Functions() {
		if name == "MigrateFunction" {
			continue
		}
		if !slices.Contains(tmpl.Resources[name].DependsOnList(), migrations) {
			t.Errorf("%s does not depend on %s", name, migrations)
		}
	}
}

func TestGradualDeploymentRollsBackOnEveryAlarm(t *testing.T) {
	tmpl, _ := load(t)
	var alarms []string
	for name, r := range tmpl.Resources {
		if r.Type == "AWS::CloudWatch::Alarm" {
			alarms = append(alarms, name)
		}
	}
	sort.Strings(alarms)
	for _, want := range []string{"Api5xxAlarm", "ApiLatencyAlarm", "FunctionThrottlesAlarm", "DatabaseCpuAlarm", "DatabaseConnectionsAlarm"} {
		if !slices.Contains(alarms, want) {
			t.Errorf("no %s", want)
		}
	}
	for name, r := range tmpl.Functions() {
		if name == "MigrateFunction" {
			continue
		}
		if r.Properties["AutoPublishAlias"] == nil {
			t.Errorf("%s has no AutoPublishAlias", name)
		}
		dp, _ := r.Properties["DeploymentPreference"].(map[string]any)
		if dp == nil {
			t.Errorf("%s has no DeploymentPreference", name)
			continue
		}
		list, _ := dp["Alarms"].([]any)
		var got []string
		for _, a := range list {
			if ref, ok := Ref(a); ok {
				got = append(got, ref)
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, alarms) {
			t.Errorf("%s rolls back on %v, want every alarm %v", name, got, alarms)
		}
	}
}

func TestFunctionLogsHaveRetention(t *testing.T) {
	tmpl, _ := load(t)
	for name, r := range tmpl.Functions() {
		lc, _ := tmpl.FunctionProperty(r, "LoggingConfig").(map[string]any)
		group, ok := Ref(lc["LogGroup"])
		if !ok {
			t.Errorf("%s: no LoggingConfig.LogGroup: !Ref <a log group with retention>", name)
			continue
		}
		lg := tmpl.Resources[group]
		if lg.Type != "AWS::Logs::LogGroup" || lg.Properties["RetentionInDays"] == nil {
			t.Errorf("%s logs to %s, which is not a log group with RetentionInDays", name, group)
		}
	}
}

func TestFunctionConfigurationContract(t *testing.T) {
	tmpl, root := load(t)
	for name, r := range tmpl.Functions() {
		env := tmpl.FunctionEnv(r)
		for _, k := range databaseEnv {
			if env[k] == nil {
				t.Errorf("%s: no %s", name, k)
			}
		}
		if (name == "AdminFunction") != (env[adminEnv] != nil) {
			t.Errorf("%s: %s set=%v; only AdminFunction reads the admin token", name, adminEnv, env[adminEnv] != nil)
		}
	}
	// The Go code must read what the template sets (the contract is in
	// docs/deploy.md); a renamed variable would deploy a function that
	// cannot find its database.
	var src strings.Builder
	for _, dir := range []string{"functions", "shared"} {
		_ = filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				if b, err := os.ReadFile(p); err == nil {
					src.Write(b)
				}
			}
			return nil
		})
	}
	for _, k := range append(slices.Clone(databaseEnv), adminEnv) {
		if !strings.Contains(src.String(), `"`+k+`"`) {
			t.Errorf("no Go code under functions/ or shared/ reads %s", k)
		}
	}
}

func TestOutputsAndParameters(t *testing.T) {
	tmpl, _ := load(t)
	if _, ok := tmpl.Outputs["ApiUrl"]; !ok {
		t.Error("no ApiUrl output")
	}
	for name, p := range tmpl.Parameters {
		if _, ok := p["Default"]; !ok {
			t.Errorf("parameter %s has no default", name)
		}
		if p["Description"] == nil {
			t.Errorf("parameter %s has no description", name)
		}
	}
	api := tmpl.Resources["Api"]
	if api.Type != "AWS::Serverless::HttpApi" {
		t.Fatalf("Api is %q, want AWS::Serverless::HttpApi", api.Type)
	}
	drs, _ := api.Properties["DefaultRouteSettings"].(map[string]any)
	if drs["ThrottlingBurstLimit"] == nil || drs["ThrottlingRateLimit"] == nil {
		t.Error("Api has no throttling")
	}
	if api.Properties["AccessLogSettings"] == nil {
		t.Error("Api has no access logs")
	}
	if api.Properties["CorsConfiguration"] != nil {
		t.Error("CORS is on; keep it off unless a browser client needs it")
	}
}

// TestOnlyFunctionsReachTheDatabase checks the network path: functions ->
// RDS Proxy -> database, each hop open only to the one before it, and the
// database private with a managed master secret.
func TestOnlyFunctionsReachTheDatabase(t *testing.T) {
	tmpl, _ := load(t)
	ingressFrom := func(sg string) []string {
		var from []string
		r := tmpl.Resources[sg]
		rules, _ := r.Properties["SecurityGroupIngress"].([]any)
		for _, rule := range rules {
			m, _ := rule.(map[string]any)
			if m["CidrIp"] != nil || m["CidrIpv6"] != nil {
				t.Errorf("%s admits a CIDR (%v); only security groups may come in", sg, m)
			}
			if ref, ok := Ref(m["SourceSecurityGroupId"]); ok {
				from = append(from, ref)
			}
		}
		for name, res := range tmpl.Resources {
			if res.Type != "AWS::EC2::SecurityGroupIngress" {
				continue
			}
			if g, _ := Ref(res.Properties["GroupId"]); g == sg {
				t.Errorf("%s: extra ingress rule %s", sg, name)
			}
		}
		return from
	}
	if got := ingressFrom("DatabaseSecurityGroup"); !slices.Equal(got, []string{"ProxySecurityGroup"}) {
		t.Errorf("database admits %v, want only the proxy", got)
	}
	if got := ingressFrom("ProxySecurityGroup"); !slices.Equal(got, []string{"FunctionSecurityGroup"}) {
		t.Errorf("proxy admits %v, want only the functions", got)
	}
	db := tmpl.Resources["Database"]
	if db.Properties["PubliclyAccessible"] != false || db.Properties["ManageMasterUserPassword"] != true ||
		db.Properties["StorageEncrypted"] != true {
		t.Errorf("database: PubliclyAccessible=%v ManageMasterUserPassword=%v StorageEncrypted=%v; want false, true, true",
			db.Properties["PubliclyAccessible"], db.Properties["ManageMasterUserPassword"], db.Properties["StorageEncrypted"])
	}
	if tmpl.Resources["DatabaseProxy"].Properties["RequireTLS"] != true {
		t.Error("RDS Proxy does not require TLS")
	}
	// A way out exists only with WebhookEgress=nat, and only the alerts
	// function runs where it leads: the functions' subnets and the
	// database's keep no route to the internet.
	for name, r := range tmpl.Resources {
		switch r.Type {
		case "AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::Route":
			if r.Condition != "HasWebhookEgress" {
				t.Errorf("%s (%s) without Condition HasWebhookEgress: the subnets must stay private", name, r.Type)
			}
		case "AWS::EC2::Subnet":
			if r.Properties["MapPublicIpOnLaunch"] != false {
				t.Errorf("subnet %s maps public IPs", name)
			}
		case "AWS::EC2::SubnetRouteTableAssociation":
			subnet, _ := Ref(r.Properties["SubnetId"])
			table, _ := Ref(r.Properties["RouteTableId"])
			if private := strings.HasPrefix(subnet, "PrivateSubnet"); private != (table == "PrivateRouteTable") {
				t.Errorf("%s puts %s in %s; the private subnets (and only they) use PrivateRouteTable", name, subnet, table)
			}
		}
	}
	egress := map[string]bool{"EgressSubnetA": true, "EgressSubnetB": true}
	for name, fn := range tmpl.Functions() {
		vpc, _ := fn.Properties["VpcConfig"].(map[string]any)
		if name != "AlertsFunction" {
			if vpc != nil {
				t.Errorf("%s has a VpcConfig of its own; only the alerts function may leave the private subnets", name)
			}
			continue
		}
		raw, _ := vpc["SubnetIds"].(map[string]any)
		branches, _ := raw["Fn::If"].([]any)
		if len(branches) != 3 || branches[0] != "HasWebhookEgress" {
			t.Fatalf("AlertsFunction SubnetIds %v, want !If [HasWebhookEgress, egress subnets, private subnets]", vpc["SubnetIds"])
		}
		for i, want := range []map[string]bool{egress, {"PrivateSubnetA": true, "PrivateSubnetB": true}} {
			list, _ := branches[i+1].([]any)
			got := map[string]bool{}
			for _, s := range list {
				ref, _ := Ref(s)
				got[ref] = true
			}
			if !maps.Equal(got, want) {
				t.Errorf("AlertsFunction subnets (branch %d) %v, want %v", i+1, got, want)
			}
		}
	}
	vpc, _ := tmpl.Globals["Function"]["VpcConfig"].(map[string]any)
	if sgs, _ := vpc["SecurityGroupIds"].([]any); len(sgs) != 1 {
		t.Errorf("functions' security groups %v, want [FunctionSecurityGroup]", sgs)
	} else if ref, _ := Ref(sgs[0]); ref != "FunctionSecurityGroup" {
		t.Errorf("functions run in %v, want FunctionSecurityGroup", sgs[0])
	}
}

// TestLeastPrivilege checks that each function may read only the secrets it
// needs: the database secret for all, the admin token for admin alone.
func TestLeastPrivilege(t *testing.T) {
	tmpl, _ := load(t)
	for name, r := range tmpl.Functions() {
		if r.Properties["Role"] != nil {
			t.Errorf("%s brings its own role; use SAM policy templates so the template shows its rights", name)
		}
		policies, _ := r.Properties["Policies"].([]any)
		var secrets []string
		for _, p := range policies {
			m, ok := p.(map[string]any)
			if !ok || len(m) != 1 {
				t.Errorf("%s: policy %v is not a SAM policy template", name, p)
				continue
			}
			tmplArgs, ok := m["AWSSecretsManagerGetSecretValuePolicy"].(map[string]any)
			if !ok {
				t.Errorf("%s: unexpected policy %v", name, m)
				continue
			}
			switch arn := tmplArgs["SecretArn"].(type) {
			case map[string]any:
				if ref, ok := Ref(arn); ok {
					secrets = append(secrets, ref)
				} else if ga, ok := arn["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
					secrets = append(secrets, ga[0].(string)+"."+ga[1].(string))
				}
			default:
				t.Errorf("%s: secret %v is not a reference to the template's secrets", name, arn)
			}
		}
		sort.Strings(secrets)
		want := []string{"Database.MasterUserSecret.SecretArn"}
		switch name {
		case "AdminFunction":
			want = []string{"AdminTokenSecret", "Database.MasterUserSecret.SecretArn"}
		case "UiFunction":
			want = nil // static files: no database, no secret
		}
		if !slices.Equal(secrets, want) {
			t.Errorf("%s may read %v, want %v", name, secrets, want)
		}
	}
}

// TestEveryRouteIsDocumented checks that docs/api.md, the API's contract,
// names every route the template wires.
func TestEveryRouteIsDocumented(t *testing.T) {
	_, root := load(t)
	data, err := os.ReadFile(filepath.Join(root, "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	for rt := range routes {
		if !strings.Contains(string(data), "`"+rt+"`") {
			t.Errorf("docs/api.md does not document %s", rt)
		}
	}
}

// TestUiServesEveryFile holds the ui function's routes to the page's
// embedded files: a file added to shared/webui without a route would be a
// 404 on AWS only.
func TestUiServesEveryFile(t *testing.T) {
	var want []string
	err := fs.WalkDir(webui.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if p == "index.html" {
				p = ""
			}
			want = append(want, "GET /"+p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rt, fn := range routes {
		if fn == "UiFunction" {
			got = append(got, rt)
		}
	}
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("UiFunction routes %v, want one per embedded file %v", got, want)
	}
}

// TestScheduledJobs checks that each scheduled job runs on an EventBridge
// schedule as often as its work needs, serves no route (an admin route runs
// it on demand), has a retry policy and time for a run, and that its
// failures and throttles raise the alarms the API's do.
//   - maintenance: partitions reach a week ahead, so daily would do; hourly
//     leaves room for failed runs; postgres.MaintenanceTimeout is 2 min.
//   - alerts: window rules fire within a minute of their window and
//     deliveries are retried on their backoff, so every minute; a run must
//     end before the next starts.
func TestScheduledJobs(t *testing.T) {
	tmpl, _ := load(t)
	for _, c := range []struct {
		function     string
		schedule     *regexp.Regexp
		minTO, maxTO int
	}{
		{"MaintenanceFunction", regexp.MustCompile(`^rate\(([1-9]|[1-5][0-9]) (minute|minutes|hour|hours)\)$|^rate\(1 day\)$`), 130, 900},
		{"AlertsFunction", regexp.MustCompile(`^rate\(1 minute\)$`), 20, 59},
	} {
		t.Run(c.function, func(t *testing.T) {
			fn, ok := tmpl.Functions()[c.function]
			if !ok {
				t.Fatalf("no %s", c.function)
			}
			events, _ := fn.Properties["Events"].(map[string]any)
			var schedules []string
			for name, ev := range events {
				ev, _ := ev.(map[string]any)
				if ev["Type"] == "HttpApi" {
					t.Errorf("%s.%s: the job serves no route (the admin function's route runs it on demand)", c.function, name)
				}
				if ev["Type"] != "Schedule" && ev["Type"] != "ScheduleV2" {
					continue
				}
				p, _ := ev["Properties"].(map[string]any)
				expr, _ := p["Schedule"].(string)
				if expr == "" {
					expr, _ = p["ScheduleExpression"].(string)
				}
				schedules = append(schedules, expr)
				if !c.schedule.MatchString(expr) {
					t.Errorf("%s.%s runs %q; want %s", c.function, name, expr, c.schedule)
				}
				if rp, _ := p["RetryPolicy"].(map[string]any); rp == nil {
					t.Errorf("%s.%s has no RetryPolicy", c.function, name)
				}
			}
			if len(schedules) != 1 {
				t.Errorf("%s has schedules %v, want one", c.function, schedules)
			}
			if to, _ := tmpl.FunctionProperty(fn, "Timeout").(int); to < c.minTO || to > c.maxTO {
				t.Errorf("%s Timeout %v, want %d to %d s", c.function, tmpl.FunctionProperty(fn, "Timeout"), c.minTO, c.maxTO)
			}
			for _, alarm := range []string{"FunctionErrorsAlarm", "FunctionThrottlesAlarm"} {
				if !alarmCounts(tmpl, alarm, c.function) {
					t.Errorf("%s does not count %s", alarm, c.function)
				}
			}
		})
	}
}

// alarmCounts reports whether the metric-math alarm sums a metric of
// function into the expression it alarms on.
func alarmCounts(tmpl *Template, alarm, function string) bool {
	metrics, _ := tmpl.Resources[alarm].Properties["Metrics"].([]any)
	for _, m := range metrics {
		m, _ := m.(map[string]any)
		ms, _ := m["MetricStat"].(map[string]any)
		metric, _ := ms["Metric"].(map[string]any)
		dims, _ := metric["Dimensions"].([]any)
		for _, d := range dims {
			d, _ := d.(map[string]any)
			if ref, _ := Ref(d["Value"]); ref != function {
				continue
			}
			id, _ := m["Id"].(string)
			for _, e := range metrics {
				e, _ := e.(map[string]any)
				if expr, _ := e["Expression"].(string); e["ReturnData"] == true && slices.Contains(strings.FieldsFunc(expr, func(r rune) bool { return r == ' ' || r == '+' }), id) {
					return true
				}
			}
		}
	}
	return false
}
