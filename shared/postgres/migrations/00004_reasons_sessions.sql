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

-- +goose Down
DROP INDEX events_session_counts;
DROP INDEX sessions_started;
DROP INDEX events_failed_ts;
ALTER TABLE sessions DROP COLUMN warnings;
ALTER TABLE events DROP COLUMN retry, DROP COLUMN resource_uri, DROP COLUMN prompt, DROP COLUMN error_message;
