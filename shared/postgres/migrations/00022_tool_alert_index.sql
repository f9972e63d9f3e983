-- The tools/list replies that analysis scored, where the reasons naming a
-- poisoned or changed tool live: stats reads them to name those tools in
-- riskiest_tools, as the local store does. Partial, so ingest pays for the
-- rare rows it holds only.

-- +goose Up
CREATE INDEX events_tool_lists ON events (tenant_id, ts) WHERE method = 'tools/list' AND risk_rank > 0;

-- +goose Down
DROP INDEX events_tool_lists;
