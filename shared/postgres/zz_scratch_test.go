package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kilometers-ai/kilometers/shared/event"
	"github.com/kilometers-ai/kilometers/shared/postgres"
	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

func TestScratchExplain(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant, key, _ := db.CreateTenant(ctx, "x")
	r := rand.New(rand.NewPCG(1, 2))
	sessions := newSessions(t, 20)
	from := time.Now().Add(-2 * time.Hour)
	var auth, ing time.Duration
	for i := 0; i < 60; i++ {
		ev := genEvents(t, r, 500, from.Add(time.Duration(i)*time.Second*30), 30*time.Second, sessions, []string{"fs", "gh", "pg"})
		for j := range ev {
			ev[j].ID = newID(t)
		}
		t0 := time.Now()
		if _, err := db.Authenticate(ctx, key); err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		if i < 59 {
			if _, err := db.Ingest(ctx, tenant.ID, event.Batch{Events: ev}); err != nil {
				t.Fatal(err)
			}
		}
		if i >= 20 && i < 59 {
			auth += t1.Sub(t0)
			ing += time.Since(t1)
		}
		if i == 59 {
			args, err := postgres.BatchArgs(tenant.ID, ev)
			if err != nil {
				t.Fatal(err)
			}
			tx, _ := db.Pool().Begin(ctx)
			tx.Exec(ctx, "SELECT set_config('role','kilometers_app',true), set_config('app.tenant_id',$1,true)", tenant.ID)
			rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, TIMING) "+postgres.InsertArraysSQL, args...)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range must(pgx.CollectRows(rows, pgx.RowTo[string])) {
				fmt.Println(l)
			}
			tx.Rollback(ctx)
		}
	}
	fmt.Printf("auth avg %v ingest avg %v\n", auth/39, ing/39)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
