-- Migration 0013: provisioning on a cloud provider (issue 15).
-- Provisioning on a cloud provider (issue 15). A provider project is one account's API token (sealed
-- with the AES-256-GCM keyring, bound to the row, like DKIM private keys) and its port-25 egress state:
-- new Hetzner projects cannot send on 25 until a limit request is granted. Nodes and IPs the control
-- plane bought carry the provider's id and the idempotency key the create was labelled with; the key is
-- written to provisioning_intents before the provider is called, so a re-run after a crash adopts
-- what the crashed run created instead of buying it twice. No tenant rows: no row-level security.
CREATE TABLE provider_projects (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  provider           text NOT NULL DEFAULT 'hetzner' CHECK (provider IN ('hetzner')),
  name               slug NOT NULL UNIQUE,
  api_url            text NOT NULL CHECK (api_url ~ '^https?://[^\s]+$'),
  token_enc          bytea NOT NULL,
  token_key_id       text NOT NULL,
  -- what the token may do, as learnt: a read-only token registers, and provisioning refuses it
  token_read_only    boolean NOT NULL DEFAULT false,
  port25_egress      text NOT NULL DEFAULT 'blocked' CHECK (port25_egress IN ('blocked', 'requested', 'open')),
  port25_changed_at  timestamptz NOT NULL DEFAULT now(),
  port25_note        text CHECK (length(port25_note) <= 500),
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);

-- A create at the provider the control plane is about to send (or has sent): pending until the
-- resource is recorded on its node or IP row, which then carries the same idempotency key.
CREATE TABLE provisioning_intents (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id         uuid NOT NULL REFERENCES provider_projects (id) ON DELETE RESTRICT,
  kind               text NOT NULL CHECK (kind IN ('server', 'floating_ip')),
  idempotency_key    text NOT NULL UNIQUE CHECK (idempotency_key ~ '^[a-z0-9][a-z0-9.-]{0,61}[a-z0-9]$'),
  -- server: the node's name; floating_ip: the node it is bought for
  node_name          slug,
  node_id            uuid REFERENCES nodes (id) ON DELETE CASCADE,
  spec               jsonb NOT NULL DEFAULT '{}',
  -- the node token a server's user data carries, sealed, until the node row holds its hash
  node_token_enc     bytea,
  node_token_key_id  text,
  status             text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
  resource_id        text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'server') = (node_name IS NOT NULL)),
  CHECK ((kind = 'floating_ip') = (node_id IS NOT NULL))
);
CREATE UNIQUE INDEX provisioning_intents_pending_server_idx ON provisioning_intents (node_name) WHERE kind = 'server' AND status = 'pending';
CREATE UNIQUE INDEX provisioning_intents_pending_ip_idx ON provisioning_intents (node_id) WHERE kind = 'floating_ip' AND status = 'pending';

ALTER TABLE nodes ADD COLUMN provider_project_id uuid REFERENCES provider_projects (id) ON DELETE RESTRICT;
ALTER TABLE nodes ADD COLUMN provider_server_id text CHECK (provider_server_id ~ '^[A-Za-z0-9_-]{1,64}$');
ALTER TABLE nodes ADD COLUMN provider_idempotency_key text UNIQUE;
-- the node's last port-25 probe (connect to a public MX on 25) and when it ran
ALTER TABLE nodes ADD COLUMN port25_probe_ok boolean;
ALTER TABLE nodes ADD COLUMN port25_probe_at timestamptz;
ALTER TABLE nodes ADD CONSTRAINT nodes_provider_server_unique UNIQUE (provider_project_id, provider_server_id);

ALTER TABLE ip_addresses ADD COLUMN provider_project_id uuid REFERENCES provider_projects (id) ON DELETE RESTRICT;
ALTER TABLE ip_addresses ADD COLUMN provider_floating_ip_id text CHECK (provider_floating_ip_id ~ '^[A-Za-z0-9_-]{1,64}$');
ALTER TABLE ip_addresses ADD COLUMN provider_idempotency_key text UNIQUE;
-- the PTR set at the provider, and when forward-confirmed reverse DNS (the PTR name resolves back to
-- the address) was last verified; a provisioned IP carries no mail before that
ALTER TABLE ip_addresses ADD COLUMN ptr_name hostname;
ALTER TABLE ip_addresses ADD COLUMN rdns_verified_at timestamptz;
ALTER TABLE ip_addresses ADD CONSTRAINT ip_addresses_provider_ip_unique UNIQUE (provider_project_id, provider_floating_ip_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON provider_projects, provisioning_intents TO kcp_app;
