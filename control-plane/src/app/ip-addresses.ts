/** Sending IP addresses and their lifecycle (warming -> active -> quarantined -> retired). */
import type { Selectable } from 'kysely';
import type { AppContext } from '../context.js';
import { inTransaction } from '../adapters/pg/database.js';
import type { IpAddressesTable, IpStateColumn } from '../adapters/pg/tables.js';
import { allowedTransitions, canTransition } from '../domain/fleet/ip-lifecycle.js';
import { bareAddress } from '../domain/fleet/naming.js';
import { AppError, notFound } from '../domain/shared/errors.js';
import type { Caller } from './actor.js';
import { writeAudit } from './audit.js';
import { afterCursor, sortKey, toPage, type Page } from './pagination.js';
import { iso, isoOrNull, numOrNull } from './views.js';

export interface IpView {
  id: string;
  address: string;
  node_id: string;
  state: IpStateColumn;
  warmup_day: number;
  rdns_name: string;
  monthly_cost_usd: number | null;
  pool_id: string | null;
  /** bought through a provider project: its Floating IP id (null for IPs registered by hand) */
  provider_floating_ip_id: string | null;
  /** when forward-confirmed reverse DNS last held; a bought IP carries no mail without it */
  rdns_verified_at: string | null;
  state_changed_at: string;
  last_sent_at: string | null;
  created_at: string;
  updated_at: string;
}

type Row = Selectable<IpAddressesTable> & { pool_id: string | null };


const view = (r: Row): IpView => ({
  id: r.id,
  address: bareAddress(r.address),
  node_id: r.node_id,
  state: r.state,
  warmup_day: r.warmup_day,
  rdns_name: r.rdns_name,
  monthly_cost_usd: numOrNull(r.monthly_cost_usd),
  pool_id: r.pool_id,
  provider_floating_ip_id: r.provider_floating_ip_id,
  rdns_verified_at: isoOrNull(r.rdns_verified_at),
  state_changed_at: iso(r.state_changed_at),
  last_sent_at: isoOrNull(r.last_sent_at),
  created_at: iso(r.created_at),
  updated_at: iso(r.updated_at),
});

function baseQuery(ctx: AppContext) {
  return ctx.db
    .selectFrom('ip_addresses')
    .leftJoin('ip_pool_members', 'ip_pool_members.ip_id', 'ip_addresses.id')
    .selectAll('ip_addresses')
    .select('ip_pool_members.pool_id');
}

export interface CreateIpInput {
  address: string;
  node_id: string;
  rdns_name: string;
  state?: 'warming' | 'active' | undefined;
  monthly_cost_usd?: number | null | undefined;
}

export async function createIp(ctx: AppContext, caller: Caller, input: CreateIpInput): Promise<IpView> {
  return inTransaction(ctx.db, async (tx) => {
    const node = await tx.selectFrom('nodes').select('id').where('id', '=', input.node_id).executeTakeFirst();
    if (!node) throw notFound('node', input.node_id);
    const row = await tx
      .insertInto('ip_addresses')
      .values({
        address: input.address,
        node_id: input.node_id,
        rdns_name: input.rdns_name,
        state: input.state ?? 'warming',
        monthly_cost_usd: input.monthly_cost_usd ?? null,
        state_changed_at: ctx.now(),
        created_at: ctx.now(),
        updated_at: ctx.now(),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const v = view({ ...row, pool_id: null });
    await writeAudit(tx, caller, { action: 'ip.create', targetType: 'ip_address', targetId: row.id, details: { after: v } });
    return v;
  });
}

export async function getIp(ctx: AppContext, id: string): Promise<IpView> {
  const row = await baseQuery(ctx).where('ip_addresses.id', '=', id).executeTakeFirst();
  if (!row) throw notFound('ip address', id);
  return view(row);
}

export async function listIps(
  ctx: AppContext,
  q: { limit: number; cursor?: string | undefined; node_id?: string | undefined; state?: IpStateColumn | undefined },
): Promise<Page<IpView>> {
  let query = baseQuery(ctx).select(sortKey('ip_addresses').as('_k'));
  if (q.node_id) query = query.where('ip_addresses.node_id', '=', q.node_id);
  if (q.state) query = query.where('ip_addresses.state', '=', q.state);
  const after = afterCursor('ip_addresses', q.cursor);
  if (after) query = query.where(after);
  const page = toPage(await query.orderBy('ip_addresses.created_at').orderBy('ip_addresses.id').limit(q.limit + 1).execute(), q.limit);
  return { items: page.items.map(view), next_cursor: page.next_cursor };
}

export interface UpdateIpInput {
  rdns_name?: string | undefined;
  monthly_cost_usd?: number | null | undefined;
  state?: IpStateColumn | undefined;
  reason?: string | undefined;
}

export async function updateIp(ctx: AppContext, caller: Caller, id: string, patch: UpdateIpInput): Promise<IpView> {
  return inTransaction(ctx.db, async (tx) => {
    const before = await tx.selectFrom('ip_addresses').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    if (!before) throw notFound('ip address', id);
    const changes: Record<string, unknown> = { updated_at: ctx.now() };
    if (patch.rdns_name !== undefined) changes.rdns_name = patch.rdns_name;
    if (patch.monthly_cost_usd !== undefined) changes.monthly_cost_usd = patch.monthly_cost_usd;
    if (patch.state !== undefined && patch.state !== before.state) {
      if (!canTransition(before.state, patch.state)) {
        throw new AppError('INVALID_STATE_TRANSITION', `an IP cannot go from ${before.state} to ${patch.state}`, {
          context: { from: before.state, to: patch.state, allowed: allowedTransitions(before.state) },
        });
      }
      changes.state = patch.state;
      changes.state_changed_at = ctx.now();
      // warming always restarts the ramp: receivers judge an IP by its recent history
      if (patch.state === 'warming') changes.warmup_day = 0;
    }
    if (patch.state === 'retired') {
      await tx.deleteFrom('ip_pool_members').where('ip_id', '=', id).execute();
    }
    await tx.updateTable('ip_addresses').set(changes).where('id', '=', id).execute();
    const after = await tx
      .selectFrom('ip_addresses')
      .leftJoin('ip_pool_members', 'ip_pool_members.ip_id', 'ip_addresses.id')
      .selectAll('ip_addresses')
      .select('ip_pool_members.pool_id')
      .where('ip_addresses.id', '=', id)
      .executeTakeFirstOrThrow();
    const stateChanged = before.state !== after.state;
    await writeAudit(tx, caller, {
      action: stateChanged ? `ip.state.${after.state}` : 'ip.update',
      targetType: 'ip_address',
      targetId: id,
      details: { before: view({ ...before, pool_id: null }), after: view(after), reason: patch.reason ?? null },
    });
    return view(after);
  });
}

export async function deleteIp(ctx: AppContext, caller: Caller, id: string): Promise<void> {
  await inTransaction(ctx.db, async (tx) => {
    const member = await tx.selectFrom('ip_pool_members').select('pool_id').where('ip_id', '=', id).executeTakeFirst();
    if (member) throw new AppError('CONFLICT', `the IP is still a member of pool ${member.pool_id}; remove it from the pool (or retire it) first`, { context: { pool_id: member.pool_id } });
    const before = await tx.deleteFrom('ip_addresses').where('id', '=', id).returningAll().executeTakeFirst();
    if (!before) throw notFound('ip address', id);
    await writeAudit(tx, caller, { action: 'ip.delete', targetType: 'ip_address', targetId: id, details: { before: view({ ...before, pool_id: null }) } });
  });
}
