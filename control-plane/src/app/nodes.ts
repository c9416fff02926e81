/** KumoMTA nodes. The node token (shown once) authenticates policy pulls and log-hook posts. */
import type { Selectable } from 'kysely';
import type { AppContext } from '../context.js';
import { inTransaction } from '../adapters/pg/database.js';
import type { NodesTable } from '../adapters/pg/tables.js';
import { issueToken, sha256 } from '../adapters/crypto/tokens.js';
import { mayForgetNode } from '../domain/provisioning/lifecycle.js';
import { conflict, notFound } from '../domain/shared/errors.js';
import type { Caller } from './actor.js';
import { writeAudit } from './audit.js';
import { afterCursor, sortKey, toPage, type Page } from './pagination.js';
import { definedOnly } from './tenants.js';
import { iso, isoOrNull, numOrNull } from './views.js';

export interface NodeView {
  id: string;
  name: string;
  provider: string;
  region: string;
  public_address: string;
  admin_url: string | null;
  relay_host: string | null;
  relay_port: number;
  token_prefix: string;
  monthly_cost_usd: number | null;
  last_seen_at: string | null;
  last_pull_at: string | null;
  canary: boolean;
  served_policy_version_id: string | null;
  served_at: string | null;
  applied_policy_version_id: string | null;
  applied_at: string | null;
  /** bought through a provider project (POST /v1/nodes/provision); null: registered by hand */
  provider_project_id: string | null;
  provider_server_id: string | null;
  /** the node's last conclusive port-25 probe (its own kcp-egress-probe, or an operator's record), and what the last probe saw */
  port25_probe: { connected: boolean; at: string; detail: string | null } | null;
  /** how many messages the node's kumod held at its last pull that said (X-KCP-Queued-Messages) */
  queued_messages: { count: number; at: string } | null;
  created_at: string;
  updated_at: string;
}

const COLUMNS = [
  'id', 'name', 'provider', 'region', 'public_address', 'admin_url', 'relay_host', 'relay_port', 'token_prefix', 'monthly_cost_usd', 'last_seen_at', 'last_pull_at',
  'canary', 'served_policy_version_id', 'served_at', 'applied_policy_version_id', 'applied_at', 'created_at', 'updated_at',
  'provider_project_id', 'provider_server_id', 'port25_probe_ok', 'port25_probe_at', 'port25_probe_detail', 'queued_messages', 'queued_messages_at',
] as const;
type Row = Pick<Selectable<NodesTable>, (typeof COLUMNS)[number]>;
const idOrNull = (v: string | null): string | null => (v === null ? null : String(v));

const view = (r: Row): NodeView => ({
  id: r.id,
  name: r.name,
  provider: r.provider,
  region: r.region,
  public_address: r.public_address,
  admin_url: r.admin_url,
  relay_host: r.relay_host,
  relay_port: r.relay_port,
  token_prefix: r.token_prefix,
  monthly_cost_usd: numOrNull(r.monthly_cost_usd),
  last_seen_at: isoOrNull(r.last_seen_at),
  last_pull_at: isoOrNull(r.last_pull_at),
  canary: r.canary,
  served_policy_version_id: idOrNull(r.served_policy_version_id),
  served_at: isoOrNull(r.served_at),
  applied_policy_version_id: idOrNull(r.applied_policy_version_id),
  applied_at: isoOrNull(r.applied_at),
  provider_project_id: r.provider_project_id,
  provider_server_id: r.provider_server_id,
  port25_probe: r.port25_probe_ok === null || r.port25_probe_at === null ? null : { connected: r.port25_probe_ok, at: iso(r.port25_probe_at), detail: r.port25_probe_detail },
  queued_messages: r.queued_messages === null || r.queued_messages_at === null ? null : { count: Number(r.queued_messages), at: iso(r.queued_messages_at) },
  created_at: iso(r.created_at),
  updated_at: iso(r.updated_at),
});

export interface CreateNodeInput {
  name: string;
  provider?: string | undefined;
  region: string;
  public_address: string;
  admin_url?: string | null | undefined;
  relay_host?: string | null | undefined;
  relay_port?: number | undefined;
  monthly_cost_usd?: number | null | undefined;
  canary?: boolean | undefined;
}

export async function createNode(ctx: AppContext, caller: Caller, input: CreateNodeInput): Promise<NodeView & { token: string }> {
  const t = issueToken('node');
  return inTransaction(ctx.db, async (tx) => {
    const row = await tx
      .insertInto('nodes')
      .values({
        name: input.name,
        provider: input.provider,
        region: input.region,
        public_address: input.public_address,
        admin_url: input.admin_url ?? null,
        relay_host: input.relay_host ?? null,
        relay_port: input.relay_port,
        monthly_cost_usd: input.monthly_cost_usd ?? null,
        canary: input.canary ?? false,
        token_sha256: t.sha256,
        token_prefix: t.prefix,
        created_at: ctx.now(),
        updated_at: ctx.now(),
      })
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    await writeAudit(tx, caller, { action: 'node.create', targetType: 'node', targetId: row.id, details: { after: view(row) } });
    return { ...view(row), token: t.token };
  });
}

export async function getNode(ctx: AppContext, id: string): Promise<NodeView> {
  const row = await ctx.db.selectFrom('nodes').select(COLUMNS).where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('node', id);
  return view(row);
}

export async function listNodes(ctx: AppContext, q: { limit: number; cursor?: string | undefined }): Promise<Page<NodeView>> {
  let query = ctx.db.selectFrom('nodes').select(COLUMNS).select(sortKey('nodes').as('_k'));
  const after = afterCursor('nodes', q.cursor);
  if (after) query = query.where(after);
  const page = toPage(await query.orderBy('created_at').orderBy('id').limit(q.limit + 1).execute(), q.limit);
  return { items: page.items.map(view), next_cursor: page.next_cursor };
}

export async function updateNode(
  ctx: AppContext,
  caller: Caller,
  id: string,
  patch: Partial<Pick<CreateNodeInput, 'provider' | 'region' | 'public_address' | 'admin_url' | 'relay_host' | 'relay_port' | 'monthly_cost_usd' | 'canary'>>,
): Promise<NodeView> {
  return inTransaction(ctx.db, async (tx) => {
    const before = await tx.selectFrom('nodes').select(COLUMNS).where('id', '=', id).forUpdate().executeTakeFirst();
    if (!before) throw notFound('node', id);
    const row = await tx.updateTable('nodes').set({ ...definedOnly(patch), updated_at: ctx.now() }).where('id', '=', id).returning(COLUMNS).executeTakeFirstOrThrow();
    await writeAudit(tx, caller, { action: 'node.update', targetType: 'node', targetId: id, details: { before: view(before), after: view(row) } });
    return view(row);
  });
}

/** A new token; the old one stops working at once (the node must be given the new one). */
export async function rotateNodeToken(ctx: AppContext, caller: Caller, id: string): Promise<NodeView & { token: string }> {
  const t = issueToken('node');
  return inTransaction(ctx.db, async (tx) => {
    const row = await tx
      .updateTable('nodes')
      .set({ token_sha256: t.sha256, token_prefix: t.prefix, updated_at: ctx.now() })
      .where('id', '=', id)
      .returning(COLUMNS)
      .executeTakeFirst();
    if (!row) throw notFound('node', id);
    await writeAudit(tx, caller, { action: 'node.token_rotate', targetType: 'node', targetId: id, details: { after: { token_prefix: t.prefix } } });
    return { ...view(row), token: t.token };
  });
}

export async function deleteNode(ctx: AppContext, caller: Caller, id: string): Promise<void> {
  await inTransaction(ctx.db, async (tx) => {
    const bought = await tx.selectFrom('nodes').select(['name', 'provider_server_id']).where('id', '=', id).forUpdate().executeTakeFirst();
    const forget = mayForgetNode({ providerServerId: bought?.provider_server_id ?? null });
    if (bought && !forget.ok) {
      throw conflict(`node ${bought.name} was bought through a provider project and its server ${forget.error.providerServerId} may still be billed; POST /v1/nodes/${id}/retire-from-provider deletes the server, then the node`, {
        provider_server_id: forget.error.providerServerId,
        retire: `/v1/nodes/${id}/retire-from-provider`,
      });
    }
    // ip_addresses.node_id is ON DELETE RESTRICT: a node with IPs answers 409 through translatePgError
    const before = await tx.deleteFrom('nodes').where('id', '=', id).returning(COLUMNS).executeTakeFirst();
    if (!before) throw notFound('node', id);
    await writeAudit(tx, caller, { action: 'node.delete', targetType: 'node', targetId: id, details: { before: view(before) } });
  });
}

/** The node behind a node token, or null. Used by the policy-pull and event-ingest endpoints. */
export async function authenticateNode(ctx: AppContext, token: string): Promise<{ id: string; name: string } | null> {
  if (!/^node_[0-9A-Za-z]{40}$/.test(token)) return null;
  const row = await ctx.db.selectFrom('nodes').select(['id', 'name']).where('token_sha256', '=', sha256(token)).executeTakeFirst();
  return row ?? null;
}
