-- What each API key may do: 'ingest' (post events) and 'read' (every data
-- route that is not ingest). Keys made before scopes existed could do
-- everything, so they keep both; so does every key made without a choice.

-- +goose Up
ALTER TABLE api_keys ADD COLUMN scopes text[] NOT NULL DEFAULT '{ingest,read}';
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_known
    CHECK (cardinality(scopes) > 0 AND scopes <@ '{ingest,read}'::text[]);

-- +goose Down
ALTER TABLE api_keys DROP COLUMN scopes;
