-- The application roles keep only the privileges some code path uses:
--  * kilometers_app never updates events or the session buckets (ingest
--    inserts them with ON CONFLICT DO NOTHING) and never reads tenants
--    (its tenant comes from Authenticate, which works as kilometers_admin);
--  * km_hist_merge is executed by kilometers_app alone, not by PUBLIC.
-- What each role keeps is listed, and checked, in TestLeastPrivilege.

-- +goose Up
REVOKE UPDATE ON events, session_minute, session_hour FROM kilometers_app;
REVOKE ALL ON tenants FROM kilometers_app;
REVOKE EXECUTE ON FUNCTION km_hist_merge(bigint[], bigint[]) FROM PUBLIC;

-- +goose Down
GRANT EXECUTE ON FUNCTION km_hist_merge(bigint[], bigint[]) TO PUBLIC;
GRANT SELECT ON tenants TO kilometers_app;
GRANT UPDATE ON events, session_minute, session_hour TO kilometers_app;
