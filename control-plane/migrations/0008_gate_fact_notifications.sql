-- Migration 0008: every change to a fact the submission gateway caches is announced on the
-- kcp_gate_facts channel, so that gateways drop what they hold at once instead of waiting for its TTL.

-- The payload names what to drop: {"scope":"tenant","tenant":"<uuid>"}, {"scope":"fleet"} (relay nodes
-- of every tenant), {"scope":"networks"}, {"scope":"peers"} or {"scope":"all"}. TG_ARGV[0] is the
-- scope; for "tenant", TG_ARGV[1] is the column that holds the tenant's id. A notification is sent at
-- commit, and identical ones of one transaction are sent once, so a bulk change costs one per tenant.
CREATE FUNCTION notify_gate_facts() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  old_tenant text;
  new_tenant text;
BEGIN
  IF TG_OP = 'TRUNCATE' OR TG_ARGV[0] <> 'tenant' THEN
    PERFORM pg_notify('kcp_gate_facts', jsonb_build_object('scope', CASE WHEN TG_OP = 'TRUNCATE' THEN 'all' ELSE TG_ARGV[0] END)::text);
    RETURN NULL;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    old_tenant := to_jsonb(OLD) ->> TG_ARGV[1];
  END IF;
  IF TG_OP <> 'DELETE' THEN
    new_tenant := to_jsonb(NEW) ->> TG_ARGV[1];
  END IF;
  IF old_tenant IS NOT NULL THEN
    PERFORM pg_notify('kcp_gate_facts', jsonb_build_object('scope', 'tenant', 'tenant', old_tenant)::text);
  END IF;
  IF new_tenant IS NOT NULL AND new_tenant IS DISTINCT FROM old_tenant THEN
    PERFORM pg_notify('kcp_gate_facts', jsonb_build_object('scope', 'tenant', 'tenant', new_tenant)::text);
  END IF;
  RETURN NULL;
END
$$;

-- Per table: inserts and deletes always, updates only of the columns the gateway reads (WHEN), and a
-- truncate as "everything". Columns that move all the time (scores, last_seen_at, last_used_at,
-- warm-up days) are left out on purpose.
CREATE TRIGGER tenants_gate_facts AFTER INSERT OR DELETE ON tenants
  FOR EACH ROW EXECUTE FUNCTION notify_gate_facts('tenant', 'id');
CREATE TRIGGER tenants_gate_facts_update AFTER UPDATE ON tenants
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION notify_gate_facts('tenant', 'id');
CREATE TRIGGER tenants_gate_facts_truncate AFTER TRUNCATE ON tenants
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gate_facts('all');

-- rescoring rewrites every tenant's row often: only a lock or unlock is news to the gateway
CREATE TRIGGER tenant_trust_gate_facts AFTER INSERT OR DELETE ON tenant_trust
  FOR EACH ROW EXECUTE FUNCTION notify_gate_facts('tenant', 'tenant_id');
CREATE TRIGGER tenant_trust_gate_facts_update AFTER UPDATE ON tenant_trust
  FOR EACH ROW WHEN ((OLD.locked, OLD.lock_kind, OLD.locked_at) IS DISTINCT FROM (NEW.locked, NEW.lock_kind, NEW.locked_at))
  EXECUTE FUNCTION notify_gate_facts('tenant', 'tenant_id');
CREATE TRIGGER tenant_trust_gate_facts_truncate AFTER TRUNCATE ON tenant_trust
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gate_facts('all');

CREATE TRIGGER tenant_placements_gate_facts AFTER INSERT OR DELETE ON tenant_placements
  FOR EACH ROW EXECUTE FUNCTION notify_gate_facts('tenant', 'tenant_id');
CREATE TRIGGER tenant_placements_gate_facts_update AFTER UPDATE ON tenant_placements
  FOR EACH ROW WHEN ((OLD.tenant_id, OLD.tier, OLD.shard, OLD.superseded_at) IS DISTINCT FROM (NEW.tenant_id, NEW.tier, NEW.shard, NEW.superseded_at))
  EXECUTE FUNCTION notify_gate_facts('tenant', 'tenant_id');
CREATE TRIGGER tenant_placements_gate_facts_truncate AFTER TRUNCATE ON tenant_placements
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gate_facts('all');

CREATE TRIGGER tenant_quarantines_gate_facts AFTER INSERT OR DELETE ON tenant_quarantines
  FOR EACH ROW EXECUTE FUNCTION notify_gate_facts('tenant', 'tenant_id');
CREATE TRIGGER tenant_quarantines_gate_facts_update AFTER UPDATE ON tenant_quarantines
  FOR EACH ROW WHEN ((OLD.tenant_id, OLD.reason, OLD.ends_at, OLD.released_at) IS DISTINCT FROM (NEW.tenant_id, NEW.reason, NEW.ends_at, NEW.released_at))
  EXECUTE FUNCTION notify_gate_facts('tenant', 'tenant_id');
CREATE TRIGGER tenant_quarantines_gate_facts_truncate AFTER TRUNCATE ON tenant_quarantines
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gate_facts('all');

CREATE TRIGGER sending_domains_gate_facts AFTER INSERT OR DELETE ON sending_domains
  FOR EACH ROW EXECUTE FUNCTION notify_gate_facts('tenant', 'tenant_id');
CREATE TRIGGER sending_domains_gate_facts_update AFTER UPDATE ON sending_domains
  FOR EACH ROW WHEN ((OLD.tenant_id, OLD.domain, OLD.verified_at) IS DISTINCT FROM (NEW.tenant_id, NEW.domain, NEW.verified_at))
  EXECUTE FUNCTION notify_gate_facts('tenant', 'tenant_id');
CREATE TRIGGER sending_domains_gate_facts_truncate AFTER TRUNCATE ON sending_domains
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gate_facts('all');

-- a revocation, a new password or a new credential; last_used_at moves with every AUTH and is no news
CREATE TRIGGER smtp_credentials_gate_facts AFTER INSERT OR DELETE ON smtp_credentials
  FOR EACH ROW EXECUTE FUNCTION notify_gate_facts('tenant', 'tenant_id');
CREATE TRIGGER smtp_credentials_gate_facts_update AFTER UPDATE ON smtp_credentials
  FOR EACH ROW WHEN ((OLD.tenant_id, OLD.username, OLD.password_hash, OLD.revoked_at) IS DISTINCT FROM (NEW.tenant_id, NEW.username, NEW.password_hash, NEW.revoked_at))
  EXECUTE FUNCTION notify_gate_facts('tenant', 'tenant_id');
CREATE TRIGGER smtp_credentials_gate_facts_truncate AFTER TRUNCATE ON smtp_credentials
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gate_facts('all');

-- the planned warming sends of the day are the tenant's warming cap
CREATE TRIGGER warming_sends_gate_facts AFTER INSERT OR DELETE ON warming_sends
  FOR EACH ROW EXECUTE FUNCTION notify_gate_facts('tenant', 'tenant_id');
CREATE TRIGGER warming_sends_gate_facts_update AFTER UPDATE ON warming_sends
  FOR EACH ROW WHEN ((OLD.tenant_id, OLD.day) IS DISTINCT FROM (NEW.tenant_id, NEW.day))
  EXECUTE FUNCTION notify_gate_facts('tenant', 'tenant_id');
CREATE TRIGGER warming_sends_gate_facts_truncate AFTER TRUNCATE ON warming_sends
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gate_facts('all');

CREATE TRIGGER submission_networks_gate_facts AFTER INSERT OR DELETE ON submission_networks
  FOR EACH ROW EXECUTE FUNCTION notify_gate_facts('networks');
CREATE TRIGGER submission_networks_gate_facts_update AFTER UPDATE ON submission_networks
  FOR EACH ROW WHEN ((OLD.tenant_id, OLD.network) IS DISTINCT FROM (NEW.tenant_id, NEW.network))
  EXECUTE FUNCTION notify_gate_facts('networks');
CREATE TRIGGER submission_networks_gate_facts_truncate AFTER TRUNCATE ON submission_networks
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gate_facts('all');

CREATE TRIGGER warming_members_gate_facts AFTER INSERT OR DELETE ON warming_members
  FOR EACH ROW EXECUTE FUNCTION notify_gate_facts('peers');
CREATE TRIGGER warming_members_gate_facts_update AFTER UPDATE ON warming_members
  FOR EACH ROW WHEN ((OLD.tenant_id, OLD.address, OLD.kind, OLD.state) IS DISTINCT FROM (NEW.tenant_id, NEW.address, NEW.kind, NEW.state))
  EXECUTE FUNCTION notify_gate_facts('peers');
CREATE TRIGGER warming_members_gate_facts_truncate AFTER TRUNCATE ON warming_members
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gate_facts('all');

-- the fleet: which nodes relay a tenant's mail follows from nodes, their IPs, pools and pool tiers
CREATE TRIGGER nodes_gate_facts AFTER INSERT OR DELETE ON nodes
  FOR EACH ROW EXECUTE FUNCTION notify_gate_facts('fleet');
CREATE TRIGGER nodes_gate_facts_update AFTER UPDATE ON nodes
  FOR EACH ROW WHEN ((OLD.name, OLD.public_address, OLD.relay_host, OLD.relay_port) IS DISTINCT FROM (NEW.name, NEW.public_address, NEW.relay_host, NEW.relay_port))
  EXECUTE FUNCTION notify_gate_facts('fleet');
CREATE TRIGGER nodes_gate_facts_truncate AFTER TRUNCATE ON nodes
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gate_facts('all');

CREATE TRIGGER ip_addresses_gate_facts AFTER INSERT OR DELETE ON ip_addresses
  FOR EACH ROW EXECUTE FUNCTION notify_gate_facts('fleet');
CREATE TRIGGER ip_addresses_gate_facts_update AFTER UPDATE ON ip_addresses
  FOR EACH ROW WHEN ((OLD.node_id, OLD.state) IS DISTINCT FROM (NEW.node_id, NEW.state))
  EXECUTE FUNCTION notify_gate_facts('fleet');
CREATE TRIGGER ip_addresses_gate_facts_truncate AFTER TRUNCATE ON ip_addresses
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gate_facts('all');

CREATE TRIGGER ip_pool_members_gate_facts AFTER INSERT OR DELETE ON ip_pool_members
  FOR EACH ROW EXECUTE FUNCTION notify_gate_facts('fleet');
CREATE TRIGGER ip_pool_members_gate_facts_update AFTER UPDATE ON ip_pool_members
  FOR EACH ROW WHEN ((OLD.pool_id, OLD.ip_id) IS DISTINCT FROM (NEW.pool_id, NEW.ip_id))
  EXECUTE FUNCTION notify_gate_facts('fleet');
CREATE TRIGGER ip_pool_members_gate_facts_truncate AFTER TRUNCATE ON ip_pool_members
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gate_facts('all');

CREATE TRIGGER ip_pools_gate_facts AFTER INSERT OR DELETE ON ip_pools
  FOR EACH ROW EXECUTE FUNCTION notify_gate_facts('fleet');
CREATE TRIGGER ip_pools_gate_facts_update AFTER UPDATE ON ip_pools
  FOR EACH ROW WHEN (OLD.tier IS DISTINCT FROM NEW.tier)
  EXECUTE FUNCTION notify_gate_facts('fleet');
CREATE TRIGGER ip_pools_gate_facts_truncate AFTER TRUNCATE ON ip_pools
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gate_facts('all');

-- thresholds and placement settings shape every tenant's facts
CREATE TRIGGER settings_gate_facts AFTER INSERT OR DELETE ON settings
  FOR EACH ROW EXECUTE FUNCTION notify_gate_facts('all');
CREATE TRIGGER settings_gate_facts_update AFTER UPDATE ON settings
  FOR EACH ROW WHEN (OLD.value IS DISTINCT FROM NEW.value)
  EXECUTE FUNCTION notify_gate_facts('all');
CREATE TRIGGER settings_gate_facts_truncate AFTER TRUNCATE ON settings
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gate_facts('all');
