-- Migration 0014: what lets a bought IP carry mail reaches the gateways, nodes report their own
-- port-25 probes, and provisioning can be undone (issue 15).
--
-- A provisioned IP carries mail only with forward-confirmed reverse DNS and its node's port-25 egress
-- open (domain/fleet/ip-lifecycle.ts ipCarriesMail). The gateways cache that per IP and re-read it on a
-- 'fleet' notification, so a change of any of its inputs must notify: the node's probe result, the IP's
-- verification, the project's egress state. Before this migration only an expired cache noticed.
DROP TRIGGER nodes_gate_facts_update ON nodes;
CREATE TRIGGER nodes_gate_facts_update AFTER UPDATE ON nodes
  FOR EACH ROW WHEN ((OLD.name, OLD.public_address, OLD.relay_host, OLD.relay_port, OLD.provider_project_id, OLD.port25_probe_ok)
                     IS DISTINCT FROM (NEW.name, NEW.public_address, NEW.relay_host, NEW.relay_port, NEW.provider_project_id, NEW.port25_probe_ok))
  EXECUTE FUNCTION notify_gate_facts('fleet');

DROP TRIGGER ip_addresses_gate_facts_update ON ip_addresses;
CREATE TRIGGER ip_addresses_gate_facts_update AFTER UPDATE ON ip_addresses
  FOR EACH ROW WHEN ((OLD.node_id, OLD.state, OLD.provider_project_id, OLD.rdns_verified_at IS NULL)
                     IS DISTINCT FROM (NEW.node_id, NEW.state, NEW.provider_project_id, NEW.rdns_verified_at IS NULL))
  EXECUTE FUNCTION notify_gate_facts('fleet');

CREATE TRIGGER provider_projects_gate_facts_update AFTER UPDATE ON provider_projects
  FOR EACH ROW WHEN (OLD.port25_egress IS DISTINCT FROM NEW.port25_egress)
  EXECUTE FUNCTION notify_gate_facts('fleet');
CREATE TRIGGER provider_projects_gate_facts_truncate AFTER TRUNCATE ON provider_projects
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gate_facts('all');

-- What the node's last probe tried and saw (targets, the failure), for the operator; it never decides.
ALTER TABLE nodes ADD COLUMN port25_probe_detail text CHECK (length(port25_probe_detail) <= 1000);

-- A pending create an operator gave up on: whatever the provider holds under its idempotency key was
-- deleted, and a new run starts afresh under a new key.
ALTER TABLE provisioning_intents DROP CONSTRAINT provisioning_intents_status_check;
ALTER TABLE provisioning_intents ADD CONSTRAINT provisioning_intents_status_check CHECK (status IN ('pending', 'done', 'cancelled'));
