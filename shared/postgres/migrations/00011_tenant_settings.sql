-- Per-tenant settings (docs/api.md, "Tenant settings"). The defaults live
-- here, in the column defaults, so existing tenants get them too. 0 for a
-- limit means no limit. Retention and the ingest limits are stored for the
-- data lifecycle and quotas; read_requests_per_minute is enforced per key.

-- +goose Up
ALTER TABLE tenants
    ADD COLUMN event_retention_days     integer NOT NULL DEFAULT 30
        CHECK (event_retention_days BETWEEN 1 AND 3660),
    ADD COLUMN rollup_retention_days    integer NOT NULL DEFAULT 400
        CHECK (rollup_retention_days BETWEEN 1 AND 3660),
    ADD COLUMN ingest_events_per_minute bigint  NOT NULL DEFAULT 100000
        CHECK (ingest_events_per_minute >= 0),
    ADD COLUMN ingest_events_per_day    bigint  NOT NULL DEFAULT 10000000
        CHECK (ingest_events_per_day >= 0),
    ADD COLUMN read_requests_per_minute integer NOT NULL DEFAULT 600
        CHECK (read_requests_per_minute >= 0);

-- +goose Down
ALTER TABLE tenants
    DROP COLUMN event_retention_days,
    DROP COLUMN rollup_retention_days,
    DROP COLUMN ingest_events_per_minute,
    DROP COLUMN ingest_events_per_day,
    DROP COLUMN read_requests_per_minute;
