-- Canonical DDL of the control plane. The migration runner (control-plane/migrations/*.sql) must produce
-- exactly this schema; control-plane/test/integration/schema-drift.int.test.ts compares the two catalogs.
--
-- Conventions: snake_case; uuid keys for things operators name in the API, bigint identities for
-- high-volume append-only rows; every timestamp is timestamptz; state machines are enums; anything a
-- tenant types that later reaches Lua, SMTP or DNS is constrained here too, as a second line of defence
-- behind the API's validation.
-- No object is schema-qualified, so the same DDL can be applied inside any schema on the search_path.

-- ---------------------------------------------------------------------------------------------------
-- Types
-- ---------------------------------------------------------------------------------------------------
CREATE TYPE token_scope AS ENUM ('read', 'write', 'admin');
CREATE TYPE tenant_status AS ENUM ('active', 'suspended');
CREATE TYPE verification_state AS ENUM ('pending', 'verified', 'failed');
CREATE TYPE dkim_algorithm AS ENUM ('rsa-sha256', 'ed25519-sha256');
CREATE TYPE ip_state AS ENUM ('warming', 'active', 'quarantined', 'retired');
CREATE TYPE pool_tier AS ENUM ('premium', 'standard', 'rehabilitation', 'quarantine');
CREATE TYPE placement_origin AS ENUM ('engine', 'operator');
CREATE TYPE lane AS ENUM ('external', 'warming');
CREATE TYPE delivery_outcome AS ENUM (
  'received', 'delivered', 'hard_bounce', 'soft_bounce', 'complaint', 'expired', 'rejected', 'other'
);
CREATE TYPE engagement_kind AS ENUM ('open', 'click', 'reply', 'not_spam');
CREATE TYPE suppression_reason AS ENUM ('hard_bounce', 'complaint', 'unsubscribe', 'manual', 'import');
CREATE TYPE mailbox_provider AS ENUM ('gmail', 'microsoft', 'yahoo', 'other');
CREATE TYPE warming_member_kind AS ENUM ('peer', 'golden_seed');
CREATE TYPE warming_member_state AS ENUM ('active', 'paused', 'isolated', 'retired');
CREATE TYPE audit_actor AS ENUM ('operator', 'tenant', 'node', 'system');

-- A DNS host name: labels of letters, digits and hyphens, lower case, at most 253 characters.
CREATE DOMAIN hostname AS text
  CHECK (length(VALUE) <= 253
         AND VALUE ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$');

-- Short identifiers that reach generated Lua as table keys and KumoMTA queue names: no '@', ':', '!',
-- quotes or white space (KumoMTA queue-name rules), so they never need escaping in the first place.
CREATE DOMAIN slug AS text
  CHECK (VALUE ~ '^[a-z0-9][a-z0-9_-]{0,62}$');

CREATE DOMAIN usd_per_month AS numeric(10, 2)
  CHECK (VALUE >= 0 AND VALUE <= 100000);

-- ---------------------------------------------------------------------------------------------------
-- Operators and API tokens
-- ---------------------------------------------------------------------------------------------------
CREATE TABLE operators (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email       text NOT NULL UNIQUE CHECK (email = lower(email) AND email ~ '^[^@\s]+@[^@\s]+$'),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at  timestamptz NOT NULL DEFAULT now(),
  disabled_at timestamptz
);

CREATE TABLE tenants (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug                slug NOT NULL UNIQUE,
  display_name        text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
  -- stable public name for leaderboards, derived with a keyed hash so it reveals nothing
  pseudonym           text NOT NULL UNIQUE CHECK (pseudonym ~ '^Sender_[0-9]{4,8}$'),
  status              tenant_status NOT NULL DEFAULT 'active',
  leaderboard_opt_out boolean NOT NULL DEFAULT false,
  -- the engagement terms (opens, replies) the tenant reports for its external mail; the others take
  -- their prior (trust settings)
  engagement_reported text[] NOT NULL DEFAULT '{}'
    CHECK (array_position(engagement_reported, NULL) IS NULL AND cardinality(engagement_reported) <= 20),
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Token secrets are 256-bit random strings, so a plain SHA-256 is enough to make a stolen table useless;
-- a slow KDF would only slow every API request down.
CREATE TABLE api_tokens (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- exactly one owner: an operator, or a tenant (tenant tokens are read-only and see only that tenant)
  operator_id  uuid REFERENCES operators (id) ON DELETE CASCADE,
  tenant_id    uuid REFERENCES tenants (id) ON DELETE CASCADE,
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  prefix       text NOT NULL CHECK (prefix ~ '^[a-z]+_[A-Za-z0-9]{6}$'),
  token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
  scopes       token_scope[] NOT NULL CHECK (cardinality(scopes) >= 1),
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  last_used_at timestamptz,
  revoked_at   timestamptz,
  CHECK ((operator_id IS NULL) <> (tenant_id IS NULL)),
  CHECK (tenant_id IS NULL OR scopes = ARRAY['read']::token_scope[]),
  CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX api_tokens_operator_idx ON api_tokens (operator_id) WHERE operator_id IS NOT NULL;
CREATE INDEX api_tokens_tenant_idx ON api_tokens (tenant_id) WHERE tenant_id IS NOT NULL;

-- ---------------------------------------------------------------------------------------------------
-- Tenants: SMTP credentials, sending domains, mailboxes
-- ---------------------------------------------------------------------------------------------------
CREATE TABLE smtp_credentials (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  username      text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9._@+-]{3,128}$'),
  -- scrypt, PHC-style: scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt b64>$<hash b64>
  password_hash text NOT NULL CHECK (password_hash LIKE 'scrypt$%'),
  description   text NOT NULL DEFAULT '' CHECK (length(description) <= 200),
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz,
  revoked_at    timestamptz
);
CREATE INDEX smtp_credentials_tenant_idx ON smtp_credentials (tenant_id);

-- networks a tenant's application servers submit from without AUTH
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

CREATE TABLE sending_domains (
  id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id              uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  -- a domain sends for one tenant only; otherwise one tenant could sign as another
  domain                 hostname NOT NULL UNIQUE,
  dkim_selector          text NOT NULL CHECK (dkim_selector ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
  dkim_algorithm         dkim_algorithm NOT NULL DEFAULT 'rsa-sha256',
  dkim_public_key        text NOT NULL CHECK (dkim_public_key ~ '^[A-Za-z0-9+/]+=*$'),
  -- AES-256-GCM under the master key named by dkim_key_id (see control-plane/src/adapters/crypto)
  dkim_private_key_enc   bytea NOT NULL,
  dkim_key_id            text NOT NULL CHECK (dkim_key_id ~ '^[A-Za-z0-9_-]{1,32}$'),
  spf_state              verification_state NOT NULL DEFAULT 'pending',
  dkim_state             verification_state NOT NULL DEFAULT 'pending',
  dmarc_state            verification_state NOT NULL DEFAULT 'pending',
  verified_at            timestamptz,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, id),
  CHECK ((verified_at IS NOT NULL) = (spf_state = 'verified' AND dkim_state = 'verified' AND dmarc_state = 'verified'))
);
CREATE INDEX sending_domains_key_id_idx ON sending_domains (dkim_key_id);

CREATE TABLE mailboxes (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id    uuid NOT NULL,
  domain_id    uuid NOT NULL,
  local_part   text NOT NULL CHECK (local_part ~ '^[A-Za-z0-9!#$%&''*+/=?^_`{|}~.-]{1,64}$'),
  display_name text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
  created_at   timestamptz NOT NULL DEFAULT now(),
  -- the composite key makes a mailbox on another tenant's domain impossible
  FOREIGN KEY (tenant_id, domain_id) REFERENCES sending_domains (tenant_id, id) ON DELETE CASCADE,
  UNIQUE (domain_id, local_part)
);
CREATE INDEX mailboxes_tenant_idx ON mailboxes (tenant_id);

-- ---------------------------------------------------------------------------------------------------
-- KumoMTA fleet: nodes, IP addresses, pools, placements
-- ---------------------------------------------------------------------------------------------------
CREATE TABLE nodes (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name               slug NOT NULL UNIQUE,
  provider           text NOT NULL DEFAULT 'hetzner' CHECK (provider ~ '^[a-z0-9-]{1,40}$'),
  region             text NOT NULL CHECK (region ~ '^[a-z0-9-]{1,40}$'),
  public_address     inet NOT NULL UNIQUE,
  -- kumod's HTTP listener, for bump-config-epoch after a publish
  admin_url          text CHECK (admin_url ~ '^https?://[^\s]+$'),
  token_sha256       bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
  token_prefix       text NOT NULL CHECK (token_prefix ~ '^node_[A-Za-z0-9]{6}$'),
  monthly_cost_usd   usd_per_month,           -- NULL: the settings baseline (VPS)
  last_seen_at       timestamptz,
  applied_policy_version_id bigint,           -- FK added below, after policy_versions
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  -- the submission gateway relays to relay_host:relay_port (kumod's SMTP listener, with the gateway in
  -- its relay_hosts); NULL host: the node's public address
  relay_host         text CHECK (relay_host ~ '^[A-Za-z0-9.:-]{1,253}$'),
  relay_port         integer NOT NULL DEFAULT 2525 CHECK (relay_port BETWEEN 1 AND 65535),
  -- the version the control plane last sent the node, and when; applied_policy_version_id is what the
  -- node reports it runs, since applied_at
  served_policy_version_id bigint,            -- FK added below, after policy_versions
  served_at          timestamptz,
  applied_at         timestamptz,
  -- the hash of the module the node reports it runs (also when it matches no version), and which copy
  applied_sha256     text CHECK (applied_sha256 ~ '^[0-9a-f]{64}$'),
  running_copy       text CHECK (running_copy IN ('generated', 'last_known_good', 'none')),
  -- the node's own account of its last failed install (signature, checks, keys), cleaned of control characters
  policy_error       text CHECK (length(policy_error) <= 500),
  policy_error_at    timestamptz,
  -- the node's last policy pull (last_seen_at also moves with its log records)
  last_pull_at       timestamptz,
  -- autopilot rollouts go to canary nodes first
  canary             boolean NOT NULL DEFAULT false
);

CREATE TABLE ip_addresses (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  address          inet NOT NULL UNIQUE CHECK (masklen(address) = CASE WHEN family(address) = 4 THEN 32 ELSE 128 END),
  -- on Hetzner an IP is routed to one server; moving it is a new row's worth of reputation anyway
  node_id          uuid NOT NULL REFERENCES nodes (id) ON DELETE RESTRICT,
  state            ip_state NOT NULL DEFAULT 'warming',
  warmup_day       integer NOT NULL DEFAULT 0 CHECK (warmup_day BETWEEN 0 AND 365),
  rdns_name        hostname NOT NULL,
  monthly_cost_usd usd_per_month,             -- NULL: the settings baseline (IP)
  state_changed_at timestamptz NOT NULL DEFAULT now(),
  last_sent_at     timestamptz,
  -- the UTC day whose results the warm-up last judged: each day is judged once
  warmup_evaluated_on date,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ip_addresses_node_idx ON ip_addresses (node_id);

CREATE TABLE ip_pools (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        slug NOT NULL UNIQUE,
  tier        pool_tier NOT NULL,
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ip_pool_members (
  pool_id  uuid NOT NULL REFERENCES ip_pools (id) ON DELETE CASCADE,
  -- one pool per IP: an IP shared between tiers would carry a bad tier's reputation into a good one
  ip_id    uuid NOT NULL UNIQUE REFERENCES ip_addresses (id) ON DELETE CASCADE,
  weight   integer NOT NULL DEFAULT 100 CHECK (weight BETWEEN 1 AND 10000),
  added_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (pool_id, ip_id)
);

CREATE TABLE tenant_placements (
  id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  pool_id             uuid NOT NULL REFERENCES ip_pools (id) ON DELETE RESTRICT,
  tier                pool_tier NOT NULL,
  origin              placement_origin NOT NULL,
  reason              text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
  inputs              jsonb NOT NULL DEFAULT '{}'::jsonb,
  placed_at           timestamptz NOT NULL DEFAULT now(),
  superseded_at       timestamptz,
  override_expires_at timestamptz,
  -- the tenant's IPs within the tier: [{ip_id, address, weight, rank}], best first
  shard               jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(shard) = 'array'),
  CHECK (superseded_at IS NULL OR superseded_at >= placed_at),
  CHECK (override_expires_at IS NULL OR (origin = 'operator' AND override_expires_at > placed_at))
);
-- the current placement is the one not yet superseded; at most one per tenant
CREATE UNIQUE INDEX tenant_placements_current_idx ON tenant_placements (tenant_id) WHERE superseded_at IS NULL;
CREATE INDEX tenant_placements_history_idx ON tenant_placements (tenant_id, placed_at DESC);

-- Pools whose bounce or complaint rate crossed a line, what was found and what was done about it.
CREATE TABLE reputation_incidents (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  pool_id      uuid REFERENCES ip_pools (id) ON DELETE CASCADE,
  detected_at  timestamptz NOT NULL,
  window_start timestamptz NOT NULL,
  window_end   timestamptz NOT NULL,
  level        text NOT NULL CHECK (level IN ('review', 'pause')),
  assessment   jsonb NOT NULL,
  actions      jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(actions) = 'array'),
  -- about a pool's reputation, or about a policy rollout
  kind         text NOT NULL DEFAULT 'pool_reputation' CHECK (kind IN ('pool_reputation', 'policy_rollout')),
  rollout_id   bigint,                        -- FK added below, after policy_rollouts
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

-- ---------------------------------------------------------------------------------------------------
-- Events, rollups and trust scores
-- ---------------------------------------------------------------------------------------------------
CREATE TABLE delivery_events (
  id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- idempotency: the same KumoMTA record (or DSN/ARF report) posted twice is stored once
  source_id             text NOT NULL UNIQUE CHECK (length(source_id) BETWEEN 1 AND 300),
  node_id               uuid REFERENCES nodes (id) ON DELETE SET NULL,
  tenant_id             uuid REFERENCES tenants (id) ON DELETE CASCADE,
  lane                  lane NOT NULL DEFAULT 'external',
  record_type           text NOT NULL CHECK (record_type ~ '^[A-Za-z]{1,40}$'),
  outcome               delivery_outcome NOT NULL,
  message_id            text CHECK (length(message_id) <= 300),
  sender                text CHECK (length(sender) <= 320),
  recipient             text CHECK (length(recipient) <= 320),
  recipient_domain      text CHECK (length(recipient_domain) <= 253),
  egress_pool           text CHECK (length(egress_pool) <= 100),
  egress_source         text CHECK (length(egress_source) <= 100),
  response_code         integer CHECK (response_code BETWEEN 0 AND 999),
  enhanced_code         text CHECK (enhanced_code ~ '^[245]\.[0-9]{1,3}\.[0-9]{1,3}$'),
  response_text         text CHECK (length(response_text) <= 2000),
  bounce_classification text CHECK (length(bounce_classification) <= 100),
  occurred_at           timestamptz NOT NULL,
  ingested_at           timestamptz NOT NULL DEFAULT now(),
  -- the node itself failed the message (refused at reception, kumod-internal): what a broken policy produces
  node_fault            boolean NOT NULL DEFAULT false
);
CREATE INDEX delivery_events_tenant_time_idx ON delivery_events (tenant_id, occurred_at);
CREATE INDEX delivery_events_source_time_idx ON delivery_events (egress_source, occurred_at) WHERE egress_source IS NOT NULL;
CREATE INDEX delivery_events_message_id_idx ON delivery_events (message_id) WHERE message_id IS NOT NULL;
-- a canary's rates over a window (the policy autopilot)
CREATE INDEX delivery_events_node_time_idx ON delivery_events (node_id, occurred_at) WHERE node_id IS NOT NULL;
-- soft-bounce streaks per recipient (five in a row count as a hard bounce)
CREATE INDEX delivery_events_streak_idx ON delivery_events (tenant_id, recipient, occurred_at)
  WHERE outcome IN ('delivered', 'hard_bounce', 'soft_bounce');

CREATE TABLE engagement_events (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  source_id   text NOT NULL UNIQUE CHECK (length(source_id) BETWEEN 1 AND 300),
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  lane        lane NOT NULL DEFAULT 'external',
  kind        engagement_kind NOT NULL,
  message_id  text CHECK (length(message_id) <= 300),
  recipient   text CHECK (length(recipient) <= 320),
  -- golden seeds weigh more than ordinary peers
  weight      numeric(6, 3) NOT NULL DEFAULT 1 CHECK (weight > 0 AND weight <= 100),
  occurred_at timestamptz NOT NULL,
  ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX engagement_events_tenant_time_idx ON engagement_events (tenant_id, occurred_at);

CREATE TABLE tenant_daily_metrics (
  tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  day          date NOT NULL,
  lane         lane NOT NULL,
  sent         bigint NOT NULL DEFAULT 0 CHECK (sent >= 0),
  delivered    bigint NOT NULL DEFAULT 0 CHECK (delivered >= 0),
  -- bounces in the score: bounced messages and soft-bounce streaks; sent = delivered + (hard_bounces -
  -- streak_bounces) + expired
  hard_bounces bigint NOT NULL DEFAULT 0 CHECK (hard_bounces >= 0),
  streak_bounces bigint NOT NULL DEFAULT 0 CHECK (streak_bounces >= 0),
  expired      bigint NOT NULL DEFAULT 0 CHECK (expired >= 0),
  soft_bounces bigint NOT NULL DEFAULT 0 CHECK (soft_bounces >= 0),
  complaints   bigint NOT NULL DEFAULT 0 CHECK (complaints >= 0),
  opens        bigint NOT NULL DEFAULT 0 CHECK (opens >= 0),
  clicks       bigint NOT NULL DEFAULT 0 CHECK (clicks >= 0),
  replies      bigint NOT NULL DEFAULT 0 CHECK (replies >= 0),
  PRIMARY KEY (tenant_id, day, lane)
);

CREATE TABLE trust_score_snapshots (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  computed_at timestamptz NOT NULL DEFAULT now(),
  score       numeric(5, 2) NOT NULL CHECK (score BETWEEN 0 AND 100),
  -- each term's contribution, rates, sample sizes and thresholds, as computed
  components  jsonb NOT NULL,
  locked      boolean NOT NULL,
  lock_reason text CHECK (length(lock_reason) <= 1000),
  window_days integer NOT NULL CHECK (window_days BETWEEN 1 AND 365),
  CHECK (NOT locked OR lock_reason IS NOT NULL)
);
CREATE INDEX trust_score_snapshots_tenant_idx ON trust_score_snapshots (tenant_id, computed_at DESC);

CREATE TYPE trust_basis AS ENUM ('wilson_interval', 'insufficient_sample');

-- The current trust state per tenant (the gateway reads it on every recipient); snapshots keep history.
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
  -- clean warming sends still needed to unlock, as of computed_at (NULL: not locked, or clean sends
  -- alone cannot unlock the tenant)
  rehab_remaining_sends integer CHECK (rehab_remaining_sends >= 0),
  computed_at        timestamptz NOT NULL,
  CHECK (locked = (locked_at IS NOT NULL)),
  CHECK (locked = (lock_kind IS NOT NULL)),
  CHECK (NOT locked OR lock_reason IS NOT NULL)
);

-- ---------------------------------------------------------------------------------------------------
-- Suppressions and the warming network
-- ---------------------------------------------------------------------------------------------------
CREATE TABLE suppressions (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id  uuid REFERENCES tenants (id) ON DELETE CASCADE,   -- NULL: global
  -- an address (user@example.com) or a whole domain (*@example.com)
  pattern    text NOT NULL CHECK (pattern = lower(pattern) AND pattern ~ '^([^@\s*]+|\*)@[a-z0-9.-]+$' AND length(pattern) <= 320),
  reason     suppression_reason NOT NULL,
  note       text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  -- the inserting transaction: the gateway's recipient index reads new rows in commit order by it (0010)
  created_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  UNIQUE NULLS NOT DISTINCT (tenant_id, pattern)
);
CREATE INDEX suppressions_tenant_idx ON suppressions (tenant_id, id);
CREATE INDEX suppressions_created_xid_idx ON suppressions (created_xid);

CREATE TABLE warming_members (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kind             warming_member_kind NOT NULL,
  address          text NOT NULL UNIQUE CHECK (address = lower(address) AND address ~ '^[^@\s]+@[a-z0-9.-]+$'),
  provider         mailbox_provider NOT NULL,
  -- peers are tenant mailboxes; golden seeds belong to the platform
  tenant_id        uuid REFERENCES tenants (id) ON DELETE CASCADE,
  mailbox_id       uuid REFERENCES mailboxes (id) ON DELETE CASCADE,
  weight           numeric(6, 3) NOT NULL DEFAULT 1 CHECK (weight > 0 AND weight <= 100),
  monthly_cost_usd usd_per_month,
  state            warming_member_state NOT NULL DEFAULT 'active',
  joined_at        timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'peer') = (tenant_id IS NOT NULL AND mailbox_id IS NOT NULL)),
  ramp_kind        text NOT NULL DEFAULT 'new' CHECK (ramp_kind IN ('new', 'prewarmed')),
  ramp_started_on  date,
  -- set by operators (or a blocklist check): the member's domain is listed
  listed           boolean NOT NULL DEFAULT false,
  -- paused after a complaint until then
  paused_until     timestamptz,
  -- why the last plan kept it in the isolated part of the network (NULL: it did not)
  risk_reason      text CHECK (length(risk_reason) <= 300),
  cut_pct          numeric(5, 2) NOT NULL DEFAULT 0 CHECK (cut_pct BETWEEN 0 AND 100)
);

-- each day's warming plan: who writes to whom, when, and what became of it
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


-- ---------------------------------------------------------------------------------------------------
-- Policy versions
-- ---------------------------------------------------------------------------------------------------
CREATE TABLE policy_versions (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  node_id        uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
  version        integer NOT NULL CHECK (version >= 1),
  content_sha256 text NOT NULL CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
  model_sha256   text NOT NULL CHECK (model_sha256 ~ '^[0-9a-f]{64}$'),
  lua_text       text NOT NULL,
  signature      text NOT NULL CHECK (signature ~ '^[A-Za-z0-9+/]+=*$'),
  created_at     timestamptz NOT NULL DEFAULT now(),
  published_at   timestamptz,
  rolled_back_at timestamptz,
  -- the autopilot rollout that made it (NULL: an operator's publish)
  rollout_id     bigint,                      -- FK added below, after policy_rollouts
  -- what about the module cannot wait for a canary: the tenants it holds back, the sources that carry mail
  safety         jsonb CHECK (jsonb_typeof(safety) = 'object'),
  UNIQUE (node_id, version),
  CHECK (rolled_back_at IS NULL OR published_at IS NOT NULL)
);

ALTER TABLE nodes
  ADD CONSTRAINT nodes_applied_policy_version_fk
  FOREIGN KEY (applied_policy_version_id) REFERENCES policy_versions (id) ON DELETE SET NULL;
ALTER TABLE nodes
  ADD CONSTRAINT nodes_served_policy_version_id_fkey
  FOREIGN KEY (served_policy_version_id) REFERENCES policy_versions (id) ON DELETE SET NULL;

-- automatic rollouts of node policy: canary first, then the fleet once the canary applied it and
-- stayed healthy
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
  ADD CONSTRAINT policy_versions_rollout_id_fkey
  FOREIGN KEY (rollout_id) REFERENCES policy_rollouts (id) ON DELETE SET NULL;
ALTER TABLE reputation_incidents
  ADD CONSTRAINT reputation_incidents_rollout_id_fkey
  FOREIGN KEY (rollout_id) REFERENCES policy_rollouts (id) ON DELETE SET NULL;

-- the autopilot's own state: one row
CREATE TABLE policy_autopilot (
  id             boolean PRIMARY KEY DEFAULT true CHECK (id),
  paused         boolean NOT NULL DEFAULT false,
  paused_at      timestamptz,
  paused_reason  text CHECK (length(paused_reason) <= 2000),
  -- a fleet state an operator chose not to roll out (skip): not started again until the state changes
  skipped_render_sha256 text CHECK (skipped_render_sha256 ~ '^[0-9a-f]{64}$'),
  -- the fleet state waiting to go out: since when the fleet differs from what it runs, and when that
  -- state last changed (the debounce counts from there)
  pending_render_sha256 text CHECK (pending_render_sha256 ~ '^[0-9a-f]{64}$'),
  pending_since         timestamptz,
  pending_changed_at    timestamptz,
  CHECK (paused = (paused_at IS NOT NULL)),
  CONSTRAINT policy_autopilot_pending_check
    CHECK ((pending_render_sha256 IS NULL) = (pending_since IS NULL) AND (pending_since IS NULL) = (pending_changed_at IS NULL))
);
INSERT INTO policy_autopilot (id) VALUES (true);

-- ---------------------------------------------------------------------------------------------------
-- Operator-owned settings and the audit log
-- ---------------------------------------------------------------------------------------------------
CREATE TABLE settings (
  -- one row per section; the application validates each value against that section's schema
  section    text PRIMARY KEY CHECK (section IN ('trust', 'placement', 'costs', 'ip_warmup', 'mailbox_warmup', 'warming_network', 'policy_rollout')),
  value      jsonb NOT NULL CHECK (jsonb_typeof(value) = 'object'),
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by uuid REFERENCES operators (id) ON DELETE SET NULL
);

CREATE TABLE audit_log (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  actor_type  audit_actor NOT NULL,
  actor_id    text CHECK (length(actor_id) <= 100),
  action      text NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_.]+$'),
  target_type text NOT NULL CHECK (target_type ~ '^[a-z_]+$'),
  target_id   text CHECK (length(target_id) <= 100),
  tenant_id   uuid,  -- no FK: the log outlives what it describes
  request_id  text CHECK (length(request_id) <= 100),
  -- before/after with secrets removed
  details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id) WHERE tenant_id IS NOT NULL;

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only
  BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

CREATE TRIGGER audit_log_no_truncate
  BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- ---------------------------------------------------------------------------------------------------
-- Gate fact notifications (migration 0008): changes the submission gateway must see at once
-- ---------------------------------------------------------------------------------------------------
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

-- ---------------------------------------------------------------------------------------------------
-- Row-level security (migration 0011): tenant isolation the database enforces
-- ---------------------------------------------------------------------------------------------------
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

-- Migration 0014 (issue 15): every input of "a bought IP carries mail" notifies the gateways; the
-- node's own probe detail; cancelled provisioning intents. The triggers are replaced here rather than
-- defined above because they name columns migration 0013 added.
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

ALTER TABLE nodes ADD COLUMN port25_probe_detail text CHECK (length(port25_probe_detail) <= 1000);

ALTER TABLE provisioning_intents DROP CONSTRAINT provisioning_intents_status_check;
ALTER TABLE provisioning_intents ADD CONSTRAINT provisioning_intents_status_check CHECK (status IN ('pending', 'done', 'cancelled'));

-- Migration 0015 (issue 15): the messages each node's kumod holds, as it reports on every pull.
ALTER TABLE nodes ADD COLUMN queued_messages bigint CHECK (queued_messages >= 0);
ALTER TABLE nodes ADD COLUMN queued_messages_at timestamptz;
