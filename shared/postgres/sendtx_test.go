package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/kilometers-ai/kilometers/shared/postgres/pgtest"
)

// TestSendTxIdentity_Postgres checks what tenant isolation rests on when
// a transaction travels as one pipeline (ingest, authentication): every
// statement after the first runs as the tenant role with the tenant set,
// so row-level security applies, and neither outlives the pipeline on the
// pooled connection, whether it commits or fails.
func TestSendTxIdentity_Postgres(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "acme")
	// One connection, so the checks after the pipeline see the same one.
	db.Pool().Reset()
	conn, err := db.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var loginUser string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&loginUser); err != nil {
		t.Fatal(err)
	}
	conn.Release()

	for _, fail := range []bool{false, true} {
		var user, setting string
		err := db.SendTxAsApp(ctx, tenant, func(b *pgx.Batch) {
			b.Queue("SELECT current_user::text, current_setting('app.tenant_id')").QueryRow(func(row pgx.Row) error {
				return row.Scan(&user, &setting)
			})
			if fail {
				b.Queue("SELECT 1/0")
			}
		})
		if fail != (err != nil) {
			t.Fatalf("fail=%v: err %v", fail, err)
		}
		if user != "kilometers_app" || setting != tenant {
			t.Errorf("fail=%v: inside the pipeline user %q tenant %q, want kilometers_app %q", fail, user, setting, tenant)
		}
		// Every pooled connection: none may carry the identity on.
		for range db.Pool().Stat().TotalConns() {
			c, err := db.Pool().Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var after, afterSetting string
			if err := c.QueryRow(ctx, "SELECT current_user::text, coalesce(current_setting('app.tenant_id', true), '')").Scan(&after, &afterSetting); err != nil {
				t.Fatal(err)
			}
			c.Release()
			if after != loginUser || afterSetting != "" {
				t.Errorf("fail=%v: after the pipeline user %q tenant %q, want %q and none", fail, after, afterSetting, loginUser)
			}
		}
	}
}

// TestInTxIdentity_Postgres is TestSendTxIdentity_Postgres for inTx, whose
// identity also travels as parameters: inside, the tenant role and tenant;
// an identity the database refuses (a role that does not exist) fails the
// transaction before its work runs, and leaves the connection as it was.
func TestInTxIdentity_Postgres(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	ctx := context.Background()
	tenant := mustTenant(t, db, "acme")
	var user, setting, timeout string
	err := db.InTxAs(ctx, "kilometers_app", tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "SELECT current_user::text, current_setting('app.tenant_id'), current_setting('statement_timeout')").Scan(&user, &setting, &timeout)
	})
	if err != nil || user != "kilometers_app" || setting != tenant || timeout != "5s" {
		t.Fatalf("inside inTx user %q tenant %q timeout %q, %v; want kilometers_app %q 5s", user, setting, timeout, err, tenant)
	}
	ran := false
	err = db.InTxAs(ctx, "km_no_such_role", tenant, func(pgx.Tx) error { ran = true; return nil })
	if err == nil || ran {
		t.Fatalf("a refused identity: err %v, work ran %v; want an error before the work", err, ran)
	}
	for range db.Pool().Stat().TotalConns() {
		c, err := db.Pool().Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var afterSetting string
		if err := c.QueryRow(ctx, "SELECT coalesce(current_setting('app.tenant_id', true), '')").Scan(&afterSetting); err != nil {
			t.Fatal(err)
		}
		c.Release()
		if afterSetting != "" {
			t.Errorf("after inTx a pooled connection carries tenant %q", afterSetting)
		}
	}
}
