-- Tool alerts rolled up by ingest: per bucket (minute and hour), server,
-- tool and kind, the events whose risk reasons name that tool as poisoned
-- or changed (stats.ToolAlertCounts), with their highest score and how
-- many were high and medium. Stats used to read every scored tools/list
-- reply of its window from events for riskiest_tools: at 10M events a day,
-- 10,000 rows from the heap (its bound), where these tables hold a few
-- rows an hour. Partitioned and kept like the other rollups.
--
-- The rows are backfilled from the scored tools/list replies stored now
-- (the ones stats read), with km_tool_alerts: the SQL of
-- analysis.ToolAlert, held to it by TestToolAlertsSQLIsAnalysis.

-- +goose Up
CREATE TABLE tool_alert_minute (
    tenant_id uuid NOT NULL,
    bucket    timestamptz NOT NULL,
    server    text NOT NULL,
    tool      text NOT NULL,
    kind      text NOT NULL,
    max_score integer NOT NULL,
    high      bigint NOT NULL,
    medium    bigint NOT NULL,
    PRIMARY KEY (tenant_id, bucket, server, tool, kind)
) PARTITION BY RANGE (bucket);
CREATE TABLE tool_alert_hour (LIKE tool_alert_minute INCLUDING ALL) PARTITION BY RANGE (bucket);

-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tool_alert_minute', 'tool_alert_hour'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I TO kilometers_app
            USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)$p$, t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO kilometers_app', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

INSERT INTO km_partitioning VALUES
    ('tool_alert_minute', 'bucket', 'month', '2 months', 'rollup_retention_days', 400,
        'fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05'),
    ('tool_alert_hour', 'bucket', 'month', '2 months', 'rollup_retention_days', 400,
        'fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05');

-- km_tool_alerts is analysis.ToolAlert for each of reasons: the kind and
-- the tool of every reason that names a poisoned or changed tool.
-- +goose StatementBegin
CREATE FUNCTION km_tool_alerts(reasons text[]) RETURNS TABLE (kind text, tool text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN starts_with(r, 'tool_poisoning:') THEN 'tool_poisoning' ELSE 'definition_changed' END,
           CASE WHEN starts_with(r, 'tool_poisoning:') THEN substr(r, 16) ELSE substr(r, 20) END
    FROM unnest(reasons) AS r
    WHERE (starts_with(r, 'tool_poisoning:') AND length(r) > 15)
       OR (starts_with(r, 'definition_changed:') AND length(r) > 19)
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION km_tool_alerts(text[]) FROM PUBLIC;

-- The partitions the backfill needs, as the maintenance job makes them:
-- at the largest retentions any tenant has (read as the admin role, which
-- sees every tenant), so no other table loses a partition a tenant keeps.
-- +goose StatementBegin
DO $$
DECLARE
    event_days  integer;
    rollup_days integer;
BEGIN
    SET LOCAL ROLE kilometers_admin;
    SELECT max(event_retention_days), max(rollup_retention_days) INTO event_days, rollup_days FROM tenants;
    RESET ROLE;
    PERFORM count(*) FROM km_maintain(now(), event_days, rollup_days);
    RESET lock_timeout; -- km_maintain's, for its own statements only
END
$$;
-- +goose StatementEnd

INSERT INTO tool_alert_minute (tenant_id, bucket, server, tool, kind, max_score, high, medium)
SELECT e.tenant_id, date_trunc('minute', e.ts, 'UTC'), e.server, a.tool, a.kind, max(e.risk_score),
    count(*) FILTER (WHERE e.risk_rank = 2), count(*) FILTER (WHERE e.risk_rank = 1)
FROM events AS e CROSS JOIN LATERAL km_tool_alerts(e.risk_reasons) AS a
WHERE e.method = 'tools/list' AND e.risk_rank > 0 AND e.risk_score IS NOT NULL
    -- Older than every retention: no partition (and no read) for it.
    AND e.ts >= (SELECT min(lo) FROM km_partition_bounds('tool_alert_minute'))
GROUP BY 1, 2, 3, 4, 5;
INSERT INTO tool_alert_hour (tenant_id, bucket, server, tool, kind, max_score, high, medium)
SELECT tenant_id, date_trunc('hour', bucket, 'UTC'), server, tool, kind, max(max_score), sum(high), sum(medium)
FROM tool_alert_minute GROUP BY 1, 2, 3, 4, 5;

-- Stats no longer reads the scored tools/list replies from events.
DROP INDEX events_tool_lists;

-- +goose Down
CREATE INDEX events_tool_lists ON events (tenant_id, ts) WHERE method = 'tools/list' AND risk_rank > 0;
DROP FUNCTION km_tool_alerts(text[]);
DELETE FROM km_partitioning WHERE parent IN ('tool_alert_minute', 'tool_alert_hour');
DROP TABLE tool_alert_hour, tool_alert_minute;
