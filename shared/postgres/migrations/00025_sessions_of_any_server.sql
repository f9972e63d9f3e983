-- The sessions of any server, per bucket: session_minute and session_hour
-- also hold each (bucket, session) under the server '', which stats counts
-- when it has no server filter, instead of making the sessions of every
-- server's rows distinct (a session that used five servers had five rows
-- per bucket). Events of a server named '' share those rows, which is
-- right: '' as a filter means none. Ingest writes them from now on; this
-- fills them in for the rows stored before.

-- +goose Up
INSERT INTO session_minute (tenant_id, bucket, server, session_id)
SELECT DISTINCT tenant_id, bucket, '', session_id FROM session_minute
ON CONFLICT DO NOTHING;
INSERT INTO session_hour (tenant_id, bucket, server, session_id)
SELECT DISTINCT tenant_id, bucket, '', session_id FROM session_hour
ON CONFLICT DO NOTHING;

-- +goose Down
-- The rows stay: a reader that makes every server's sessions distinct
-- counts the same with them, and rows of events whose server is '' cannot
-- be told from them.
SELECT 1;
