package dbconfig_test

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kilometers-ai/kilometers/shared/awssecrets"
	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/dbconfig"
	"github.com/kilometers-ai/kilometers/shared/dbconfig/dbconfigtest"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

// env is a getenv over a map.
type env map[string]string

func (e env) get(k string) string { return e[k] }

func TestDSNWithoutSecrets(t *testing.T) {
	ctx := context.Background()
	dsn, err := dbconfig.New(env{"DATABASE_URL": " postgres://u@h/db "}.get, nil).DSN(ctx)
	if err != nil || dsn != "postgres://u@h/db" {
		t.Errorf("DATABASE_URL: %q, %v", dsn, err)
	}
	// DATABASE_URL wins over a secret, which is then never read.
	dsn, err = dbconfig.New(env{"DATABASE_URL": "postgres://u@h/db", "DATABASE_SECRET_ARN": "arn:nope"}.get, nil).DSN(ctx)
	if err != nil || dsn != "postgres://u@h/db" {
		t.Errorf("DATABASE_URL with a secret: %q, %v", dsn, err)
	}
	if _, err := dbconfig.New(env{}.get, nil).DSN(ctx); !errors.Is(err, dbconfig.ErrNotConfigured) {
		t.Errorf("nothing configured: %v, want ErrNotConfigured", err)
	}
	tok, err := dbconfig.New(env{"KILOMETERS_ADMIN_TOKEN": "t0k"}.get, nil).AdminToken(ctx)
	if err != nil || tok != "t0k" {
		t.Errorf("admin token from env: %q, %v", tok, err)
	}
	tok, err = dbconfig.New(env{}.get, nil).AdminToken(ctx)
	if err != nil || tok != "" {
		t.Errorf("no admin token: %q, %v; want none, no error", tok, err)
	}
	// A process without a secret store, told to read a secret.
	if _, err := dbconfig.New(env{"DATABASE_SECRET_ARN": "arn:db"}.get, nil).DSN(ctx); err == nil || !strings.Contains(err.Error(), "reads no secrets") {
		t.Errorf("secret without a secret store: %v, want an error saying so", err)
	}
}

// TestSecretsManager_Moto reads secrets from a real Secrets Manager API
// (moto_server) through the default AWS configuration, pointed at it by
// AWS_ENDPOINT_URL_SECRETS_MANAGER as on a machine with an endpoint
// override.
func TestSecretsManager_Moto(t *testing.T) {
	moto := dbconfigtest.StartMoto(t)
	moto.Setenv(t)
	ctx := context.Background()

	type conn struct {
		user, password, host string
		port                 uint16
		db, sslmode          string
	}
	for i, tc := range []struct {
		name   string
		secret string
		env    env
		want   conn
	}{
		{
			name:   "rds secret, all in it",
			secret: `{"engine":"postgres","username":"app","password":"p@ss:w/rd?#%","host":"db.internal","port":5433,"dbname":"km","dbInstanceIdentifier":"x"}`,
			want:   conn{"app", "p@ss:w/rd?#%", "db.internal", 5433, "km", "require"},
		},
		{
			name:   "managed master secret: only username and password, the rest from the environment",
			secret: `{"username":"postgres","password":"s3cret"}`,
			env:    env{"DATABASE_HOST": "proxy.example", "DATABASE_PORT": "6432", "DATABASE_NAME": "kilometers"},
			want:   conn{"postgres", "s3cret", "proxy.example", 6432, "kilometers", "require"},
		},
		{
			name:   "environment overrides the secret",
			secret: `{"username":"app","password":"pw","host":"db.internal","port":"5433","dbname":"km"}`,
			env:    env{"DATABASE_HOST": "proxy.example", "DATABASE_PORT": "5432", "DATABASE_NAME": "other", "DATABASE_SSLMODE": "verify-full"},
			want:   conn{"app", "pw", "proxy.example", 5432, "other", "verify-full"},
		},
		{
			name:   "defaults: port 5432, database postgres",
			secret: `{"username":"app","password":"pw","host":"db.internal"}`,
			want:   conn{"app", "pw", "db.internal", 5432, "postgres", "require"},
		},
		{
			name:   "a PostgreSQL URL as is",
			secret: "postgres://u:pw@h.example:5999/d?sslmode=disable\n",
			want:   conn{"u", "pw", "h.example", 5999, "d", "disable"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arn := moto.CreateSecret(t, "kilometers/db-"+strconv.Itoa(i), tc.secret)
			e := env{"DATABASE_SECRET_ARN": arn}
			for k, v := range tc.env {
				e[k] = v
			}
			dsn, err := dbconfig.New(e.get, awssecrets.New()).DSN(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := pgconn.ParseConfig(dsn)
			if err != nil {
				t.Fatalf("DSN %q does not parse: %v", dsn, err)
			}
			u, _ := url.Parse(dsn)
			got := conn{cfg.User, cfg.Password, cfg.Host, cfg.Port, cfg.Database, u.Query().Get("sslmode")}
			if got != tc.want {
				t.Errorf("DSN %q\n got %+v\nwant %+v", dsn, got, tc.want)
			}
		})
	}

	t.Run("bad secrets give clear errors", func(t *testing.T) {
		for _, tc := range []struct {
			name, secret, want string
		}{
			{"not json", "hunter2", "want a PostgreSQL URL or JSON with username and password"},
			{"no username", `{"password":"x","host":"h"}`, "no username"},
			{"no host", `{"username":"u","password":"x"}`, "no host: set DATABASE_HOST"},
		} {
			arn := moto.CreateSecret(t, "bad-"+strings.ReplaceAll(tc.name, " ", "-"), tc.secret)
			_, err := dbconfig.New(env{"DATABASE_SECRET_ARN": arn}.get, awssecrets.New()).DSN(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), arn) {
				t.Errorf("%s: %v, want an error naming the secret and %q", tc.name, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("%s: the error shows the secret: %v", tc.name, err)
			}
		}
		_, err := dbconfig.New(env{"DATABASE_SECRET_ARN": "kilometers/missing"}.get, awssecrets.New()).DSN(ctx)
		if err == nil || !strings.Contains(err.Error(), "database secret") || !strings.Contains(err.Error(), "ResourceNotFound") {
			t.Errorf("missing secret: %v, want a database secret error saying it is not found", err)
		}
	})

	t.Run("read once per cold start, a failure is retried", func(t *testing.T) {
		const name = "kilometers/db-once"
		r := dbconfig.New(env{"DATABASE_SECRET_ARN": name, "DATABASE_HOST": "h"}.get, awssecrets.New())
		if _, err := r.DSN(ctx); err == nil {
			t.Fatal("DSN of a secret that does not exist yet succeeded")
		}
		moto.CreateSecret(t, name, `{"username":"first","password":"pw"}`)
		first, err := r.DSN(ctx)
		if err != nil {
			t.Fatalf("DSN once the secret exists: %v", err)
		}
		moto.PutSecret(t, name, `{"username":"second","password":"pw"}`)
		again, err := r.DSN(ctx)
		if err != nil || again != first {
			t.Errorf("second DSN = %q, %v; want the first read %q kept", again, err, first)
		}
		fresh, err := dbconfig.New(env{"DATABASE_SECRET_ARN": name, "DATABASE_HOST": "h"}.get, awssecrets.New()).DSN(ctx)
		if err != nil || !strings.Contains(fresh, "second") {
			t.Errorf("a new cold start reads %q, %v; want the new value", fresh, err)
		}
	})

	t.Run("admin token secret", func(t *testing.T) {
		arn := moto.CreateSecret(t, "kilometers/admin", "  the-admin-token\n")
		r := dbconfig.New(env{"ADMIN_TOKEN_SECRET_ARN": arn}.get, awssecrets.New())
		tok, err := r.AdminToken(ctx)
		if err != nil || tok != "the-admin-token" {
			t.Fatalf("admin token = %q, %v", tok, err)
		}
		moto.PutSecret(t, arn, "rotated")
		if tok, err := r.AdminToken(ctx); err != nil || tok != "the-admin-token" {
			t.Errorf("second read = %q, %v; want the cold start's token kept", tok, err)
		}
		// The environment wins over the secret.
		if tok, _ := dbconfig.New(env{"ADMIN_TOKEN_SECRET_ARN": arn, "KILOMETERS_ADMIN_TOKEN": "env"}.get, awssecrets.New()).AdminToken(ctx); tok != "env" {
			t.Errorf("token with both set = %q, want the environment's", tok)
		}
		empty := moto.CreateSecret(t, "kilometers/admin-empty", " \n")
		if _, err := dbconfig.New(env{"ADMIN_TOKEN_SECRET_ARN": empty}.get, awssecrets.New()).AdminToken(ctx); err == nil || !strings.Contains(err.Error(), "is empty") {
			t.Errorf("empty token secret: %v, want an error saying it is empty", err)
		}
		if _, err := dbconfig.New(env{"ADMIN_TOKEN_SECRET_ARN": "kilometers/nope"}.get, awssecrets.New()).AdminToken(ctx); err == nil || !strings.Contains(err.Error(), "admin token secret") {
			t.Errorf("missing token secret: %v, want an admin token secret error", err)
		}
	})

	// The whole path against a real database: a secret naming the test's
	// PostgreSQL, opened lazily, unavailable until the secret exists.
	t.Run("lazy store over the secret_Postgres", func(t *testing.T) {
		dsn := pgtest.MustCreateDatabase(t)
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		const name = "kilometers/db-real"
		r := dbconfig.New(env{
			"DATABASE_SECRET_ARN": name, "DATABASE_HOST": cfg.Host, "DATABASE_SSLMODE": "disable",
		}.get, awssecrets.New())
		store := dbconfig.NewLazyStore(dbconfig.Postgres(r))
		defer store.Close()
		if err := store.Ping(ctx); backend.ErrorCode(err) != backend.EUNAVAILABLE {
			t.Fatalf("ping before the secret exists: %v, want unavailable", err)
		}
		moto.CreateSecret(t, name, `{"username":"`+cfg.User+`","password":"`+cfg.Password+`","port":`+strconv.Itoa(int(cfg.Port))+`,"dbname":"`+cfg.Database+`"}`)
		if err := store.Ping(ctx); err != nil {
			t.Fatalf("ping once the secret exists: %v", err)
		}
	})
}
