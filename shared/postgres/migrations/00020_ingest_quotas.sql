-- Per-tenant ingest quotas (docs/api.md, "Ingest quotas"): the tenant
-- settings ingest_events_per_minute and ingest_events_per_day, enforced
-- across every API process by one row per tenant holding its current fixed
-- minute and UTC day and the events stored in each. Ingest calls
-- km_ingest_gate before it writes (one cheap statement in the batch's
-- pipeline) and adds the events it actually inserted, duplicates excluded,
-- in the insert statement itself. A row per tenant, not per window, so
-- nothing has to clean old windows up; fillfactor leaves room for HOT
-- updates. Logged: a crash must not forgive a day's quota.

-- +goose Up
CREATE TABLE ingest_windows (
    tenant_id     uuid PRIMARY KEY,
    minute_start  timestamptz NOT NULL,
    minute_events bigint NOT NULL,
    day_start     timestamptz NOT NULL,
    day_events    bigint NOT NULL
) WITH (fillfactor = 50);
ALTER TABLE ingest_windows ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_windows FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ingest_windows TO kilometers_app
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
REVOKE ALL ON ingest_windows FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON ingest_windows TO kilometers_app;

-- The gate reads the tenant's own limits: the app role may see those
-- columns of its own row (the tenant_isolation policy on tenants), nothing
-- else of the table.
GRANT SELECT (id, ingest_events_per_minute, ingest_events_per_day) ON tenants TO kilometers_app;

-- km_ingest_gate refuses a batch, with SQLSTATE KM429, when the tenant's
-- current minute or day already holds its limit of events (0: no limit).
-- DETAIL carries the seconds until that window ends, which the API sends
-- as Retry-After. A batch is admitted while its windows are below their
-- limits and then stored whole, so a window ends at most one batch per
-- concurrent request over its limit; a refused batch writes nothing.
-- +goose StatementBegin
CREATE FUNCTION km_ingest_gate(tenant uuid, at timestamptz) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    per_minute bigint;
    per_day    bigint;
    in_minute  bigint;
    in_day     bigint;
    minute     timestamptz := date_trunc('minute', at, 'UTC');
    day        timestamptz := date_trunc('day', at, 'UTC');
BEGIN
    SELECT t.ingest_events_per_minute, t.ingest_events_per_day,
           CASE WHEN w.minute_start >= minute THEN w.minute_events ELSE 0 END,
           CASE WHEN w.day_start >= day THEN w.day_events ELSE 0 END
      INTO per_minute, per_day, in_minute, in_day
      FROM tenants t LEFT JOIN ingest_windows w ON w.tenant_id = t.id
     WHERE t.id = tenant;
    IF per_day > 0 AND in_day >= per_day THEN
        RAISE EXCEPTION USING ERRCODE = 'KM429',
            MESSAGE = format('this tenant stored its %s events for today (the ingest_events_per_day setting); the quota resets at %s', per_day, to_char((day + interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
            DETAIL = ceil(extract(epoch FROM day + interval '1 day' - at))::bigint::text;
    END IF;
    IF per_minute > 0 AND in_minute >= per_minute THEN
        RAISE EXCEPTION USING ERRCODE = 'KM429',
            MESSAGE = format('this tenant stored its %s events for this minute (the ingest_events_per_minute setting)', per_minute),
            DETAIL = ceil(extract(epoch FROM minute + interval '1 minute' - at))::bigint::text;
    END IF;
END
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION km_ingest_gate(uuid, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION km_ingest_gate(uuid, timestamptz) TO kilometers_app;

-- +goose Down
DROP FUNCTION km_ingest_gate(uuid, timestamptz);
REVOKE SELECT (id, ingest_events_per_minute, ingest_events_per_day) ON tenants FROM kilometers_app;
DROP TABLE ingest_windows;
