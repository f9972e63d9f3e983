package dbconfig_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/kilometers-ai/kilometers/shared/backend"
	"github.com/kilometers-ai/kilometers/shared/dbconfig"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

// secrets is an in-memory Secrets Manager (AWS is the one thing tests may
// stand in for); reads counts GetSecretValue calls.
type secrets struct {
	mu    sync.Mutex
	value string
	reads int
}

func (s *secrets) SecretString(context.Context, string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	return s.value, nil
}

func (s *secrets) set(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.value = v
}

// After the password of a real role changes (and its secret with it), the
// store reads the secret again on the refused login and the request
// succeeds; with a secret that still holds the old password, the answer
// is EUNAVAILABLE, not an internal error.
func TestPasswordRotation(t *testing.T) {
	c := pgtest.StartPasswordCluster(t)
	c.SetPassword(t, "km_rotating", "first-password")
	rds := func(pw string) string {
		return `{"username":"km_rotating","password":"` + pw + `","host":"127.0.0.1","port":` + strconv.Itoa(c.Port) + `,"dbname":"postgres"}`
	}
	sm := &secrets{value: rds("first-password")}
	r := dbconfig.New(env{"DATABASE_SECRET_ARN": "arn:db", "DATABASE_SSLMODE": "disable"}.get, sm)
	store := dbconfig.NewLazyStore(dbconfig.Postgres(r))
	defer store.Close()
	ctx := context.Background()
	if err := store.Ping(ctx); err != nil {
		t.Fatalf("first ping: %v", err)
	}

	// Rotation: the password changes in the database and in the secret,
	// and the pooled connections go away (a proxy or database restart).
	c.SetPassword(t, "km_rotating", "second-password")
	sm.set(rds("second-password"))
	c.Terminate(t, "km_rotating")
	readsBefore := sm.reads
	if err := store.Ping(ctx); err != nil {
		t.Fatalf("ping after rotation: %v", err)
	}
	if sm.reads != readsBefore+1 {
		t.Errorf("secret read %d times after the rotation, want once", sm.reads-readsBefore)
	}

	// A password that changed without its secret.
	c.SetPassword(t, "km_rotating", "third-password")
	c.Terminate(t, "km_rotating")
	if err := store.Ping(ctx); backend.ErrorCode(err) != backend.EUNAVAILABLE {
		t.Errorf("ping with a stale secret: %v, want EUNAVAILABLE", err)
	}
}
