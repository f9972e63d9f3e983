-- A rollup row's histogram becomes hist (compacted, one entry per bucket,
-- rewritten rarely) plus hist_tail (what recent batches appended, short);
-- see insertEventsFrom in ingest.go. Readers add both.

-- +goose Up
ALTER TABLE rollup_minute ADD COLUMN hist_tail bigint[] NOT NULL DEFAULT '{}';
ALTER TABLE rollup_hour ADD COLUMN hist_tail bigint[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE rollup_hour DROP COLUMN hist_tail;
ALTER TABLE rollup_minute DROP COLUMN hist_tail;
