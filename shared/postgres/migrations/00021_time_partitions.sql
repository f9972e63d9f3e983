-- Time partitions and retention (docs/deploy.md, "Data lifecycle").
--
-- events is range-partitioned by ts in UTC days; the rollups
-- (rollup_minute, rollup_hour, series_minute, session_minute,
-- session_hour) by bucket in UTC months. Partitions are shared by every
-- tenant. km_maintain (below) creates them ahead of time and drops a
-- partition once it is older than every tenant's retention, so retention
-- never deletes row by row; until then the reads hide what is older than
-- the tenant's own retention (km_event_horizon, km_rollup_horizon).
--
-- A partitioned table's unique index must hold the partition key, so
-- events are unique on (tenant_id, id, ts): an event sent again carries
-- the ts it was recorded with, and stays a duplicate.
--
-- The migration keeps every row without copying one: each table is renamed
-- to <table>_archive and attached as the partition of everything before
-- the first day (or month) after its newest row; partitions follow from
-- there. An archive is dropped like any partition once every tenant's
-- retention has passed its end. The cost is one scan of each table to
-- check the archive's bound, and for events the build of the new unique
-- index (see docs/deploy.md for the time per million rows).

-- +goose Up

-- Which tables are partitioned, by what step, how far ahead, and which
-- tenant setting (with its default, for a database without tenants) keeps
-- them. options are the storage parameters of each new partition (a
-- partitioned table has none of its own).
CREATE TABLE km_partitioning (
    parent       text PRIMARY KEY,
    key          text NOT NULL,
    step         text NOT NULL CHECK (step IN ('day', 'month')),
    ahead        interval NOT NULL,
    retention    text NOT NULL CHECK (retention IN ('event_retention_days', 'rollup_retention_days')),
    default_days integer NOT NULL,
    options      text NOT NULL DEFAULT ''
);
REVOKE ALL ON km_partitioning FROM PUBLIC;
INSERT INTO km_partitioning VALUES
    ('events', 'ts', 'day', '7 days', 'event_retention_days', 30, ''),
    ('rollup_minute', 'bucket', 'month', '2 months', 'rollup_retention_days', 400,
        'fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05'),
    ('rollup_hour', 'bucket', 'month', '2 months', 'rollup_retention_days', 400,
        'fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05'),
    ('series_minute', 'bucket', 'month', '2 months', 'rollup_retention_days', 400,
        'fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05'),
    ('session_minute', 'bucket', 'month', '2 months', 'rollup_retention_days', 400, ''),
    ('session_hour', 'bucket', 'month', '2 months', 'rollup_retention_days', 400, '');

-- km_partition_bounds lists a parent's partitions with their bounds (NULL
-- for MINVALUE), read from the catalog.
-- +goose StatementBegin
CREATE FUNCTION km_partition_bounds(parent text)
RETURNS TABLE (partition text, lo timestamptz, hi timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.relname::text,
           CASE WHEN m[1] = 'MINVALUE' THEN NULL ELSE trim(both '''' from m[1])::timestamptz END,
           trim(both '''' from m[2])::timestamptz
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
        'FROM \(([^)]*)\) TO \(([^)]*)\)') AS m
    WHERE i.inhparent = parent::regclass
$$;
-- +goose StatementEnd

-- km_create_partition creates the partition of parent for [lo, hi).
-- +goose StatementBegin
CREATE FUNCTION km_create_partition(parent text, lo timestamptz, hi timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    p    km_partitioning;
    name text;
BEGIN
    SELECT * INTO STRICT p FROM km_partitioning WHERE km_partitioning.parent = km_create_partition.parent;
    name := parent || '_p' || to_char(lo AT TIME ZONE 'UTC', CASE p.step WHEN 'day' THEN 'YYYYMMDD' ELSE 'YYYYMM' END);
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L) %s',
        name, parent, lo, hi, CASE WHEN p.options <> '' THEN 'WITH (' || p.options || ')' ELSE '' END);
    -- Reached only through the parent, whose row-level security applies:
    -- no role holds a grant on a partition.
    EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', name);
    RETURN name;
END
$$;
-- +goose StatementEnd

-- km_maintain creates every partition from the last one up to its table's
-- ahead interval past at (and, without an archive, back to the longest
-- retention), and drops every partition whose end is older than every
-- tenant's retention for its table: event_days and rollup_days are the
-- largest retentions of any tenant (the caller reads them as the admin
-- role, since the owner running this is under the tenants table's
-- row-level security), NULL for the defaults. It returns one row per
-- partition created or dropped. Two runs at once queue on an advisory lock, and the
-- second finds nothing left to do. Making or dropping a partition takes
-- an exclusive lock on its parent, and while a run waits for one (behind a
-- long query) every request on that table queues behind the run: a 1 s
-- lock_timeout bounds that stall; a run that times out changes nothing
-- and the next run does the work.
-- +goose StatementBegin
CREATE FUNCTION km_maintain(at timestamptz, event_days integer, rollup_days integer) RETURNS TABLE (action text, partition text)
LANGUAGE plpgsql AS $$
DECLARE
    p       km_partitioning;
    step    interval;
    days    integer;
    horizon timestamptz;
    b       record;
    lo      timestamptz;
    oldest  timestamptz;
    has_min boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('kilometers maintenance'));
    PERFORM set_config('lock_timeout', '1s', true);
    FOR p IN SELECT * FROM km_partitioning ORDER BY parent LOOP
        step := CASE p.step WHEN 'day' THEN interval '1 day' ELSE interval '1 month' END;
        days := coalesce(CASE p.retention WHEN 'event_retention_days' THEN event_days ELSE rollup_days END, p.default_days);
        horizon := at - days * interval '1 day';
        -- Retention: whole partitions whose every row is past every
        -- tenant's retention.
        FOR b IN SELECT * FROM km_partition_bounds(p.parent) AS x WHERE x.hi <= horizon ORDER BY x.hi LOOP
            EXECUTE format('DROP TABLE %I', b.partition);
            action := 'dropped'; partition := b.partition; RETURN NEXT;
        END LOOP;
        -- Ahead: from the end of the newest partition.
        SELECT max(x.hi), min(x.lo), bool_or(x.lo IS NULL) INTO lo, oldest, has_min
            FROM km_partition_bounds(p.parent) AS x;
        IF lo IS NULL THEN
            -- At most 31 steps back one by one; the back fill below covers
            -- a longer retention with one partition.
            lo := greatest(date_trunc(p.step, horizon, 'UTC'), date_trunc(p.step, at, 'UTC') - 31 * step);
            oldest := lo;
        END IF;
        WHILE lo < at + p.ahead LOOP
            action := 'created'; partition := km_create_partition(p.parent, lo, lo + step); RETURN NEXT;
            lo := lo + step;
        END LOOP;
        -- Back: a retention longer than the oldest partition reaches (raised
        -- since, or past the 31 steps above) gets one partition for the
        -- whole gap, not one per day for up to ten years; it goes like any
        -- other once every retention has passed its end.
        IF NOT coalesce(has_min, false) AND oldest > date_trunc(p.step, horizon, 'UTC') THEN
            action := 'created'; partition := km_create_partition(p.parent, date_trunc(p.step, horizon, 'UTC'), oldest); RETURN NEXT;
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION km_maintain(timestamptz, integer, integer), km_create_partition(text, timestamptz, timestamptz),
    km_partition_bounds(text) FROM PUBLIC;

-- Converts each table of km_partitioning: the table becomes the archive
-- partition (or, when empty, is replaced), under a partitioned parent of
-- the same name with the same columns, keys, indexes, security and grants.
-- +goose StatementBegin
DO $$
DECLARE
    p       km_partitioning;
    arch    text;
    defs    text[];
    def     text;
    idx     record;
    newest  timestamptz;
    pk      text;
    upto    timestamptz;
BEGIN
    FOR p IN SELECT * FROM km_partitioning ORDER BY parent LOOP
        arch := p.parent || '_archive';
        -- The secondary indexes, to be made again on the parent.
        SELECT coalesce(array_agg(pg_get_indexdef(i.indexrelid) ORDER BY i.indexrelid), '{}') INTO defs
            FROM pg_index i WHERE i.indrelid = p.parent::regclass AND NOT i.indisprimary;
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) INTO pk
            FROM pg_index i
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE i.indrelid = p.parent::regclass AND i.indisprimary;
        IF p.parent = 'events' THEN
            pk := pk || ', ts';
        END IF;
        EXECUTE format('ALTER TABLE %I RENAME TO %I', p.parent, arch);
        -- Reached only through the parent, whose row-level security
        -- applies; the owner reads it whole (under FORCE, a non-superuser
        -- owner would see no row, and take it for empty).
        EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', arch);
        EXECUTE format('ALTER TABLE %I DISABLE ROW LEVEL SECURITY', arch);
        EXECUTE format('DROP POLICY tenant_isolation ON %I', arch);
        FOR idx IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE i.indrelid = arch::regclass LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', idx.relname, left(idx.relname, 54) || '_archive');
        END LOOP;
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING GENERATED) PARTITION BY RANGE (%I)',
            p.parent, arch, p.key);
        EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (%s)', p.parent, pk);
        FOREACH def IN ARRAY defs LOOP
            EXECUTE def;
        END LOOP;
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', p.parent);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', p.parent);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I TO kilometers_app
            USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)$p$, p.parent);
        -- The grants the table had move to the parent; the archive keeps none.
        FOR idx IN SELECT grantee, string_agg(privilege_type, ', ') AS privs
                FROM information_schema.role_table_grants
                WHERE table_schema = current_schema() AND table_name = arch
                  AND grantee IN ('kilometers_app', 'kilometers_admin') GROUP BY grantee LOOP
            EXECUTE format('GRANT %s ON %I TO %I', idx.privs, p.parent, idx.grantee);
            EXECUTE format('REVOKE ALL ON %I FROM %I', arch, idx.grantee);
        END LOOP;

        EXECUTE format('SELECT max(%I) FROM %I', p.key, arch) INTO newest;
        IF newest IS NULL THEN
            EXECUTE format('DROP TABLE %I', arch);
            CONTINUE; -- km_maintain below makes its partitions
        END IF;
        upto := date_trunc(p.step, newest, 'UTC') + CASE p.step WHEN 'day' THEN interval '1 day' ELSE interval '1 month' END;
        IF p.parent = 'events' THEN
            -- The archive's own unique index on (tenant_id, id) would
            -- refuse what the parent's (tenant_id, id, ts) admits.
            EXECUTE format('CREATE UNIQUE INDEX events_pkey_archive_ts ON %I (%s)', arch, pk);
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT events_pkey_archive', arch);
        END IF;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)', p.parent, arch, upto);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- The reads hide what is older than the tenant's own retention (the
-- partitions holding it go once every tenant's retention has passed them).
-- The app role may read these columns of its own tenant row.
GRANT SELECT (event_retention_days, rollup_retention_days) ON tenants TO kilometers_app;

-- +goose StatementBegin
CREATE FUNCTION km_event_horizon(tenant uuid) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT statement_timestamp() - event_retention_days * interval '1 day' FROM tenants WHERE id = tenant), '-infinity')
$$;
CREATE FUNCTION km_rollup_horizon(tenant uuid) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT statement_timestamp() - rollup_retention_days * interval '1 day' FROM tenants WHERE id = tenant), '-infinity')
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION km_event_horizon(uuid), km_rollup_horizon(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION km_event_horizon(uuid), km_rollup_horizon(uuid) TO kilometers_app;

SELECT count(*) FROM km_maintain(now(), NULL, NULL);

-- +goose Down
-- Partitioned tables cannot be turned back in place, and every row would
-- have to be copied: restore from a backup taken before this migration.
SELECT 1/0 AS "00021 cannot be rolled back; restore a backup";
