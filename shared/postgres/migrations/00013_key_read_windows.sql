-- Per-key read rate limits: one row per key holding its current fixed
-- one-minute window and the requests counted in it, upserted by every read
-- (INSERT ... ON CONFLICT), so every Lambda instance shares one count. The
-- table is UNLOGGED: a crash may reset the counts, which only forgives one
-- minute, and the writes skip the WAL. A row per key, not per window, so
-- nothing has to clean old windows up; fillfactor leaves room for HOT
-- updates.

-- +goose Up
CREATE UNLOGGED TABLE key_read_windows (
    key_id       uuid PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
    window_start timestamptz NOT NULL,
    requests     integer NOT NULL
) WITH (fillfactor = 50);
ALTER TABLE key_read_windows ENABLE ROW LEVEL SECURITY;
ALTER TABLE key_read_windows FORCE ROW LEVEL SECURITY;
CREATE POLICY admin_all ON key_read_windows TO kilometers_admin USING (true) WITH CHECK (true);
REVOKE ALL ON key_read_windows FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON key_read_windows TO kilometers_admin;

-- +goose Down
DROP TABLE key_read_windows;
