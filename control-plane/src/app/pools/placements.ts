/** Placement decisions through the API: current placement and history, overrides, quarantine release. */
import { sql } from 'kysely';
import type { AppContext } from '../../context.js';
import { inTransaction } from '../../adapters/pg/database.js';
import type { ShardEntry } from '../../adapters/pg/tables.js';
import type { Tier } from '../../domain/pools/placement.js';
import { AppError, notFound } from '../../domain/shared/errors.js';
import type { Caller } from '../actor.js';
import { writeAudit } from '../audit.js';
import { cursorId, pageById, type Page } from '../pagination.js';
import { readSettings } from '../settings.js';
import { iso, isoOrNull } from '../views.js';
import { loadPooledIps } from './fleet-state.js';
import { recordPlacement, runPlacementEngine, shardFor, type PlacementRunSummary } from './placement-engine.js';

export interface PlacementView {
  id: string;
  tenant_id: string;
  tier: Tier;
  pool_id: string;
  origin: 'engine' | 'operator';
  reason: string;
  inputs: Record<string, unknown>;
  shard: ShardEntry[];
  placed_at: string;
  superseded_at: string | null;
  override_expires_at: string | null;
}

type Row = { id: string; tenant_id: string; tier: Tier; pool_id: string; origin: 'engine' | 'operator'; reason: string; inputs: Record<string, unknown>; shard: ShardEntry[]; placed_at: Date; superseded_at: Date | null; override_expires_at: Date | null };

const view = (r: Row): PlacementView => ({
  id: String(r.id),
  tenant_id: r.tenant_id,
  tier: r.tier,
  pool_id: r.pool_id,
  origin: r.origin,
  reason: r.reason,
  inputs: r.inputs,
  shard: r.shard,
  placed_at: iso(r.placed_at),
  superseded_at: isoOrNull(r.superseded_at),
  override_expires_at: isoOrNull(r.override_expires_at),
});

export async function getCurrentPlacement(ctx: AppContext, tenantId: string): Promise<PlacementView & { quarantine: { until: string; reason: string } | null }> {
  const row = await ctx.db.selectFrom('tenant_placements').selectAll().where('tenant_id', '=', tenantId).where('superseded_at', 'is', null).executeTakeFirst();
  if (!row) {
    const t = await ctx.db.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst();
    throw t ? new AppError('NOT_FOUND', `tenant ${tenantId} has not been placed yet (the placement engine runs every few minutes, or POST /v1/placements/run)`) : notFound('tenant', tenantId);
  }
  const q = await ctx.db
    .selectFrom('tenant_quarantines')
    .select(['ends_at', 'reason'])
    .where('tenant_id', '=', tenantId)
    .where('ends_at', '>', ctx.now())
    .where('released_at', 'is', null)
    .orderBy('ends_at', 'desc')
    .executeTakeFirst();
  return { ...view(row as unknown as Row), quarantine: q ? { until: iso(q.ends_at), reason: q.reason } : null };
}

export async function listPlacementHistory(ctx: AppContext, tenantId: string, q: { limit: number; cursor?: string | undefined }): Promise<Page<PlacementView>> {
  let query = ctx.db.selectFrom('tenant_placements').selectAll().where('tenant_id', '=', tenantId);
  const after = cursorId(q.cursor);
  if (after) query = query.where('id', '<', sql<string>`${after}::bigint`);
  const page = pageById((await query.orderBy('id', 'desc').limit(q.limit + 1).execute()) as unknown as Row[], q.limit);
  return { items: page.items.map(view), next_cursor: page.next_cursor };
}

export async function listCurrentPlacements(ctx: AppContext, q: { limit: number; cursor?: string | undefined; tier?: Tier | undefined; pool_id?: string | undefined }): Promise<Page<PlacementView>> {
  let query = ctx.db.selectFrom('tenant_placements').selectAll().where('superseded_at', 'is', null);
  if (q.tier) query = query.where('tier', '=', q.tier);
  if (q.pool_id) query = query.where('pool_id', '=', q.pool_id);
  const after = cursorId(q.cursor);
  if (after) query = query.where('id', '>', sql<string>`${after}::bigint`);
  const page = pageById((await query.orderBy('id').limit(q.limit + 1).execute()) as unknown as Row[], q.limit);
  return { items: page.items.map(view), next_cursor: page.next_cursor };
}

export async function runPlacementNow(ctx: AppContext, caller: Caller): Promise<PlacementRunSummary> {
  return inTransaction(ctx.db, async (tx) => {
    const summary = await runPlacementEngine(ctx, tx, ctx.now());
    await writeAudit(tx, caller, { action: 'placement.run', targetType: 'placement', targetId: null, details: { changed: summary.changed, incidents: summary.incidents, quarantined: summary.quarantined.length } });
    return summary;
  });
}

/** An operator pins a tenant to a tier until a time; the engine leaves it there until then. */
export type CurrentPlacementView = PlacementView & { quarantine: { until: string; reason: string } | null };

export async function overridePlacement(ctx: AppContext, caller: Caller, tenantId: string, input: { tier: Tier; expires_at: string; reason: string }): Promise<CurrentPlacementView> {
  const now = ctx.now();
  const expires = new Date(input.expires_at);
  if (expires <= now) throw new AppError('VALIDATION_FAILED', 'expires_at must be in the future', { fields: [{ path: 'json.expires_at', message: 'must be in the future' }] });
  await inTransaction(ctx.db, async (tx) => {
    const tenant = await tx.selectFrom('tenants').select('id').where('id', '=', tenantId).forUpdate().executeTakeFirst();
    if (!tenant) throw notFound('tenant', tenantId);
    const settings = await readSettings(tx);
    const ips = await loadPooledIps(tx, now);
    const shard = shardFor(tenantId, input.tier, ips, settings.placement.shard_size);
    const pool = shard[0] ? ips.find((ip) => ip.ipId === shard[0]!.ip_id)!.poolId : (await tx.selectFrom('ip_pools').select('id').where('tier', '=', input.tier).orderBy('name').executeTakeFirst())?.id;
    if (!pool) throw new AppError('CONFLICT', `no pool of tier ${input.tier} exists`);
    const current = await tx.selectFrom('tenant_placements').select(['id', 'tier']).where('tenant_id', '=', tenantId).where('superseded_at', 'is', null).executeTakeFirst();
    await recordPlacement(tx, current ?? null, { tenantId, poolId: pool, tier: input.tier, origin: 'operator', reason: `operator override: ${input.reason}`, inputs: { previous_tier: current?.tier ?? null }, shard, overrideExpiresAt: expires }, now);
    await writeAudit(tx, caller, { action: 'placement.override', targetType: 'tenant', targetId: tenantId, tenantId, details: { before: current?.tier ?? null, after: input.tier, expires_at: expires.toISOString(), reason: input.reason } });
  });
  return getCurrentPlacement(ctx, tenantId);
}

/** End an override (or release a quarantine) now and let the engine decide at once. */
export async function releasePlacement(ctx: AppContext, caller: Caller, tenantId: string, what: 'override' | 'quarantine'): Promise<CurrentPlacementView> {
  const now = ctx.now();
  await inTransaction(ctx.db, async (tx) => {
    const tenant = await tx.selectFrom('tenants').select('id').where('id', '=', tenantId).forUpdate().executeTakeFirst();
    if (!tenant) throw notFound('tenant', tenantId);
    if (what === 'override') {
      const cur = await tx.selectFrom('tenant_placements').select(['id', 'override_expires_at']).where('tenant_id', '=', tenantId).where('superseded_at', 'is', null).where('origin', '=', 'operator').executeTakeFirst();
      if (!cur || !cur.override_expires_at || cur.override_expires_at <= now) throw new AppError('CONFLICT', 'the tenant has no active override');
      await tx.updateTable('tenant_placements').set({ override_expires_at: now }).where('id', '=', cur.id).execute();
    } else {
      const released = await tx.updateTable('tenant_quarantines').set({ released_at: now }).where('tenant_id', '=', tenantId).where('ends_at', '>', now).where('released_at', 'is', null).returning('id').execute();
      if (released.length === 0) throw new AppError('CONFLICT', 'the tenant is not quarantined');
    }
    await writeAudit(tx, caller, { action: what === 'override' ? 'placement.override_release' : 'tenant.quarantine_release', targetType: 'tenant', targetId: tenantId, tenantId });
    await runPlacementEngine(ctx, tx, now, tenantId);
  });
  return getCurrentPlacement(ctx, tenantId);
}
