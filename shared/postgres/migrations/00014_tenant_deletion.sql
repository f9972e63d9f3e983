-- Deleting a tenant with its data (DELETE /api/admin/tenants/{id}). The
-- data is deleted as kilometers_app with app.tenant_id set to the tenant,
-- so row-level security still confines the deletion to that one tenant;
-- the tenant row and its keys are deleted as kilometers_admin.
-- postgres.DB.DeleteTenant finds every table with a tenant_id column, so a
-- table added later without DELETE granted here makes deletion fail
-- loudly rather than leave rows behind.

-- +goose Up
GRANT DELETE ON sessions, events, rollup_minute, rollup_hour, series_minute, session_minute, session_hour TO kilometers_app;
GRANT DELETE ON tenants, api_keys TO kilometers_admin;

-- +goose Down
REVOKE DELETE ON tenants, api_keys FROM kilometers_admin;
REVOKE DELETE ON sessions, events, rollup_minute, rollup_hour, series_minute, session_minute, session_hour FROM kilometers_app;
