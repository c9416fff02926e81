-- Migration 0011: row-level security, tenant isolation the database enforces.
-- The application connects as kcp_app: no superuser, no BYPASSRLS, owner of nothing (the migrations run
-- as the schema's owner). Every table with a tenant's rows has row-level security, forced so that the
-- owner is held to it too, and two policies keyed on settings of the session or transaction, which
-- control-plane/src/adapters/pg/scope.ts alone sets:
--   kcp.scope = 'platform'   every tenant's rows: operators, workers, the node channel, the gateway,
--                            the migrator (code that spans tenants by what it is)
--   kcp.tenant_id = <uuid>   that tenant's rows only: tenant-token API requests, in a read-only transaction
-- A connection that sets neither sees no tenant's rows and can write none. Rows of no tenant (global
-- suppressions, operator tokens, unattributed events, golden seeds, the platform's audit entries) are
-- platform rows: a tenant scope neither reads nor writes them.
-- The role is cluster-wide, so it is created outside the migrations (scripts/services.sh for the private
-- instance, the tests' set-up, a DBA in production: README, Configuration).
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kcp_app') THEN
    RAISE EXCEPTION 'role kcp_app does not exist: create the database roles first (README, "Database roles")';
  END IF;
END
$$;

-- What the application may do: read and write every table, except that the audit log only grows
-- (its trigger refuses UPDATE, DELETE and TRUNCATE for the owner as well); no DDL, no TRUNCATE.
DO $$
BEGIN
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO kcp_app', current_schema());
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE ON
  operators, tenants, api_tokens, smtp_credentials, submission_networks, sending_domains,
  mailboxes, nodes, ip_addresses, ip_pools, ip_pool_members, tenant_placements,
  reputation_incidents, tenant_quarantines, delivery_events, engagement_events, tenant_daily_metrics, trust_score_snapshots,
  tenant_trust, suppressions, warming_members, warming_sends, policy_versions, policy_rollouts,
  policy_autopilot, settings
  TO kcp_app;
GRANT SELECT, INSERT ON audit_log TO kcp_app;
-- which migrations are applied (the migrator's own table, absent when this DDL is applied by hand), so
-- that a process given only DATABASE_URL starts on a current schema and refuses to on an old one
DO $$
BEGIN
  IF to_regclass('schema_migrations') IS NOT NULL THEN
    GRANT SELECT ON schema_migrations TO kcp_app;
  END IF;
END
$$;

-- The policies compare a setting with a constant (current_setting is stable): no function to inline and
-- no subquery to plan, so a point lookup of the gateway plans and runs as it does without them.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON tenants USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON tenants USING (id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON api_tokens USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON api_tokens USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE smtp_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE smtp_credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON smtp_credentials USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON smtp_credentials USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE submission_networks ENABLE ROW LEVEL SECURITY;
ALTER TABLE submission_networks FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON submission_networks USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON submission_networks USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE sending_domains ENABLE ROW LEVEL SECURITY;
ALTER TABLE sending_domains FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON sending_domains USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON sending_domains USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE mailboxes ENABLE ROW LEVEL SECURITY;
ALTER TABLE mailboxes FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON mailboxes USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON mailboxes USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE tenant_placements ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_placements FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON tenant_placements USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON tenant_placements USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE tenant_quarantines ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_quarantines FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON tenant_quarantines USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON tenant_quarantines USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE delivery_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE delivery_events FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON delivery_events USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON delivery_events USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE engagement_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE engagement_events FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON engagement_events USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON engagement_events USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE tenant_daily_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_daily_metrics FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON tenant_daily_metrics USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON tenant_daily_metrics USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE trust_score_snapshots ENABLE ROW LEVEL SECURITY;
ALTER TABLE trust_score_snapshots FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON trust_score_snapshots USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON trust_score_snapshots USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE tenant_trust ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_trust FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON tenant_trust USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON tenant_trust USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE suppressions ENABLE ROW LEVEL SECURITY;
ALTER TABLE suppressions FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON suppressions USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON suppressions USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE warming_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE warming_members FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON warming_members USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON warming_members USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE warming_sends ENABLE ROW LEVEL SECURITY;
ALTER TABLE warming_sends FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON warming_sends USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON warming_sends USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_scope ON audit_log USING (current_setting('kcp.scope', true) = 'platform');
CREATE POLICY tenant_scope ON audit_log USING (tenant_id = nullif(current_setting('kcp.tenant_id', true), '')::uuid);

-- What a tenant's requests may see across tenants, and nothing more: the anonymised leaderboard
-- (pseudonyms and scores) and the warming network's totals (how warming mail engages, which a locked
-- tenant's rehabilitation is estimated with). Each switches to the platform scope for its one query
-- and back, inside one statement, so nothing else of the caller's transaction runs in it (an error
-- ends the statement, and its subtransaction's settings with it).
CREATE FUNCTION tenant_leaderboard(max_rows integer)
RETURNS TABLE (pseudonym text, score numeric)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  prior text := current_setting('kcp.scope', true);
BEGIN
  PERFORM set_config('kcp.scope', 'platform', true);
  RETURN QUERY
    SELECT t.pseudonym, tt.score
      FROM tenant_trust tt JOIN tenants t ON t.id = tt.tenant_id
     WHERE NOT t.leaderboard_opt_out AND t.status = 'active' AND tt.basis = 'wilson_interval'
     ORDER BY tt.score DESC, t.pseudonym
     LIMIT max_rows;
  PERFORM set_config('kcp.scope', coalesce(prior, ''), true);
END
$$;

CREATE FUNCTION warming_network_counts(from_day date)
RETURNS TABLE (sent bigint, delivered bigint, hard_bounces bigint, streak_bounces bigint, expired bigint,
               soft_bounces bigint, complaints bigint, opens bigint, clicks bigint, replies bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  prior text := current_setting('kcp.scope', true);
BEGIN
  PERFORM set_config('kcp.scope', 'platform', true);
  RETURN QUERY
    SELECT coalesce(sum(m.sent), 0)::bigint, coalesce(sum(m.delivered), 0)::bigint,
           coalesce(sum(m.hard_bounces), 0)::bigint, coalesce(sum(m.streak_bounces), 0)::bigint,
           coalesce(sum(m.expired), 0)::bigint, coalesce(sum(m.soft_bounces), 0)::bigint,
           coalesce(sum(m.complaints), 0)::bigint, coalesce(sum(m.opens), 0)::bigint,
           coalesce(sum(m.clicks), 0)::bigint, coalesce(sum(m.replies), 0)::bigint
      FROM tenant_daily_metrics m
     WHERE m.lane = 'warming' AND m.day >= from_day;
  PERFORM set_config('kcp.scope', coalesce(prior, ''), true);
END
$$;
