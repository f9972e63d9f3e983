-- Schema of the Kilometers backend. Every tenant table carries tenant_id and
-- a row-level security policy keyed on the per-transaction setting
-- app.tenant_id, and the application works as role kilometers_app (no
-- BYPASSRLS) so the database itself keeps tenants apart. Admin and key
-- lookups work as kilometers_admin, which sees tenants and api_keys only.

-- +goose Up

-- Roles are cluster-wide, so two databases migrating at once may race to
-- create them: the loser's error is expected and ignored.
-- +goose StatementBegin
DO $$
BEGIN
    BEGIN
        CREATE ROLE kilometers_app NOLOGIN NOBYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        CREATE ROLE kilometers_admin NOLOGIN NOBYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    -- A non-superuser owner (RDS) must be a member to SET ROLE; a superuser
    -- needs nothing, and may not be able to grant to itself.
    BEGIN
        EXECUTE format('GRANT kilometers_app, kilometers_admin TO %I', current_user);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
END
$$;
-- +goose StatementEnd

CREATE TABLE tenants (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    prefix       text NOT NULL,
    -- sha256 of the whole key: keys are 256-bit random, so a fast hash
    -- cannot be brute-forced and lookups stay one index probe.
    hash         bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE sessions (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    id               uuid NOT NULL,
    server           text NOT NULL DEFAULT '',
    server_name      text NOT NULL DEFAULT '',
    server_version   text NOT NULL DEFAULT '',
    client_name      text NOT NULL DEFAULT '',
    client_version   text NOT NULL DEFAULT '',
    protocol_version text NOT NULL DEFAULT '',
    command          text[],
    host             text NOT NULL DEFAULT '',
    started_at       timestamptz NOT NULL,
    ended_at         timestamptz,
    exit_code        integer,
    dropped_events   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
);

-- events, rollups and session buckets carry no foreign key to tenants: the
-- tenant id always comes from Authenticate, and a per-row check would cost
-- ingest throughput for nothing.
CREATE TABLE events (
    tenant_id         uuid NOT NULL,
    id                uuid NOT NULL,
    session_id        uuid NOT NULL,
    seq               bigint NOT NULL,
    ts                timestamptz NOT NULL,
    direction         text NOT NULL,
    kind              text NOT NULL,
    server            text NOT NULL DEFAULT '',
    rpc_id            text NOT NULL DEFAULT '',
    method            text NOT NULL DEFAULT '',
    tool              text NOT NULL DEFAULT '',
    latency_ms        double precision,
    -- stats.Bucket(latency_ms) computed in Go, so SQL never re-derives
    -- histogram buckets; NULL unless the event is a reply with a latency.
    latency_bucket    integer,
    error_code        integer,
    is_error          boolean,
    failed            boolean NOT NULL,
    size              bigint NOT NULL,
    risk_score        integer,
    risk_level        text,
    risk_rank         smallint NOT NULL, -- 0 low, 1 medium, 2 high
    risk_reasons      text[],
    cost_usd          double precision NOT NULL DEFAULT 0,
    tokens            bigint NOT NULL DEFAULT 0,
    payload           jsonb,
    payload_truncated boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, id)
);
-- Activity: newest first by (ts, id), optionally within one filter.
CREATE INDEX events_ts ON events (tenant_id, ts DESC, id DESC);
CREATE INDEX events_session_ts ON events (tenant_id, session_id, ts DESC, id DESC);
-- Other filters (server, method, tool, kind, risk) walk events_ts: every index
-- costs ingest throughput, and these are rarer, narrower views.

-- Rollups: one row per (bucket, server, method, tool) with the counters
-- stats needs. hist packs the latency histogram as (bucket << 40 | count)
-- so a row carries its whole histogram and a stats query reads few rows; a
-- bucket may appear more than once (ingest appends), readers add them up.
CREATE TABLE rollup_minute (
    tenant_id   uuid NOT NULL,
    bucket      timestamptz NOT NULL,
    server      text NOT NULL,
    method      text NOT NULL,
    tool        text NOT NULL,
    events      bigint NOT NULL,
    requests    bigint NOT NULL,
    calls       bigint NOT NULL, -- requests and notifications
    errors      bigint NOT NULL,
    bytes       bigint NOT NULL,
    cost_usd    double precision NOT NULL,
    tokens      bigint NOT NULL,
    risk_medium bigint NOT NULL,
    risk_high   bigint NOT NULL,
    max_score   integer NOT NULL,
    hist        bigint[] NOT NULL,
    PRIMARY KEY (tenant_id, bucket, server, method, tool)
);
CREATE TABLE rollup_hour (LIKE rollup_minute INCLUDING ALL);

-- Events and errors per minute and server: the time series of a window up
-- to a day and a half has minute-sized steps, and this narrow table answers
-- it without reading the wide rollup rows.
CREATE TABLE series_minute (
    tenant_id uuid NOT NULL,
    bucket    timestamptz NOT NULL,
    server    text NOT NULL,
    events    bigint NOT NULL,
    errors    bigint NOT NULL,
    PRIMARY KEY (tenant_id, bucket, server)
);

-- Which sessions had events in a bucket, for distinct session counts.
CREATE TABLE session_minute (
    tenant_id  uuid NOT NULL,
    bucket     timestamptz NOT NULL,
    server     text NOT NULL,
    session_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, bucket, server, session_id)
);
CREATE TABLE session_hour (LIKE session_minute INCLUDING ALL);

-- Merges two packed histograms (see rollup_minute.hist).
-- +goose StatementBegin
CREATE FUNCTION km_hist_merge(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg((k << 40) | n ORDER BY k), '{}')
    FROM (SELECT x >> 40 AS k, sum(x & 1099511627775)::bigint AS n
          FROM unnest(a || b) AS x GROUP BY 1) AS t
$$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sessions', 'events', 'rollup_minute', 'rollup_hour', 'series_minute', 'session_minute', 'session_hour'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I TO kilometers_app
            USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)$p$, t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO kilometers_app', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
-- The admin role manages tenants and keys across tenants; the app role sees
-- only its own tenant's row.
CREATE POLICY admin_all ON tenants TO kilometers_admin USING (true) WITH CHECK (true);
CREATE POLICY admin_all ON api_keys TO kilometers_admin USING (true) WITH CHECK (true);
CREATE POLICY tenant_isolation ON tenants TO kilometers_app
    USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON tenants, api_keys TO kilometers_admin;
GRANT SELECT ON tenants TO kilometers_app;
GRANT EXECUTE ON FUNCTION km_hist_merge(bigint[], bigint[]) TO kilometers_app;

-- +goose Down
DROP TABLE session_hour, session_minute, series_minute, rollup_hour, rollup_minute, events, sessions, api_keys, tenants;
DROP FUNCTION km_hist_merge(bigint[], bigint[]);
