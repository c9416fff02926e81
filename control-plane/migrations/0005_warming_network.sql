-- Migration 0005: the warming network's ramps, risk flags and daily plans.

ALTER TABLE warming_members
  ADD COLUMN ramp_kind       text NOT NULL DEFAULT 'new' CHECK (ramp_kind IN ('new', 'prewarmed')),
  ADD COLUMN ramp_started_on date,
  -- set by operators (or a blocklist check): the member's domain is listed
  ADD COLUMN listed          boolean NOT NULL DEFAULT false,
  -- paused after a complaint until then
  ADD COLUMN paused_until    timestamptz,
  -- why the last plan kept it in the isolated part of the network (NULL: it did not)
  ADD COLUMN risk_reason     text CHECK (length(risk_reason) <= 300),
  ADD COLUMN cut_pct         numeric(5, 2) NOT NULL DEFAULT 0 CHECK (cut_pct BETWEEN 0 AND 100);

CREATE TABLE warming_sends (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  day          date NOT NULL,
  sender_id    uuid NOT NULL REFERENCES warming_members (id) ON DELETE CASCADE,
  recipient_id uuid NOT NULL REFERENCES warming_members (id) ON DELETE CASCADE,
  tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  kind         text NOT NULL CHECK (kind IN ('new', 'reply')),
  reply_to     uuid REFERENCES warming_sends (id) ON DELETE SET NULL,
  scheduled_at timestamptz NOT NULL,
  -- the tag the platform recognises its warming mail (and replies to it) by
  message_id   text NOT NULL UNIQUE CHECK (length(message_id) <= 300),
  subject      text NOT NULL CHECK (length(subject) <= 300),
  status       text NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'sent', 'failed')),
  attempts     integer NOT NULL DEFAULT 0,
  last_error   text CHECK (length(last_error) <= 1000),
  sent_at      timestamptz,
  opened_at    timestamptz,
  replied_at   timestamptz,
  rescued_at   timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (day, sender_id, recipient_id)
);
CREATE INDEX warming_sends_due_idx ON warming_sends (scheduled_at) WHERE status = 'planned';
CREATE INDEX warming_sends_tenant_day_idx ON warming_sends (tenant_id, day);
CREATE INDEX warming_sends_recipient_day_idx ON warming_sends (recipient_id, day);
