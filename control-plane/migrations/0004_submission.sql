-- Migration 0004: what the SMTP submission gateway needs: where it relays to on each node, and the
-- networks a tenant's application servers submit from without AUTH.

-- The gateway relays to relay_host:relay_port (kumod's SMTP listener, with the gateway in its
-- relay_hosts). NULL host: the node's public address.
ALTER TABLE nodes
  ADD COLUMN relay_host text CHECK (relay_host ~ '^[A-Za-z0-9.:-]{1,253}$'),
  ADD COLUMN relay_port integer NOT NULL DEFAULT 25 CHECK (relay_port BETWEEN 1 AND 65535);

CREATE TABLE submission_networks (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  network     cidr NOT NULL,
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 200),
  created_at  timestamptz NOT NULL DEFAULT now(),
  -- a connecting address must name one tenant, never two: overlapping networks are refused
  EXCLUDE USING gist (network inet_ops WITH &&)
);
CREATE INDEX submission_networks_tenant_idx ON submission_networks (tenant_id);
