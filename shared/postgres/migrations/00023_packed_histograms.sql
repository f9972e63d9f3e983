-- Rollup histograms and samples as packed bytes.
--
-- hist and hist_tail held bigint[] entries ((bucket << 40) | count) and
-- samples double precision[]. Stats reads every entry of every row in its
-- window (about 700,000 entries for a day of a busy tenant), and sending
-- an array costs the server a call of the element's send function per
-- entry: most of the time of a stats answer. As bytea, the same entries
-- (each one 8-byte big-endian int8send or float8send, in order) go out
-- as they are stored. The columns are stored uncompressed (EXTERNAL):
-- reading them must not cost a decompression either. The cost moves to the
-- rare merge of a tail into hist (km_hist_merge), which now decodes bytes.
--
-- Rewrites the rollup tables (not events): see docs/deploy.md.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION km_pack_int8(a bigint[]) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(int8send(x), ''::bytea ORDER BY o), ''::bytea) FROM unnest(a) WITH ORDINALITY AS u(x, o)
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION km_pack_float8(a double precision[]) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(float8send(x), ''::bytea ORDER BY o), ''::bytea) FROM unnest(a) WITH ORDINALITY AS u(x, o)
$$;
-- +goose StatementEnd

ALTER TABLE rollup_minute
    ALTER COLUMN hist_tail DROP DEFAULT,
    ALTER COLUMN hist TYPE bytea USING km_pack_int8(hist),
    ALTER COLUMN hist_tail TYPE bytea USING km_pack_int8(hist_tail),
    ALTER COLUMN samples TYPE bytea USING km_pack_float8(samples),
    ALTER COLUMN hist_tail SET DEFAULT ''::bytea,
    ALTER COLUMN hist SET STORAGE EXTERNAL,
    ALTER COLUMN hist_tail SET STORAGE EXTERNAL,
    ALTER COLUMN samples SET STORAGE EXTERNAL;
ALTER TABLE rollup_hour
    ALTER COLUMN hist_tail DROP DEFAULT,
    ALTER COLUMN hist TYPE bytea USING km_pack_int8(hist),
    ALTER COLUMN hist_tail TYPE bytea USING km_pack_int8(hist_tail),
    ALTER COLUMN samples TYPE bytea USING km_pack_float8(samples),
    ALTER COLUMN hist_tail SET DEFAULT ''::bytea,
    ALTER COLUMN hist SET STORAGE EXTERNAL,
    ALTER COLUMN hist_tail SET STORAGE EXTERNAL,
    ALTER COLUMN samples SET STORAGE EXTERNAL;

-- km_hist_merge merges two packed histograms into one entry per bucket,
-- in bucket order. PL/pgSQL so that the concatenation is detoasted once
-- into a variable; SQL inlines it into every substring instead.
-- +goose StatementBegin
CREATE FUNCTION km_hist_merge(a bytea, b bytea) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    c bytea := a || b;
    r bytea;
BEGIN
    SELECT coalesce(string_agg(int8send((k << 40) | n), ''::bytea ORDER BY k), ''::bytea) INTO r
    FROM (SELECT x >> 40 AS k, sum(x & 1099511627775)::bigint AS n
          FROM (SELECT ('x' || encode(substring(c FROM i + 1 FOR 8), 'hex'))::bit(64)::bigint AS x
                FROM generate_series(0, length(c) - 8, 8) AS i) AS e
          GROUP BY 1) AS t;
    RETURN r;
END
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION km_hist_merge(bytea, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION km_hist_merge(bytea, bytea) TO kilometers_app;
REVOKE EXECUTE ON FUNCTION km_pack_int8(bigint[]), km_pack_float8(double precision[]) FROM PUBLIC;
DROP FUNCTION km_hist_merge(bigint[], bigint[]);
DROP AGGREGATE km_array_cat(double precision[]);

-- +goose Down
-- The samples are not unpacked: no SQL cast reads a float8 from bytes, and
-- a NULL samples column is a valid row (percentiles then come from the
-- histogram, within 1%).
-- +goose StatementBegin
CREATE FUNCTION km_unpack_int8(b bytea) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(('x' || encode(substring(b FROM i + 1 FOR 8), 'hex'))::bit(64)::bigint ORDER BY i), '{}')
    FROM generate_series(0, length(b) - 8, 8) AS i
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION km_hist_merge(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg((k << 40) | n ORDER BY k), '{}')
    FROM (SELECT x >> 40 AS k, sum(x & 1099511627775)::bigint AS n
          FROM unnest(a || b) AS x GROUP BY 1) AS t
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION km_hist_merge(bigint[], bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION km_hist_merge(bigint[], bigint[]) TO kilometers_app;
CREATE AGGREGATE km_array_cat(double precision[]) (SFUNC = array_cat, STYPE = double precision[], INITCOND = '{}');
GRANT EXECUTE ON FUNCTION km_array_cat(double precision[]) TO kilometers_app;
ALTER TABLE rollup_minute
    ALTER COLUMN hist_tail DROP DEFAULT,
    ALTER COLUMN hist TYPE bigint[] USING km_unpack_int8(hist),
    ALTER COLUMN hist_tail TYPE bigint[] USING km_unpack_int8(hist_tail),
    ALTER COLUMN samples TYPE double precision[] USING NULL,
    ALTER COLUMN hist_tail SET DEFAULT '{}',
    ALTER COLUMN hist SET STORAGE EXTENDED,
    ALTER COLUMN hist_tail SET STORAGE EXTENDED,
    ALTER COLUMN samples SET STORAGE EXTENDED;
ALTER TABLE rollup_hour
    ALTER COLUMN hist_tail DROP DEFAULT,
    ALTER COLUMN hist TYPE bigint[] USING km_unpack_int8(hist),
    ALTER COLUMN hist_tail TYPE bigint[] USING km_unpack_int8(hist_tail),
    ALTER COLUMN samples TYPE double precision[] USING NULL,
    ALTER COLUMN hist_tail SET DEFAULT '{}',
    ALTER COLUMN hist SET STORAGE EXTENDED,
    ALTER COLUMN hist_tail SET STORAGE EXTENDED,
    ALTER COLUMN samples SET STORAGE EXTENDED;
DROP FUNCTION km_hist_merge(bytea, bytea);
DROP FUNCTION km_unpack_int8(bytea);
DROP FUNCTION km_pack_int8(bigint[]);
DROP FUNCTION km_pack_float8(double precision[]);
