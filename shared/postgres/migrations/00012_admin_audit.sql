-- The audit trail: one row per admin action, written in the action's own
-- transaction. Rows are append-only for the application: its roles may
-- insert and read them, never change or remove them. The admin credential
-- is recorded by fingerprint (first 12 hex digits of its SHA-256), never
-- itself. No foreign keys: the entries about a tenant outlive its deletion.

-- +goose Up
CREATE TABLE admin_audit (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    admin     text NOT NULL,
    action    text NOT NULL,
    tenant_id uuid,
    key_id    uuid,
    address   text NOT NULL DEFAULT '',
    detail    jsonb
);
CREATE INDEX admin_audit_tenant ON admin_audit (tenant_id, id DESC);

-- Like every table, under row-level security: the admin role sees every
-- entry (it administers every tenant); the app role has no policy, and no
-- grant either.
ALTER TABLE admin_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE admin_audit FORCE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON admin_audit TO kilometers_admin USING (true) WITH CHECK (true);
REVOKE ALL ON admin_audit FROM PUBLIC;
REVOKE ALL ON admin_audit FROM kilometers_app, kilometers_admin;
GRANT SELECT, INSERT ON admin_audit TO kilometers_admin;

-- +goose Down
DROP TABLE admin_audit;
