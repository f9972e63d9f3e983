// Package dbconfigtest gives tests the real parts around a function's
// configuration: a Secrets Manager (moto_server, started per test on a free
// loopback port) and a TCP relay in front of PostgreSQL that a test can cut
// and restore to play a database outage.
package dbconfigtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/kilometers-ai/kilometers/shared/testenv"
)

// Region is the region every test secret lives in.
const Region = "us-east-1"

// Moto is a running moto_server.
type Moto struct {
	// Endpoint is its base URL (http://127.0.0.1:PORT).
	Endpoint string
}

// StartMoto starts moto_server on a free loopback port and stops it at
// cleanup. A missing moto_server fails the test with what to install.
func StartMoto(tb testing.TB) *Moto {
	tb.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		tb.Fatalf("test needs moto_server on PATH (pip install 'moto[server]'): %v", err)
	}
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out testenv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start moto_server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		// The group holds whatever the pyenv shim started.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	m := &Moto{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port)}
	// Python takes seconds to import moto, and much longer on a loaded
	// machine; wait until it answers.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.Endpoint+"/moto-api/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return m
		}
		select {
		case <-exited:
			tb.Fatalf("moto_server exited before answering:\n%s", out.String())
		case <-ctx.Done():
			tb.Fatalf("moto_server did not answer on %s: %v\n%s", m.Endpoint, err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Env is the environment that points the AWS SDK's default configuration
// at this server (KEY=VALUE), as a function process would get it; no
// shared config file or instance metadata is consulted.
func (m *Moto) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + m.Endpoint,
		"AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_SESSION_TOKEN=testing",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
	}
}

// Setenv puts Env into the test process's environment (for code that loads
// the default AWS configuration in process).
func (m *Moto) Setenv(t *testing.T) {
	t.Helper()
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// Client is a Secrets Manager client for this server, built with the AWS
// SDK independently of the code under test.
func (m *Moto) Client() *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", "testing"),
		BaseEndpoint: aws.String(m.Endpoint),
	})
}

// CreateSecret creates a secret holding value and returns its ARN.
func (m *Moto) CreateSecret(tb testing.TB, name, value string) string {
	tb.Helper()
	out, err := m.Client().CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name:         aws.String(name),
		SecretString: aws.String(value),
	})
	if err != nil {
		tb.Fatalf("create secret %s: %v", name, err)
	}
	return aws.ToString(out.ARN)
}

// PutSecret stores a new current value in the secret.
func (m *Moto) PutSecret(tb testing.TB, id, value string) {
	tb.Helper()
	_, err := m.Client().PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId:     aws.String(id),
		SecretString: aws.String(value),
	})
	if err != nil {
		tb.Fatalf("put secret %s: %v", id, err)
	}
}
