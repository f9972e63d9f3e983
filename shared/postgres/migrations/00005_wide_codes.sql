-- Exit codes and JSON-RPC error codes are stored as recorded. A Windows
-- process that crashes exits with an NTSTATUS such as 0xC0000005
-- (3221225477), above integer's range, and JSON-RPC lets a server pick any
-- integer for an error code; both columns were integer, so such a report
-- failed its whole batch. Widening rewrites events once; error_code is
-- written by ingest and read by activity only.

-- +goose Up
ALTER TABLE sessions ALTER COLUMN exit_code TYPE bigint;
ALTER TABLE events ALTER COLUMN error_code TYPE bigint;

-- +goose Down
ALTER TABLE events ALTER COLUMN error_code TYPE integer USING greatest(least(error_code, 2147483647), -2147483648)::integer;
ALTER TABLE sessions ALTER COLUMN exit_code TYPE integer USING greatest(least(exit_code, 2147483647), -2147483648)::integer;
