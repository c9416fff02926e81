-- Migration 0002: the current trust state per tenant (the gateway reads it on every recipient), and
-- indexes for attributing returned reports and for soft-bounce streaks.

CREATE TYPE trust_basis AS ENUM ('wilson_interval', 'insufficient_sample');

CREATE TABLE tenant_trust (
  tenant_id          uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
  score              numeric(5, 2) NOT NULL CHECK (score BETWEEN 0 AND 100),
  basis              trust_basis NOT NULL,
  locked             boolean NOT NULL,
  -- why: the domain is not authenticated, or the score is too low (they lift differently)
  lock_kind          text CHECK (lock_kind IN ('authentication', 'score')),
  locked_at          timestamptz,
  lock_reason        text CHECK (length(lock_reason) <= 1000),
  -- clean warming sends the tenant was told to send when it was locked ("312 of 400")
  rehab_target_sends integer CHECK (rehab_target_sends >= 0),
  computed_at        timestamptz NOT NULL,
  CHECK (locked = (locked_at IS NOT NULL)),
  CHECK (locked = (lock_kind IS NOT NULL)),
  CHECK (NOT locked OR lock_reason IS NOT NULL)
);

CREATE INDEX delivery_events_message_id_idx ON delivery_events (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX delivery_events_streak_idx ON delivery_events (tenant_id, recipient, occurred_at)
  WHERE outcome IN ('delivered', 'hard_bounce', 'soft_bounce');
DROP INDEX delivery_events_recipient_idx;
CREATE INDEX suppressions_tenant_idx ON suppressions (tenant_id, id);
