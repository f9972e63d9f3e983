-- What a failed reply said, what a prompts/get or resources/read named,
-- which requests repeat one answered input_required, and what a session's
-- monitor worked around (see docs/api.md), plus the indexes of the failed
-- filter, the session list and its per-session counts.

-- +goose Up
ALTER TABLE events
    ADD COLUMN error_message text NOT NULL DEFAULT '',
    ADD COLUMN prompt text NOT NULL DEFAULT '',
    ADD COLUMN resource_uri text NOT NULL DEFAULT '',
    ADD COLUMN retry boolean NOT NULL DEFAULT false;
ALTER TABLE sessions ADD COLUMN warnings text[];

-- Activity with failed=true walks only the failures, newest first.
CREATE INDEX events_failed_ts ON events (tenant_id, ts DESC, id DESC) WHERE failed;
-- GET /api/sessions pages newest start first...
CREATE INDEX sessions_started ON sessions (tenant_id, started_at DESC, id DESC);
-- ...and counts each session's tool calls and failures from this index
-- alone (a request is never failed, so NOT failed means a tool call that
-- is not a retry: stats.NewCall).
CREATE INDEX events_session_counts ON events (tenant_id, session_id, failed)
    WHERE failed OR (kind = 'request' AND method = 'tools/call' AND NOT retry);

-- Percentiles are exact for small samples (stats.Sample): a rollup row
-- keeps its latencies as they are while it has at most stats.ExactSample of
-- them (NULL beyond, or for rows older than this column), and the range of
-- all of them, so histogram answers stay within the data.
ALTER TABLE rollup_minute
    ADD COLUMN samples double precision[],
    ADD COLUMN min_ms double precision,
    ADD COLUMN max_ms double precision;
ALTER TABLE rollup_hour
    ADD COLUMN samples double precision[],
    ADD COLUMN min_ms double precision,
    ADD COLUMN max_ms double precision;
-- Concatenates arrays, for the samples of the rows a batch adds to.
CREATE AGGREGATE km_array_cat(double precision[]) (SFUNC = array_cat, STYPE = double precision[], INITCOND = '{}');
GRANT EXECUTE ON FUNCTION km_array_cat(double precision[]) TO kilometers_app;

-- +goose Down
DROP AGGREGATE km_array_cat(double precision[]);
ALTER TABLE rollup_hour DROP COLUMN samples, DROP COLUMN min_ms, DROP COLUMN max_ms;
ALTER TABLE rollup_minute DROP COLUMN samples, DROP COLUMN min_ms, DROP COLUMN max_ms;
DROP INDEX events_session_counts;
DROP INDEX sessions_started;
DROP INDEX events_failed_ts;
ALTER TABLE sessions DROP COLUMN warnings;
ALTER TABLE events DROP COLUMN retry, DROP COLUMN resource_uri, DROP COLUMN prompt, DROP COLUMN error_message;
