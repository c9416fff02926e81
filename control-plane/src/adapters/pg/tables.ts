/**
 * Row types for Kysely, mirroring schema.sql (snake_case, as in the database). Only the columns the
 * application reads or writes are typed; `Generated` marks columns with database defaults.
 */
import type { ColumnType, Generated } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
/** pg returns numeric as string to keep precision; we convert at the edge */
type Numeric = ColumnType<string, number | string, number | string>;
type NullableNumeric = ColumnType<string | null, number | string | null | undefined, number | string | null>;
type Json<T = unknown> = ColumnType<T, string, string>;

export type TokenScope = 'read' | 'write' | 'admin';
export type VerificationState = 'pending' | 'verified' | 'failed';
export type IpStateColumn = 'warming' | 'active' | 'quarantined' | 'retired';
export type PoolTier = 'premium' | 'standard' | 'rehabilitation' | 'quarantine';

export interface OperatorsTable {
  id: Generated<string>;
  email: string;
  name: string;
  created_at: Generated<Date>;
  disabled_at: NullableTimestamp;
}

export interface ApiTokensTable {
  id: Generated<string>;
  operator_id: string | null;
  tenant_id: string | null;
  name: string;
  prefix: string;
  token_sha256: Buffer;
  scopes: ColumnType<TokenScope[], string, string>;
  created_at: Generated<Date>;
  expires_at: NullableTimestamp;
  last_used_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
}

export interface TenantsTable {
  id: Generated<string>;
  slug: string;
  display_name: string;
  pseudonym: string;
  status: ColumnType<'active' | 'suspended', 'active' | 'suspended' | undefined>;
  leaderboard_opt_out: ColumnType<boolean, boolean | undefined>;
  /** the engagement terms the tenant reports (opens, replies); the others take their prior */
  engagement_reported: ColumnType<string[], string[] | undefined, string[]>;
  created_at: Generated<Date>;
  updated_at: Timestamp;
}

export interface SmtpCredentialsTable {
  id: Generated<string>;
  tenant_id: string;
  username: string;
  password_hash: string;
  description: ColumnType<string, string | undefined>;
  created_at: Generated<Date>;
  last_used_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
}

export interface SendingDomainsTable {
  id: Generated<string>;
  tenant_id: string;
  domain: string;
  dkim_selector: string;
  dkim_algorithm: 'rsa-sha256' | 'ed25519-sha256';
  dkim_public_key: string;
  dkim_private_key_enc: Buffer;
  dkim_key_id: string;
  spf_state: ColumnType<VerificationState, VerificationState | undefined>;
  dkim_state: ColumnType<VerificationState, VerificationState | undefined>;
  dmarc_state: ColumnType<VerificationState, VerificationState | undefined>;
  verified_at: NullableTimestamp;
  created_at: Generated<Date>;
  updated_at: Timestamp;
}

export interface MailboxesTable {
  id: Generated<string>;
  tenant_id: string;
  domain_id: string;
  local_part: string;
  display_name: ColumnType<string, string | undefined>;
  created_at: Generated<Date>;
}

export interface NodesTable {
  id: Generated<string>;
  name: string;
  provider: ColumnType<string, string | undefined>;
  region: string;
  public_address: string;
  admin_url: string | null;
  token_sha256: Buffer;
  token_prefix: string;
  monthly_cost_usd: NullableNumeric;
  last_seen_at: NullableTimestamp;
  applied_policy_version_id: ColumnType<string | null, string | number | null | undefined>;
  created_at: Generated<Date>;
  updated_at: Timestamp;
  relay_host: string | null;
  relay_port: ColumnType<number, number | undefined, number>;
  served_policy_version_id: ColumnType<string | null, string | number | null | undefined>;
  served_at: NullableTimestamp;
  applied_at: NullableTimestamp;
  applied_sha256: string | null;
  running_copy: 'generated' | 'last_known_good' | 'none' | null;
  policy_error: string | null;
  policy_error_at: NullableTimestamp;
  last_pull_at: NullableTimestamp;
  canary: ColumnType<boolean, boolean | undefined, boolean>;
  provider_project_id: ColumnType<string | null, string | null | undefined, string | null>;
  provider_server_id: ColumnType<string | null, string | null | undefined, string | null>;
  provider_idempotency_key: ColumnType<string | null, string | null | undefined, string | null>;
  port25_probe_ok: ColumnType<boolean | null, boolean | null | undefined, boolean | null>;
  port25_probe_at: NullableTimestamp;
  port25_probe_detail: ColumnType<string | null, string | null | undefined, string | null>;
  queued_messages: ColumnType<string | null, number | null | undefined, number | null>;
  queued_messages_at: NullableTimestamp;
}

export interface SubmissionNetworksTable {
  id: Generated<string>;
  tenant_id: string;
  network: string;
  description: ColumnType<string, string | undefined, string>;
  created_at: Generated<Date>;
}

export interface WarmingMembersTable {
  id: Generated<string>;
  kind: 'peer' | 'golden_seed';
  address: string;
  provider: 'gmail' | 'microsoft' | 'yahoo' | 'other';
  tenant_id: string | null;
  mailbox_id: string | null;
  weight: ColumnType<string, number | string | undefined, number | string>;
  monthly_cost_usd: NullableNumeric;
  state: ColumnType<'active' | 'paused' | 'isolated' | 'retired', 'active' | 'paused' | 'isolated' | 'retired' | undefined>;
  joined_at: Generated<Date>;
  ramp_kind: ColumnType<'new' | 'prewarmed', 'new' | 'prewarmed' | undefined>;
  ramp_started_on: ColumnType<string | null, string | null | undefined>;
  listed: ColumnType<boolean, boolean | undefined>;
  paused_until: NullableTimestamp;
  risk_reason: ColumnType<string | null, string | null | undefined>;
  cut_pct: ColumnType<string, number | string | undefined, number | string>;
}

export interface WarmingSendsTable {
  id: Generated<string>;
  day: ColumnType<string, string, string>;
  sender_id: string;
  recipient_id: string;
  tenant_id: string;
  kind: 'new' | 'reply';
  reply_to: string | null;
  scheduled_at: Timestamp;
  message_id: string;
  subject: string;
  status: ColumnType<'planned' | 'sent' | 'failed', 'planned' | 'sent' | 'failed' | undefined>;
  attempts: ColumnType<number, number | undefined>;
  last_error: string | null;
  sent_at: NullableTimestamp;
  opened_at: NullableTimestamp;
  replied_at: NullableTimestamp;
  rescued_at: NullableTimestamp;
  created_at: Generated<Date>;
}

export interface IpAddressesTable {
  id: Generated<string>;
  address: string;
  node_id: string;
  state: ColumnType<IpStateColumn, IpStateColumn | undefined>;
  warmup_day: ColumnType<number, number | undefined>;
  rdns_name: string;
  monthly_cost_usd: NullableNumeric;
  state_changed_at: Timestamp;
  last_sent_at: NullableTimestamp;
  warmup_evaluated_on: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Generated<Date>;
  updated_at: Timestamp;
  provider_project_id: ColumnType<string | null, string | null | undefined, string | null>;
  provider_floating_ip_id: ColumnType<string | null, string | null | undefined, string | null>;
  provider_idempotency_key: ColumnType<string | null, string | null | undefined, string | null>;
  ptr_name: ColumnType<string | null, string | null | undefined, string | null>;
  rdns_verified_at: NullableTimestamp;
}

export interface ProviderProjectsTable {
  id: Generated<string>;
  provider: ColumnType<'hetzner', 'hetzner' | undefined, 'hetzner'>;
  name: string;
  api_url: string;
  token_enc: Buffer;
  token_key_id: string;
  token_read_only: ColumnType<boolean, boolean | undefined, boolean>;
  port25_egress: ColumnType<'blocked' | 'requested' | 'open', 'blocked' | 'requested' | 'open' | undefined, 'blocked' | 'requested' | 'open'>;
  port25_changed_at: Timestamp;
  port25_note: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Generated<Date>;
  updated_at: Timestamp;
}

export interface ProvisioningIntentsTable {
  id: Generated<string>;
  project_id: string;
  kind: 'server' | 'floating_ip';
  idempotency_key: string;
  node_name: ColumnType<string | null, string | null | undefined, string | null>;
  node_id: ColumnType<string | null, string | null | undefined, string | null>;
  spec: Json<Record<string, unknown>>;
  node_token_enc: ColumnType<Buffer | null, Buffer | null | undefined, Buffer | null>;
  node_token_key_id: ColumnType<string | null, string | null | undefined, string | null>;
  status: ColumnType<'pending' | 'done' | 'cancelled', 'pending' | 'done' | 'cancelled' | undefined, 'pending' | 'done' | 'cancelled'>;
  resource_id: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Generated<Date>;
  updated_at: Timestamp;
}

export interface IpPoolsTable {
  id: Generated<string>;
  name: string;
  tier: PoolTier;
  description: ColumnType<string, string | undefined>;
  created_at: Generated<Date>;
  updated_at: Timestamp;
}

export interface IpPoolMembersTable {
  pool_id: string;
  ip_id: string;
  weight: number;
  added_at: Generated<Date>;
}

export interface SettingsTable {
  section: string;
  value: Json<Record<string, unknown>>;
  updated_at: Timestamp;
  updated_by: string | null;
}

export interface AuditLogTable {
  id: Generated<string>;
  at: Generated<Date>;
  actor_type: 'operator' | 'tenant' | 'node' | 'system';
  actor_id: string | null;
  action: string;
  target_type: string;
  target_id: string | null;
  tenant_id: string | null;
  request_id: string | null;
  details: Json<Record<string, unknown>>;
}

export type LaneColumn = 'external' | 'warming';

export interface DeliveryEventsTable {
  id: Generated<string>;
  source_id: string;
  node_id: string | null;
  tenant_id: string | null;
  lane: LaneColumn;
  record_type: string;
  outcome: string;
  message_id: string | null;
  sender: string | null;
  recipient: string | null;
  recipient_domain: string | null;
  egress_pool: string | null;
  egress_source: string | null;
  response_code: number | null;
  enhanced_code: string | null;
  response_text: string | null;
  bounce_classification: string | null;
  occurred_at: Timestamp;
  ingested_at: Generated<Date>;
  node_fault: ColumnType<boolean, boolean | undefined, boolean>;
}

export interface EngagementEventsTable {
  id: Generated<string>;
  source_id: string;
  tenant_id: string;
  lane: LaneColumn;
  kind: 'open' | 'click' | 'reply' | 'not_spam';
  message_id: string | null;
  recipient: string | null;
  weight: Numeric;
  occurred_at: Timestamp;
  ingested_at: Generated<Date>;
}

export interface TenantDailyMetricsTable {
  tenant_id: string;
  day: ColumnType<string, string, string>;
  lane: LaneColumn;
  sent: ColumnType<string, number, number>;
  delivered: ColumnType<string, number, number>;
  hard_bounces: ColumnType<string, number, number>;
  streak_bounces: ColumnType<string, number, number>;
  expired: ColumnType<string, number, number>;
  soft_bounces: ColumnType<string, number, number>;
  complaints: ColumnType<string, number, number>;
  opens: ColumnType<string, number, number>;
  clicks: ColumnType<string, number, number>;
  replies: ColumnType<string, number, number>;
}

export interface TrustScoreSnapshotsTable {
  id: Generated<string>;
  tenant_id: string;
  computed_at: Timestamp;
  score: Numeric;
  components: Json<Record<string, unknown>>;
  locked: boolean;
  lock_reason: string | null;
  window_days: number;
}

export interface TenantTrustTable {
  tenant_id: string;
  score: Numeric;
  basis: 'wilson_interval' | 'insufficient_sample';
  locked: boolean;
  lock_kind: 'authentication' | 'score' | null;
  locked_at: NullableTimestamp;
  lock_reason: string | null;
  rehab_target_sends: number | null;
  /** clean warming sends still needed to unlock under the rule, when computed; null: not locked, or clean sends alone cannot unlock */
  rehab_remaining_sends: number | null;
  computed_at: Timestamp;
}

export type SuppressionReason = 'hard_bounce' | 'complaint' | 'unsubscribe' | 'manual' | 'import';

export interface SuppressionsTable {
  id: Generated<string>;
  tenant_id: string | null;
  pattern: string;
  reason: SuppressionReason;
  note: ColumnType<string, string | undefined>;
  created_at: Generated<Date>;
  expires_at: NullableTimestamp;
  /** xid8 of the inserting transaction (set by the database, never written): commit order for the gateway's index */
  created_xid: ColumnType<string, never, never>;
}

import type { ShardEntry } from '../../domain/pools/placement-plan.js';
export type { ShardEntry };

export interface TenantPlacementsTable {
  id: Generated<string>;
  tenant_id: string;
  pool_id: string;
  tier: PoolTier;
  origin: 'engine' | 'operator';
  reason: string;
  inputs: Json<Record<string, unknown>>;
  placed_at: Timestamp;
  superseded_at: NullableTimestamp;
  override_expires_at: NullableTimestamp;
  shard: Json<ShardEntry[]>;
}

export interface ReputationIncidentsTable {
  id: Generated<string>;
  pool_id: string | null;
  detected_at: Timestamp;
  window_start: Timestamp;
  window_end: Timestamp;
  level: 'review' | 'pause';
  assessment: Json<Record<string, unknown>>;
  actions: Json<unknown[]>;
  kind: ColumnType<'pool_reputation' | 'policy_rollout', 'pool_reputation' | 'policy_rollout' | undefined>;
  rollout_id: ColumnType<string | null, string | number | null | undefined>;
}

export interface TenantQuarantinesTable {
  id: Generated<string>;
  tenant_id: string;
  incident_id: string | null;
  reason: string;
  starts_at: Timestamp;
  ends_at: Timestamp;
  released_at: NullableTimestamp;
}

export interface PolicyVersionsTable {
  id: Generated<string>;
  node_id: string;
  version: number;
  content_sha256: string;
  model_sha256: string;
  lua_text: string;
  signature: string;
  created_at: Timestamp;
  published_at: NullableTimestamp;
  rolled_back_at: NullableTimestamp;
  rollout_id: ColumnType<string | null, string | number | null | undefined>;
  safety: Json<{ held: string[]; carrying: string[]; tenants: string[] }> | null;
}

export type RolloutState = 'canary' | 'soaking' | 'promoting' | 'done' | 'rolled_back' | 'skipped' | 'superseded';

export interface PolicyRolloutsTable {
  id: Generated<string>;
  state: RolloutState;
  urgent: boolean;
  reason: string;
  canary_node_ids: string[];
  node_versions: Json<Record<string, number>>;
  render_sha256: string;
  baseline: Json<Record<string, unknown>> | null;
  health: Json<Record<string, unknown>> | null;
  created_at: Timestamp;
  canary_applied_at: NullableTimestamp;
  promoted_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  outcome: string | null;
}

export interface PolicyAutopilotTable {
  id: ColumnType<boolean, boolean | undefined, never>;
  paused: boolean;
  paused_at: NullableTimestamp;
  paused_reason: string | null;
  skipped_render_sha256: string | null;
  pending_render_sha256: string | null;
  pending_since: NullableTimestamp;
  pending_changed_at: NullableTimestamp;
}

export interface Database {
  operators: OperatorsTable;
  api_tokens: ApiTokensTable;
  tenants: TenantsTable;
  smtp_credentials: SmtpCredentialsTable;
  sending_domains: SendingDomainsTable;
  mailboxes: MailboxesTable;
  nodes: NodesTable;
  submission_networks: SubmissionNetworksTable;
  warming_members: WarmingMembersTable;
  warming_sends: WarmingSendsTable;
  ip_addresses: IpAddressesTable;
  ip_pools: IpPoolsTable;
  ip_pool_members: IpPoolMembersTable;
  settings: SettingsTable;
  audit_log: AuditLogTable;
  delivery_events: DeliveryEventsTable;
  engagement_events: EngagementEventsTable;
  tenant_daily_metrics: TenantDailyMetricsTable;
  trust_score_snapshots: TrustScoreSnapshotsTable;
  tenant_trust: TenantTrustTable;
  suppressions: SuppressionsTable;
  tenant_placements: TenantPlacementsTable;
  reputation_incidents: ReputationIncidentsTable;
  tenant_quarantines: TenantQuarantinesTable;
  policy_versions: PolicyVersionsTable;
  policy_rollouts: PolicyRolloutsTable;
  policy_autopilot: PolicyAutopilotTable;
  provider_projects: ProviderProjectsTable;
  provisioning_intents: ProvisioningIntentsTable;
}

export { type Numeric };
