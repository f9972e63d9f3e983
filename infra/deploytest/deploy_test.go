package deploytest

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// The stand-ins log every call (one line: argv, then the Go build
// environment for sam) and answer from STUB_* variables.
const samStub = `#!/usr/bin/env bash
echo "sam $* | CGO_ENABLED=${CGO_ENABLED:-} GOFLAGS=${GOFLAGS:-}" >>"$STUB_LOG"
case $1 in
  build) exit "${STUB_SAM_BUILD_EXIT:-0}" ;;
  deploy) exit "${STUB_SAM_DEPLOY_EXIT:-0}" ;;
esac
`

const awsStub = `#!/usr/bin/env bash
echo "aws $*" >>"$STUB_LOG"
case "$1 $2 $*" in
  *ApiUrl*) echo "${STUB_API_URL:-None}" ;;
  *AdminTokenSecretArn*) echo "${STUB_SECRET_ARN:-None}" ;;
  "cloudformation describe-stacks"*) exit "${STUB_STACK_EXISTS:-0}" ;;
  "secretsmanager get-secret-value"*) echo "$STUB_ADMIN_TOKEN" ;;
  *) echo "aws stub: unexpected call: $*" >&2; exit 1 ;;
esac
`

type run struct {
	code   int
	output string
	log    string
}

func deploy(t *testing.T, env map[string]string, args ...string) run {
	t.Helper()
	root := testenv.RepoRoot(t)
	bin := t.TempDir()
	for name, src := range map[string]string{"sam": samStub, "aws": awsStub} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(src), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	logFile := filepath.Join(t.TempDir(), "calls.log")
	cmd := exec.Command(filepath.Join(root, "infra", "deploy.sh"), args...)
	cmd.Dir = t.TempDir() // the script must find the repository by itself
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "STUB_LOG="+logFile,
		"GITHUB_ACTIONS=", "STACK_NAME=")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run deploy.sh: %v", err)
	}
	calls, _ := os.ReadFile(logFile)
	return run{code: code, output: string(out), log: string(calls)}
}

func TestDeployBuildsAndDeploysWithoutPrompts(t *testing.T) {
	root := testenv.RepoRoot(t)
	r := deploy(t, nil, "--ci", "--no-smoke", "--parameter", "AlarmEmail=ops@example.com")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.output)
	}
	lines := strings.Split(strings.TrimSpace(r.log), "\n")
	var sam []string
	for _, l := range lines {
		if strings.HasPrefix(l, "sam ") {
			sam = append(sam, l)
		}
	}
	if len(sam) != 2 {
		t.Fatalf("sam calls %q, want build then deploy", sam)
	}
	// The script resolves the repository with cd (paths may differ by
	// symlinks); the config must be absolute, as sam reads it from any cwd.
	if !strings.HasPrefix(sam[0], "sam build --config-file /") || !strings.Contains(sam[0], "/infra/samconfig.toml --template-file /") ||
		!strings.Contains(sam[0], "/template.yaml |") {
		t.Errorf("build call %q, want sam build --config-file %s", sam[0], filepath.Join(root, "infra", "samconfig.toml"))
	}
	if !strings.Contains(sam[0], "CGO_ENABLED=0") || !strings.Contains(sam[0], "-tags=lambda.norpc") {
		t.Errorf("build call %q: want CGO_ENABLED=0 and -tags=lambda.norpc", sam[0])
	}
	re := regexp.MustCompile(`^sam deploy --config-file \S+/infra/samconfig.toml --stack-name kilometers ` +
		`--parameter-overrides DeployId=\d{8}T\d{6}Z-\w+ AlarmEmail=ops@example.com ` +
		`--no-confirm-changeset --no-fail-on-empty-changeset --no-progressbar \|`)
	if !re.MatchString(sam[1]) {
		t.Errorf("deploy call %q\nwant it to match %s", sam[1], re)
	}
	if strings.Contains(r.log, "secretsmanager") || strings.Contains(r.log, "--guided") {
		t.Errorf("--ci --no-smoke read a secret or prompted:\n%s", r.log)
	}
}

func TestDeployStackName(t *testing.T) {
	r := deploy(t, map[string]string{"STACK_NAME": "km-staging"}, "--ci", "--no-smoke")
	if r.code != 0 || !strings.Contains(r.log, "--stack-name km-staging ") {
		t.Fatalf("exit %d, calls:\n%s\n%s", r.code, r.log, r.output)
	}
}

func TestDeployFailures(t *testing.T) {
	cases := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		want     string
		notCall  string
	}{
		{"build fails", map[string]string{"STUB_SAM_BUILD_EXIT": "1"}, []string{"--ci"}, 1, "== sam build", "sam deploy"},
		{"deploy fails", map[string]string{"STUB_SAM_DEPLOY_EXIT": "3"}, []string{"--ci"}, 3, "== sam deploy", "secretsmanager"},
		{"no outputs", nil, []string{"--smoke-only"}, 1, "has no ApiUrl or AdminTokenSecretArn output", "secretsmanager"},
		{"empty token", map[string]string{"STUB_API_URL": "http://127.0.0.1:1", "STUB_SECRET_ARN": "arn:x"}, []string{"--smoke-only"}, 1, "admin token secret arn:x is empty", "sam "},
		{"bad parameter", nil, []string{"--parameter", "NoEquals"}, 2, "--parameter needs Key=Value", "sam "},
		{"unknown flag", nil, []string{"--yes"}, 2, "unknown argument --yes", "sam "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := deploy(t, tc.env, tc.args...)
			if r.code != tc.wantCode {
				t.Errorf("exit %d, want %d\n%s", r.code, tc.wantCode, r.output)
			}
			if !strings.Contains(r.output, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, r.output)
			}
			if strings.Contains(r.log, tc.notCall) {
				t.Errorf("called %q after the failure:\n%s", tc.notCall, r.log)
			}
		})
	}
}

// TestDeploySmokeTest_Postgres runs the real smoke test from deploy.sh
// against the real API: it passes with the admin token the stack's secret
// holds and fails the deploy with any other.
func TestDeploySmokeTest_Postgres(t *testing.T) {
	// A database of its own: the server's default one is shared with
	// every other checkout and run on this machine.
	db := pgtest.MustOpenDB(t)
	const token = "deploy-test-admin-token"
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Store: db, AdminToken: httpapi.StaticToken(token)}))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name, secret string
		wantCode     int
		want         string
	}{
		{"right token", token, 0, "passed 8 checks"},
		{"wrong token", "not-the-token", 1, "smoke: FAIL: create tenant: POST /api/admin/tenants: status 401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := deploy(t, map[string]string{
				"STUB_API_URL": srv.URL, "STUB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:admin",
				"STUB_ADMIN_TOKEN": tc.secret, "GITHUB_ACTIONS": "true",
			}, "--smoke-only")
			if r.code != tc.wantCode || !strings.Contains(r.output, tc.want) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s", r.code, tc.wantCode, tc.want, r.output)
			}
			if !strings.Contains(r.output, "::add-mask::"+tc.secret+"\n") {
				t.Errorf("the admin token is not masked in workflow logs:\n%s", r.output)
			}
			if strings.Contains(r.log, "sam ") {
				t.Errorf("--smoke-only ran sam:\n%s", r.log)
			}
			if !strings.Contains(r.log, "aws secretsmanager get-secret-value --secret-id arn:aws:secretsmanager:eu-west-1:1:secret:admin") {
				t.Errorf("token not read from the stack's secret:\n%s", r.log)
			}
		})
	}
}
