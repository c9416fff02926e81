/**
 * The placement engine: load what it decides on, plan (domain/pools/placement-plan.ts, pure), write
 * the plan, all in the caller's transaction. The plan's steps: bad apples (quarantines, IP rotations,
 * incidents), every tenant's tier and shard, a placement decision wherever either changed.
 */
import type { Tx } from '../../adapters/pg/database.js';
import type { AppContext } from '../../context.js';
import { bareAddress } from '../../domain/fleet/naming.js';
import { planPlacements, type CurrentRow, type PlacementPlan, type PlacementRunSummary, type PlanInputs, type ShardEntry } from '../../domain/pools/placement-plan.js';
import type { Tier } from '../../domain/pools/placement.js';
import { systemCaller, type Caller } from '../actor.js';
import { writeAudit } from '../audit.js';
import { readSettings } from '../settings.js';
import { loadPooledIps, READINESS_COLUMNS, readinessOf, sourceCounts } from './fleet-state.js';

export { shardFor, type PlacementRunSummary } from '../../domain/pools/placement-plan.js';

const ENGINE: Caller = systemCaller('placement-engine');

async function loadPlanInputs(tx: Tx, now: Date, onlyTenant?: string): Promise<PlanInputs> {
  const settings = (await readSettings(tx)).placement;
  const windowStart = new Date(now.getTime() - settings.detection_window_hours * 3_600_000);
  const ips = await loadPooledIps(tx, now);
  const [pools, spares, windowCounts, recent, quarantineRows] = await Promise.all([
    tx.selectFrom('ip_pools').select(['id', 'name', 'tier']).execute(),
    tx
      .selectFrom('ip_addresses as ip')
      .leftJoin('ip_pool_members as m', 'm.ip_id', 'ip.id')
      .innerJoin('nodes as n', 'n.id', 'ip.node_id')
      .leftJoin('provider_projects as pp', 'pp.id', 'n.provider_project_id')
      .select(['ip.id', 'ip.node_id', 'ip.state', 'ip.address'])
      .select(READINESS_COLUMNS)
      .where('m.ip_id', 'is', null)
      .where('ip.state', 'in', ['active', 'warming'])
      .execute(),
    // bad apples are looked for in a full run only
    onlyTenant ? Promise.resolve(null) : sourceCounts(tx, ips.map((ip) => ip.sourceName), windowStart, now),
    tx.selectFrom('reputation_incidents').select('pool_id').distinct().where('detected_at', '>', windowStart).execute(),
    tx.selectFrom('tenant_quarantines').select(['tenant_id', 'ends_at', 'reason']).where('ends_at', '>', now).where('released_at', 'is', null).orderBy('ends_at', 'desc').execute(),
  ]);
  let tq = tx.selectFrom('tenants').leftJoin('tenant_trust', 'tenant_trust.tenant_id', 'tenants.id').select(['tenants.id', 'tenant_trust.score', 'tenant_trust.locked', 'tenant_trust.basis']).orderBy('tenants.id');
  if (onlyTenant) tq = tq.where('tenants.id', '=', onlyTenant);
  let cq = tx.selectFrom('tenant_placements').select(['id', 'tenant_id', 'pool_id', 'tier', 'origin', 'placed_at', 'override_expires_at', 'shard']).where('superseded_at', 'is', null);
  if (onlyTenant) cq = cq.where('tenant_id', '=', onlyTenant);
  const [tenants, currentRows] = await Promise.all([tq.execute(), cq.execute()]);
  const quarantines = new Map<string, { until: Date; reason: string }>();
  for (const r of quarantineRows) if (!quarantines.has(r.tenant_id)) quarantines.set(r.tenant_id, { until: r.ends_at, reason: r.reason });
  return {
    now,
    settings,
    ips,
    pools,
    spares: spares.map((r) => ({ ipId: r.id, nodeId: r.node_id, address: bareAddress(r.address), state: r.state as 'active' | 'warming', readiness: readinessOf(r, now) })),
    windowCounts,
    windowStart,
    poolsWithRecentIncident: new Set(recent.flatMap((r) => (r.pool_id ? [r.pool_id] : []))),
    tenants: tenants.map((t) => ({ id: t.id, score: Number(t.score ?? 0), locked: t.locked ?? true, sampleSufficient: t.basis === 'wilson_interval' })),
    current: new Map(
      currentRows.map((r) => [
        r.tenant_id,
        { id: r.id, tenantId: r.tenant_id, poolId: r.pool_id, tier: r.tier as Tier, origin: r.origin, placedAt: r.placed_at, overrideExpiresAt: r.override_expires_at, shard: r.shard as unknown as ShardEntry[] } satisfies CurrentRow,
      ]),
    ),
    quarantines,
  };
}

export async function recordPlacement(
  tx: Tx,
  current: { id: string } | null,
  p: { tenantId: string; poolId: string; tier: Tier; origin: 'engine' | 'operator'; reason: string; inputs: Record<string, unknown>; shard: ShardEntry[]; overrideExpiresAt: Date | null },
  now: Date,
): Promise<void> {
  if (current) await tx.updateTable('tenant_placements').set({ superseded_at: now }).where('id', '=', current.id).execute();
  await tx
    .insertInto('tenant_placements')
    .values({
      tenant_id: p.tenantId,
      pool_id: p.poolId,
      tier: p.tier,
      origin: p.origin,
      reason: p.reason.slice(0, 1000),
      inputs: JSON.stringify(p.inputs),
      placed_at: now,
      override_expires_at: p.overrideExpiresAt,
      shard: JSON.stringify(p.shard),
    })
    .execute();
}

async function writePlan(tx: Tx, plan: PlacementPlan, inputs: PlanInputs): Promise<void> {
  const { now, windowStart: from } = inputs;
  for (const inc of plan.incidents) {
    const incident = await tx
      .insertInto('reputation_incidents')
      .values({ pool_id: inc.poolId, detected_at: now, window_start: from, window_end: now, level: inc.level, assessment: JSON.stringify(inc.assessment), actions: JSON.stringify(inc.actions) })
      .returning('id')
      .executeTakeFirstOrThrow();
    const incidentId = String(incident.id);
    await writeAudit(tx, ENGINE, { action: 'pool.incident', targetType: 'ip_pool', targetId: inc.poolId, details: { incident_id: incidentId, level: inc.level, reasons: inc.assessment.reasons, actions: inc.actions } });
    for (const q of inc.quarantines) {
      await tx.insertInto('tenant_quarantines').values({ tenant_id: q.tenantId, incident_id: incident.id, reason: q.reason, starts_at: now, ends_at: q.until }).execute();
      await writeAudit(tx, ENGINE, { action: 'tenant.quarantine', targetType: 'tenant', targetId: q.tenantId, tenantId: q.tenantId, details: { incident_id: incidentId, reason: q.reason, hours: inputs.settings.quarantine_hours } });
    }
    for (const r of inc.rotations) {
      await tx.deleteFrom('ip_pool_members').where('ip_id', '=', r.ipId).execute();
      await tx.updateTable('ip_addresses').set({ state: 'quarantined', state_changed_at: now, updated_at: now }).where('id', '=', r.ipId).execute();
      await writeAudit(tx, ENGINE, { action: 'ip.state.quarantined', targetType: 'ip_address', targetId: r.ipId, details: { reason: r.reason, incident_id: incidentId, pool_id: inc.poolId } });
      if (r.replacementId) {
        await tx.insertInto('ip_pool_members').values({ pool_id: inc.poolId, ip_id: r.replacementId, weight: r.weight }).execute();
        await writeAudit(tx, ENGINE, { action: 'pool.member_add', targetType: 'ip_pool', targetId: inc.poolId, details: { ip_id: r.replacementId, after: { weight: r.weight }, reason: `replacement for ${r.ipId} (rested after damage)`, incident_id: incidentId } });
      }
    }
  }
  for (const p of plan.placements) await recordPlacement(tx, p.currentId ? { id: p.currentId } : null, p, now);
}

export async function runPlacementEngine(ctx: AppContext, tx: Tx, now: Date, onlyTenant?: string): Promise<PlacementRunSummary> {
  const inputs = await loadPlanInputs(tx, now, onlyTenant);
  const plan = planPlacements(inputs);
  await writePlan(tx, plan, inputs);
  const summary = plan.summary;
  if (summary.changed > 0 || summary.incidents > 0) ctx.log.info({ ...summary, quarantined: summary.quarantined.length, rotated_ips: summary.rotated_ips.length }, 'placement run');
  return summary;
}
