// Package dbconfig resolves what the API functions need to reach their
// database and to authorize admin calls, from the environment:
//
//   - DATABASE_URL: a PostgreSQL URL, used as is (local runs and tests).
//   - else DATABASE_SECRET_ARN: a Secrets Manager secret holding either a
//     PostgreSQL URL or the JSON RDS writes ({"username", "password", and
//     optionally "host", "port", "dbname"}); DATABASE_HOST, DATABASE_PORT,
//     DATABASE_NAME and DATABASE_SSLMODE (default require) fill in or
//     override the rest.
//   - KILOMETERS_ADMIN_TOKEN: the admin token; else ADMIN_TOKEN_SECRET_ARN,
//     a secret whose SecretString is the token. Neither disables the admin
//     routes.
//
// Secrets come from a Secrets (package awssecrets in the Lambda functions),
// so a binary that never reads a secret links no AWS SDK. A Resolver reads
// each secret at most once per process (once per Lambda cold start) and
// keeps the answer; a failed read is not kept, so the next
// request tries again. When the database refuses the credentials (RDS
// rotated the password), the store reads the database secret again
// (FreshDSN) and retries once.
package dbconfig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
)

// Environment variable names.
const (
	EnvDatabaseURL         = "DATABASE_URL"
	EnvDatabaseSecretARN   = "DATABASE_SECRET_ARN"
	EnvDatabaseHost        = "DATABASE_HOST"
	EnvDatabasePort        = "DATABASE_PORT"
	EnvDatabaseName        = "DATABASE_NAME"
	EnvDatabaseSSLMode     = "DATABASE_SSLMODE"
	EnvAdminToken          = "KILOMETERS_ADMIN_TOKEN"
	EnvAdminTokenSecretARN = "ADMIN_TOKEN_SECRET_ARN"
)

// ErrNotConfigured says the environment names no database at all.
var ErrNotConfigured = errors.New("no database configured: set DATABASE_URL, or DATABASE_SECRET_ARN with DATABASE_HOST")

// Secrets reads a secret's current string by its ARN or name.
type Secrets interface {
	SecretString(ctx context.Context, id string) (string, error)
}

// Resolver resolves the DSN and the admin token, caching what it read.
type Resolver struct {
	getenv  func(string) string
	secrets Secrets

	mu        sync.Mutex
	dsn       string
	token     string
	tokenRead bool
}

// New returns a Resolver over getenv (os.Getenv in production) that reads
// the secrets the environment names from secrets. With nil secrets, a
// configuration that names a secret fails to resolve.
func New(getenv func(string) string, secrets Secrets) *Resolver {
	return &Resolver{getenv: getenv, secrets: secrets}
}

func (r *Resolver) env(k string) string { return strings.TrimSpace(r.getenv(k)) }

// DSN returns the PostgreSQL connection string.
func (r *Resolver) DSN(ctx context.Context) (string, error) {
	if u := r.env(EnvDatabaseURL); u != "" {
		return u, nil
	}
	arn := r.env(EnvDatabaseSecretARN)
	if arn == "" {
		return "", ErrNotConfigured
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dsn != "" {
		return r.dsn, nil
	}
	secret, err := r.secret(ctx, arn)
	if err != nil {
		return "", fmt.Errorf("database secret: %w", err)
	}
	dsn, err := r.buildDSN(secret)
	if err != nil {
		return "", fmt.Errorf("database secret %s: %w", arn, err)
	}
	r.dsn = dsn
	return dsn, nil
}

// FreshDSN is DSN read again from the secret, not from the cache: the
// database refused the credentials it had (a rotated password). With
// DATABASE_URL it is DSN.
func (r *Resolver) FreshDSN(ctx context.Context) (string, error) {
	r.mu.Lock()
	r.dsn = ""
	r.mu.Unlock()
	return r.DSN(ctx)
}

// AdminToken returns the admin token, "" when none is configured. Its
// signature is httpapi.TokenFunc's.
func (r *Resolver) AdminToken(ctx context.Context) (string, error) {
	if t := r.env(EnvAdminToken); t != "" {
		return t, nil
	}
	arn := r.env(EnvAdminTokenSecretARN)
	if arn == "" {
		return "", nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tokenRead {
		return r.token, nil
	}
	secret, err := r.secret(ctx, arn)
	if err != nil {
		return "", fmt.Errorf("admin token secret: %w", err)
	}
	token := strings.TrimSpace(secret)
	if token == "" {
		return "", fmt.Errorf("admin token secret %s is empty", arn)
	}
	r.token, r.tokenRead = token, true
	return token, nil
}

// secret reads a secret's string; r.mu is held.
func (r *Resolver) secret(ctx context.Context, arn string) (string, error) {
	if r.secrets == nil {
		return "", fmt.Errorf("secret %s: this process reads no secrets", arn)
	}
	return r.secrets.SecretString(ctx, arn)
}

// rdsSecret is the JSON RDS keeps in a database secret.
type rdsSecret struct {
	Username string          `json:"username"`
	Password string          `json:"password"`
	Host     string          `json:"host"`
	Port     json.RawMessage `json:"port"` // a number or a string
	DBName   string          `json:"dbname"`
}

func (r *Resolver) buildDSN(secret string) (string, error) {
	secret = strings.TrimSpace(secret)
	if strings.HasPrefix(secret, "postgres://") || strings.HasPrefix(secret, "postgresql://") {
		return secret, nil
	}
	var s rdsSecret
	if err := json.Unmarshal([]byte(secret), &s); err != nil {
		return "", errors.New("want a PostgreSQL URL or JSON with username and password")
	}
	if s.Username == "" {
		return "", errors.New("no username")
	}
	host := firstNonEmpty(r.env(EnvDatabaseHost), s.Host)
	if host == "" {
		return "", fmt.Errorf("no host: set %s or put host in the secret", EnvDatabaseHost)
	}
	port := firstNonEmpty(r.env(EnvDatabasePort), strings.Trim(string(s.Port), `"`), "5432")
	name := firstNonEmpty(r.env(EnvDatabaseName), s.DBName, "postgres")
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(s.Username, s.Password),
		Host:     net.JoinHostPort(host, port),
		Path:     "/" + name,
		RawQuery: url.Values{"sslmode": {firstNonEmpty(r.env(EnvDatabaseSSLMode), "require")}}.Encode(),
	}
	return u.String(), nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
