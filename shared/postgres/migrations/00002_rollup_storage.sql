-- Rollup rows are updated by every batch that touches their bucket, and an
-- hourly row's packed histogram grows to hundreds of entries. Measured by
-- the benchmark (shared/postgres/internal/bench), rewriting those rows was
-- the largest single cost of ingest after the events themselves:
--  * hist is stored uncompressed (EXTERNAL): each update otherwise
--    decompresses and recompresses the whole array with pglz, and stats
--    reads it back without decompressing;
--  * pages keep room for new row versions (fillfactor), so an update stays
--    on its page as a HOT update, with no new index entry, and the page
--    prunes the old versions itself between vacuums;
--  * autovacuum visits these small, update-heavy tables early.

-- +goose Up
ALTER TABLE rollup_minute ALTER COLUMN hist SET STORAGE EXTERNAL;
ALTER TABLE rollup_hour ALTER COLUMN hist SET STORAGE EXTERNAL;
ALTER TABLE rollup_minute SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE rollup_hour SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE series_minute SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);

-- +goose Down
ALTER TABLE series_minute RESET (fillfactor, autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor);
ALTER TABLE rollup_hour RESET (fillfactor, autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor);
ALTER TABLE rollup_minute RESET (fillfactor, autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor);
ALTER TABLE rollup_hour ALTER COLUMN hist SET STORAGE EXTENDED;
ALTER TABLE rollup_minute ALTER COLUMN hist SET STORAGE EXTENDED;
