-- Team alerts: a tenant's rules, what they fired, and the delivery outbox.
-- fired_alerts' unique key (tenant, rule, condition, window start) is what
-- makes an alert fire once however many ingest processes or scheduled
-- runs see the same events: every writer inserts with ON CONFLICT DO
-- NOTHING and only the winner's row goes to the outbox. alert_seen is the
-- memory of servers and tools already seen (the new_server and new_tool
-- rules), written by every ingest whether or not a rule exists, so a rule
-- added later fires only for what is really new.
-- The webhook secret is stored for signing and never returned by the API.

-- +goose Up
CREATE TABLE alert_rules (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    id         uuid PRIMARY KEY,
    kind       text NOT NULL,
    threshold  double precision NOT NULL DEFAULT 0,
    window_s   integer NOT NULL CHECK (window_s > 0),
    webhook    text NOT NULL,
    secret     text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX alert_rules_tenant ON alert_rules (tenant_id, kind);

CREATE TABLE alert_seen (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    kind      text NOT NULL,
    condition text NOT NULL,
    first_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, kind, condition)
);

CREATE TABLE fired_alerts (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id      uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    kind         text NOT NULL,
    condition    text NOT NULL,
    window_start timestamptz NOT NULL,
    at           timestamptz NOT NULL,
    fired_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    body         jsonb NOT NULL,
    delivered_at timestamptz,
    last_error   text NOT NULL DEFAULT '',
    UNIQUE (tenant_id, rule_id, condition, window_start)
);
CREATE INDEX fired_alerts_page ON fired_alerts (tenant_id, id DESC);

CREATE TABLE alert_outbox (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    alert_id  bigint PRIMARY KEY REFERENCES fired_alerts (id) ON DELETE CASCADE,
    attempts  integer NOT NULL DEFAULT 0,
    next_at   timestamptz NOT NULL
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_at);

-- Row-level security as on every tenant table. The admin role may list
-- which tenants have window rules or alerts due (the scheduled run then
-- works on each as the app role); it sees no secret column it could use
-- without SELECT on it.
-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['alert_rules', 'alert_seen', 'fired_alerts', 'alert_outbox'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I TO kilometers_app
            USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)$p$, t);
        EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', t);
    END LOOP;
END $$;
-- +goose StatementEnd
CREATE POLICY admin_list ON alert_rules TO kilometers_admin USING (true);
CREATE POLICY admin_list ON alert_outbox TO kilometers_admin USING (true);
GRANT SELECT, INSERT, DELETE ON alert_rules TO kilometers_app;
GRANT SELECT, INSERT, DELETE ON alert_seen TO kilometers_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON fired_alerts TO kilometers_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON alert_outbox TO kilometers_app;
GRANT SELECT (tenant_id, kind) ON alert_rules TO kilometers_admin;
GRANT SELECT (tenant_id, next_at) ON alert_outbox TO kilometers_admin;

-- +goose Down
DROP TABLE alert_outbox;
DROP TABLE fired_alerts;
DROP TABLE alert_seen;
DROP TABLE alert_rules;
