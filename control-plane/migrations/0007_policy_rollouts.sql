-- Migration 0007: what nodes run (not only what they were served), canary nodes, automatic rollouts.

ALTER TABLE nodes
  -- the version the control plane last sent the node, and when
  ADD COLUMN served_policy_version_id bigint REFERENCES policy_versions (id) ON DELETE SET NULL,
  ADD COLUMN served_at      timestamptz,
  -- applied_policy_version_id (0001) is now what the node reports it runs; since when
  ADD COLUMN applied_at     timestamptz,
  -- the hash of the module the node reports it runs (also when it matches no version), and which copy
  ADD COLUMN applied_sha256 text CHECK (applied_sha256 ~ '^[0-9a-f]{64}$'),
  ADD COLUMN running_copy   text CHECK (running_copy IN ('generated', 'last_known_good', 'none')),
  -- the node's own account of its last failed install (signature, checks, keys), cleaned of control characters
  ADD COLUMN policy_error   text CHECK (length(policy_error) <= 500),
  ADD COLUMN policy_error_at timestamptz,
  -- the node's last policy pull (last_seen_at also moves with its log records)
  ADD COLUMN last_pull_at   timestamptz,
  -- autopilot rollouts go to canary nodes first
  ADD COLUMN canary         boolean NOT NULL DEFAULT false;
-- what was recorded so far is what was served: no node has reported what it runs yet
UPDATE nodes SET served_policy_version_id = applied_policy_version_id, served_at = last_seen_at, applied_policy_version_id = NULL;

CREATE TABLE policy_rollouts (
  id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- canary: published to the canary nodes, waiting for them to apply it; soaking: applied, watched;
  -- promoting: published to the rest, waiting for them; done; rolled_back; skipped (by an operator);
  -- superseded (an urgent change overtook it)
  state               text NOT NULL CHECK (state IN ('canary', 'soaking', 'promoting', 'done', 'rolled_back', 'skipped', 'superseded')),
  urgent              boolean NOT NULL DEFAULT false,
  reason              text NOT NULL CHECK (length(reason) <= 2000),
  canary_node_ids     uuid[] NOT NULL,
  -- every node of the rollout and the version it gets: {"<node id>": <version>}
  node_versions       jsonb NOT NULL CHECK (jsonb_typeof(node_versions) = 'object'),
  -- the hash over every node's module: the fleet state this rollout carries
  render_sha256       text NOT NULL CHECK (render_sha256 ~ '^[0-9a-f]{64}$'),
  baseline            jsonb,
  health              jsonb,
  created_at          timestamptz NOT NULL,
  canary_applied_at   timestamptz,
  promoted_at         timestamptz,
  finished_at         timestamptz,
  outcome             text CHECK (length(outcome) <= 2000),
  CHECK ((state IN ('done', 'rolled_back', 'skipped', 'superseded')) = (finished_at IS NOT NULL))
);
CREATE INDEX policy_rollouts_active_idx ON policy_rollouts (id) WHERE finished_at IS NULL;

ALTER TABLE policy_versions
  ADD COLUMN rollout_id bigint REFERENCES policy_rollouts (id) ON DELETE SET NULL;

-- the autopilot's own state: one row
CREATE TABLE policy_autopilot (
  id             boolean PRIMARY KEY DEFAULT true CHECK (id),
  paused         boolean NOT NULL DEFAULT false,
  paused_at      timestamptz,
  paused_reason  text CHECK (length(paused_reason) <= 2000),
  -- a fleet state an operator chose not to roll out (skip): not started again until the state changes
  skipped_render_sha256 text CHECK (skipped_render_sha256 ~ '^[0-9a-f]{64}$'),
  CHECK (paused = (paused_at IS NOT NULL))
);
INSERT INTO policy_autopilot (id) VALUES (true);

-- incidents are about a pool's reputation or about a policy rollout
ALTER TABLE reputation_incidents
  ADD COLUMN kind       text NOT NULL DEFAULT 'pool_reputation' CHECK (kind IN ('pool_reputation', 'policy_rollout')),
  ADD COLUMN rollout_id bigint REFERENCES policy_rollouts (id) ON DELETE SET NULL;
