-- Migration 0003: placement shards, reputation incidents and quarantines, warm-up bookkeeping, and
-- indexes for per-IP and per-pool event statistics.

ALTER TABLE tenant_placements
  ADD COLUMN shard jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(shard) = 'array');

ALTER TABLE ip_addresses
  ADD COLUMN warmup_evaluated_on date;

CREATE TABLE reputation_incidents (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  pool_id      uuid REFERENCES ip_pools (id) ON DELETE CASCADE,
  detected_at  timestamptz NOT NULL,
  window_start timestamptz NOT NULL,
  window_end   timestamptz NOT NULL,
  level        text NOT NULL CHECK (level IN ('review', 'pause')),
  assessment   jsonb NOT NULL,
  actions      jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(actions) = 'array'),
  CHECK (window_end > window_start)
);
CREATE INDEX reputation_incidents_pool_idx ON reputation_incidents (pool_id, detected_at DESC);

CREATE TABLE tenant_quarantines (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  incident_id bigint REFERENCES reputation_incidents (id) ON DELETE SET NULL,
  reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
  starts_at   timestamptz NOT NULL,
  ends_at     timestamptz NOT NULL,
  released_at timestamptz,
  CHECK (ends_at > starts_at)
);
CREATE INDEX tenant_quarantines_tenant_idx ON tenant_quarantines (tenant_id, ends_at DESC);

CREATE INDEX delivery_events_source_time_idx ON delivery_events (egress_source, occurred_at) WHERE egress_source IS NOT NULL;
