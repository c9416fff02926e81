/** IP pools (one tier each) and their weighted members. */
import type { Selectable } from 'kysely';
import type { AppContext } from '../context.js';
import { inTransaction } from '../adapters/pg/database.js';
import type { IpPoolsTable, PoolTier } from '../adapters/pg/tables.js';
import { AppError, notFound } from '../domain/shared/errors.js';
import type { Caller } from './actor.js';
import { writeAudit } from './audit.js';
import { afterCursor, sortKey, toPage, type Page } from './pagination.js';
import { definedOnly } from './tenants.js';
import { iso } from './views.js';
import { bareAddress } from '../domain/fleet/naming.js';

export interface PoolMemberView {
  ip_id: string;
  address: string;
  node_id: string;
  state: string;
  weight: number;
  added_at: string;
}

export interface PoolView {
  id: string;
  name: string;
  tier: PoolTier;
  description: string;
  members: PoolMemberView[];
  created_at: string;
  updated_at: string;
}

async function members(ctx: AppContext, poolIds: string[]): Promise<Map<string, PoolMemberView[]>> {
  const out = new Map<string, PoolMemberView[]>(poolIds.map((id) => [id, []]));
  if (poolIds.length === 0) return out;
  const rows = await ctx.db
    .selectFrom('ip_pool_members')
    .innerJoin('ip_addresses', 'ip_addresses.id', 'ip_pool_members.ip_id')
    .select(['ip_pool_members.pool_id', 'ip_pool_members.ip_id', 'ip_addresses.address', 'ip_addresses.node_id', 'ip_addresses.state', 'ip_pool_members.weight', 'ip_pool_members.added_at'])
    .where('ip_pool_members.pool_id', 'in', poolIds)
    .orderBy('ip_addresses.address')
    .execute();
  for (const r of rows) {
    out.get(r.pool_id)!.push({
      ip_id: r.ip_id,
      address: bareAddress(r.address),
      node_id: r.node_id,
      state: r.state,
      weight: r.weight,
      added_at: iso(r.added_at),
    });
  }
  return out;
}

const view = (p: Selectable<IpPoolsTable>, m: PoolMemberView[]): PoolView => ({
  id: p.id,
  name: p.name,
  tier: p.tier,
  description: p.description,
  members: m,
  created_at: iso(p.created_at),
  updated_at: iso(p.updated_at),
});

export async function createPool(ctx: AppContext, caller: Caller, input: { name: string; tier: PoolTier; description?: string | undefined }): Promise<PoolView> {
  return inTransaction(ctx.db, async (tx) => {
    const row = await tx
      .insertInto('ip_pools')
      .values({ name: input.name, tier: input.tier, description: input.description ?? '', created_at: ctx.now(), updated_at: ctx.now() })
      .returningAll()
      .executeTakeFirstOrThrow();
    await writeAudit(tx, caller, { action: 'pool.create', targetType: 'ip_pool', targetId: row.id, details: { after: view(row, []) } });
    return view(row, []);
  });
}

export async function getPool(ctx: AppContext, id: string): Promise<PoolView> {
  const row = await ctx.db.selectFrom('ip_pools').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('ip pool', id);
  return view(row, (await members(ctx, [id])).get(id)!);
}

export async function listPools(ctx: AppContext, q: { limit: number; cursor?: string | undefined; tier?: PoolTier | undefined }): Promise<Page<PoolView>> {
  let query = ctx.db.selectFrom('ip_pools').selectAll().select(sortKey('ip_pools').as('_k'));
  if (q.tier) query = query.where('tier', '=', q.tier);
  const after = afterCursor('ip_pools', q.cursor);
  if (after) query = query.where(after);
  const page = toPage(await query.orderBy('created_at').orderBy('id').limit(q.limit + 1).execute(), q.limit);
  const m = await members(ctx, page.items.map((p) => p.id));
  return { items: page.items.map((p) => view(p, m.get(p.id)!)), next_cursor: page.next_cursor };
}

export async function updatePool(ctx: AppContext, caller: Caller, id: string, patch: { name?: string | undefined; description?: string | undefined }): Promise<PoolView> {
  await inTransaction(ctx.db, async (tx) => {
    const before = await tx.selectFrom('ip_pools').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    if (!before) throw notFound('ip pool', id);
    const row = await tx.updateTable('ip_pools').set({ ...definedOnly(patch), updated_at: ctx.now() }).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
    await writeAudit(tx, caller, { action: 'pool.update', targetType: 'ip_pool', targetId: id, details: { before: view(before, []), after: view(row, []) } });
  });
  return getPool(ctx, id);
}

export async function deletePool(ctx: AppContext, caller: Caller, id: string): Promise<void> {
  await inTransaction(ctx.db, async (tx) => {
    // tenant_placements.pool_id is ON DELETE RESTRICT: a pool tenants are placed in answers 409
    const before = await tx.deleteFrom('ip_pools').where('id', '=', id).returningAll().executeTakeFirst();
    if (!before) throw notFound('ip pool', id);
    await writeAudit(tx, caller, { action: 'pool.delete', targetType: 'ip_pool', targetId: id, details: { before: view(before, []) } });
  });
}

/** Add an IP to a pool or change its weight. An IP serves one pool; a retired or quarantined IP none. */
export async function putPoolMember(ctx: AppContext, caller: Caller, poolId: string, ipId: string, weight: number): Promise<PoolView> {
  await inTransaction(ctx.db, async (tx) => {
    const pool = await tx.selectFrom('ip_pools').select(['id', 'tier']).where('id', '=', poolId).forUpdate().executeTakeFirst();
    if (!pool) throw notFound('ip pool', poolId);
    const ip = await tx.selectFrom('ip_addresses').select(['id', 'state']).where('id', '=', ipId).executeTakeFirst();
    if (!ip) throw notFound('ip address', ipId);
    if ((ip.state === 'retired' || ip.state === 'quarantined') && pool.tier !== 'quarantine') {
      throw new AppError('CONFLICT', `a ${ip.state} IP cannot serve a ${pool.tier} pool`, { context: { state: ip.state, tier: pool.tier } });
    }
    const existing = await tx.selectFrom('ip_pool_members').select(['pool_id', 'weight']).where('ip_id', '=', ipId).executeTakeFirst();
    if (existing && existing.pool_id !== poolId) {
      throw new AppError('CONFLICT', `the IP already serves pool ${existing.pool_id}; an IP belongs to one pool at a time`, { context: { pool_id: existing.pool_id } });
    }
    if (existing) {
      await tx.updateTable('ip_pool_members').set({ weight }).where('ip_id', '=', ipId).execute();
    } else {
      await tx.insertInto('ip_pool_members').values({ pool_id: poolId, ip_id: ipId, weight }).execute();
    }
    await writeAudit(tx, caller, {
      action: existing ? 'pool.member_weight' : 'pool.member_add',
      targetType: 'ip_pool',
      targetId: poolId,
      details: { ip_id: ipId, before: existing ? { weight: existing.weight } : null, after: { weight } },
    });
  });
  return getPool(ctx, poolId);
}

export async function removePoolMember(ctx: AppContext, caller: Caller, poolId: string, ipId: string): Promise<PoolView> {
  await inTransaction(ctx.db, async (tx) => {
    const gone = await tx.deleteFrom('ip_pool_members').where('pool_id', '=', poolId).where('ip_id', '=', ipId).returning(['weight']).executeTakeFirst();
    if (!gone) throw notFound('pool member', ipId);
    await writeAudit(tx, caller, { action: 'pool.member_remove', targetType: 'ip_pool', targetId: poolId, details: { ip_id: ipId, before: { weight: gone.weight } } });
  });
  return getPool(ctx, poolId);
}
