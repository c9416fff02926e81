-- Migration 0009: what the policy autopilot keeps between ticks, and what it reads.

ALTER TABLE policy_versions
  -- what about the module cannot wait for a canary: the tenants it holds back, the sources that carry mail
  ADD COLUMN safety jsonb CHECK (jsonb_typeof(safety) = 'object');

ALTER TABLE policy_autopilot
  -- the fleet state waiting to go out: since when the fleet differs from what it runs, and when that
  -- state last changed (the debounce counts from there)
  ADD COLUMN pending_render_sha256 text CHECK (pending_render_sha256 ~ '^[0-9a-f]{64}$'),
  ADD COLUMN pending_since         timestamptz,
  ADD COLUMN pending_changed_at    timestamptz,
  ADD CONSTRAINT policy_autopilot_pending_check
    CHECK ((pending_render_sha256 IS NULL) = (pending_since IS NULL) AND (pending_since IS NULL) = (pending_changed_at IS NULL));

-- every settings section the application has: warming_network (0005) was missing, policy_rollout is new
ALTER TABLE settings DROP CONSTRAINT settings_section_check;
ALTER TABLE settings ADD CONSTRAINT settings_section_check
  CHECK (section IN ('trust', 'placement', 'costs', 'ip_warmup', 'mailbox_warmup', 'warming_network', 'policy_rollout'));

-- records of the node failing a message itself: what the autopilot watches a canary for
ALTER TABLE delivery_events ADD COLUMN node_fault boolean NOT NULL DEFAULT false;
CREATE INDEX delivery_events_node_time_idx ON delivery_events (node_id, occurred_at) WHERE node_id IS NOT NULL;
