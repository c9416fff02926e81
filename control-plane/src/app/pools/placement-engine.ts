/**
 * The placement engine, as a list of named steps, in one transaction:
 *   1. detect bad apples per pool: quarantine the tenants that caused a spike, rest damaged IPs and
 *      bring replacements in (all recorded as incidents and in the audit log)
 *   2. decide every tenant's tier (pure decideTier)
 *   3. compute every tenant's shard in its tier (pure assignShard)
 *   4. record a placement decision wherever the tier or the shard changed, with its inputs and reason
 */
import type { Tx } from '../../adapters/pg/database.js';
import type { AppContext } from '../../context.js';
import type { ShardEntry } from '../../adapters/pg/tables.js';
import { assessPool, type PoolAssessment } from '../../domain/pools/bad-apples.js';
import { checkNodeDiversity } from '../../domain/pools/node-diversity.js';
import { decideTier, TIERS, type CurrentPlacement, type Tier } from '../../domain/pools/placement.js';
import { assignShard } from '../../domain/pools/sharding.js';
import type { Settings } from '../../domain/settings/settings.js';
import { systemCaller, type Caller } from '../actor.js';
import { writeAudit } from '../audit.js';
import { readSettings } from '../settings.js';
import { carriesMail } from '../../domain/fleet/ip-lifecycle.js';
import { loadPooledIps, sourceCounts, type PooledIp } from './fleet-state.js';

export interface PlacementRunSummary {
  tenants: number;
  changed: number;
  deferred: number;
  by_tier: Record<Tier, number>;
  incidents: number;
  quarantined: string[];
  rotated_ips: { ip_id: string; replacement_ip_id: string | null }[];
  unplaceable: { tenant_id: string; reason: string }[];
  diversity_problems: string[];
}

interface CurrentRow {
  id: string;
  tenant_id: string;
  pool_id: string;
  tier: Tier;
  origin: 'engine' | 'operator';
  placed_at: Date;
  override_expires_at: Date | null;
  shard: ShardEntry[];
}

const ENGINE: Caller = systemCaller('placement-engine');

async function detectBadApples(tx: Tx, ips: PooledIp[], s: Settings['placement'], now: Date, summary: PlacementRunSummary): Promise<void> {
  const from = new Date(now.getTime() - s.detection_window_hours * 3_600_000);
  const counts = await sourceCounts(tx, ips.map((ip) => ip.sourceName), from, now);
  const ipBySource = new Map(ips.map((ip) => [ip.sourceName, ip]));
  const pools = new Map<string, { name: string; tier: Tier; ips: PooledIp[] }>();
  for (const ip of ips) {
    const p = pools.get(ip.poolId) ?? { name: ip.poolName, tier: ip.tier, ips: [] };
    p.ips.push(ip);
    pools.set(ip.poolId, p);
  }
  for (const [poolId, pool] of [...pools.entries()].sort((a, b) => (a[1].name < b[1].name ? -1 : 1))) {
    // the quarantine pool holds tenants that were already found out
    if (pool.tier === 'quarantine') continue;
    const mine = counts.filter((c) => ipBySource.get(c.source)?.poolId === poolId);
    const total = { sends: 0, bounces: 0, complaints: 0 };
    const byTenant = new Map<string, { tenantId: string; sends: number; bounces: number; complaints: number }>();
    const byIp = new Map<string, { ipId: string; sends: number; bounces: number; complaints: number }>();
    for (const c of mine) {
      total.sends += c.sends;
      total.bounces += c.bounces;
      total.complaints += c.complaints;
      if (c.tenantId) {
        const t = byTenant.get(c.tenantId) ?? { tenantId: c.tenantId, sends: 0, bounces: 0, complaints: 0 };
        t.sends += c.sends;
        t.bounces += c.bounces;
        t.complaints += c.complaints;
        byTenant.set(c.tenantId, t);
      }
      const ipId = ipBySource.get(c.source)!.ipId;
      const i = byIp.get(ipId) ?? { ipId, sends: 0, bounces: 0, complaints: 0 };
      i.sends += c.sends;
      i.bounces += c.bounces;
      i.complaints += c.complaints;
      byIp.set(ipId, i);
    }
    const assessment = assessPool(total, [...byTenant.values()], [...byIp.values()], s);
    if (assessment.level === 'ok') continue;
    await actOnIncident(tx, poolId, pool, assessment, ips, s, from, now, summary);
  }
}

async function actOnIncident(
  tx: Tx,
  poolId: string,
  pool: { name: string; tier: Tier; ips: PooledIp[] },
  assessment: PoolAssessment,
  allIps: PooledIp[],
  s: Settings['placement'],
  from: Date,
  now: Date,
  summary: PlacementRunSummary,
): Promise<void> {
  const actions: Record<string, unknown>[] = [];
  const quarantines: { tenantId: string; reason: string }[] = [];
  for (const apple of assessment.bad_apples) {
    const active = await tx
      .selectFrom('tenant_quarantines')
      .select('id')
      .where('tenant_id', '=', apple.tenant_id)
      .where('ends_at', '>', now)
      .where('released_at', 'is', null)
      .executeTakeFirst();
    if (active) continue;
    const reason = `bad apple in pool ${pool.name}: ${apple.reason}`;
    quarantines.push({ tenantId: apple.tenant_id, reason });
    actions.push({ action: 'quarantine_tenant', tenant_id: apple.tenant_id, until: new Date(now.getTime() + s.quarantine_hours * 3_600_000).toISOString(), reason });
  }
  const rotations: { ipId: string; replacementId: string | null; reason: string }[] = [];
  const taken = new Set<string>();
  for (const damaged of assessment.damaged_ips) {
    const ip = allIps.find((x) => x.ipId === damaged.ip_id);
    if (!ip || ip.state === 'quarantined' || ip.state === 'retired') continue;
    const replacementId = await pickReplacement(tx, pool, ip, s.max_node_share_pct, taken);
    if (replacementId) taken.add(replacementId);
    rotations.push({ ipId: ip.ipId, replacementId, reason: damaged.reason });
    actions.push({ action: 'rotate_ip', ip_id: ip.ipId, address: ip.address, to_state: 'quarantined', replacement_ip_id: replacementId, reason: damaged.reason });
  }

  // an ongoing condition with nothing new to do is not a new incident
  const recent = await tx
    .selectFrom('reputation_incidents')
    .select('id')
    .where('pool_id', '=', poolId)
    .where('detected_at', '>', from)
    .executeTakeFirst();
  if (actions.length === 0 && recent) return;

  const incident = await tx
    .insertInto('reputation_incidents')
    .values({ pool_id: poolId, detected_at: now, window_start: from, window_end: now, level: assessment.level as 'review' | 'pause', assessment: JSON.stringify(assessment), actions: JSON.stringify(actions) })
    .returning('id')
    .executeTakeFirstOrThrow();
  summary.incidents++;
  await writeAudit(tx, ENGINE, { action: 'pool.incident', targetType: 'ip_pool', targetId: poolId, details: { incident_id: String(incident.id), level: assessment.level, reasons: assessment.reasons, actions } });

  for (const q of quarantines) {
    await tx
      .insertInto('tenant_quarantines')
      .values({ tenant_id: q.tenantId, incident_id: incident.id, reason: q.reason, starts_at: now, ends_at: new Date(now.getTime() + s.quarantine_hours * 3_600_000) })
      .execute();
    await writeAudit(tx, ENGINE, { action: 'tenant.quarantine', targetType: 'tenant', targetId: q.tenantId, tenantId: q.tenantId, details: { incident_id: String(incident.id), reason: q.reason, hours: s.quarantine_hours } });
    summary.quarantined.push(q.tenantId);
  }
  for (const r of rotations) {
    await tx.deleteFrom('ip_pool_members').where('ip_id', '=', r.ipId).execute();
    await tx.updateTable('ip_addresses').set({ state: 'quarantined', state_changed_at: now, updated_at: now }).where('id', '=', r.ipId).execute();
    await writeAudit(tx, ENGINE, { action: 'ip.state.quarantined', targetType: 'ip_address', targetId: r.ipId, details: { reason: r.reason, incident_id: String(incident.id), pool_id: poolId } });
    if (r.replacementId) {
      const weight = pool.ips.find((x) => x.ipId === r.ipId)?.weight ?? 100;
      await tx.insertInto('ip_pool_members').values({ pool_id: poolId, ip_id: r.replacementId, weight }).execute();
      await writeAudit(tx, ENGINE, { action: 'pool.member_add', targetType: 'ip_pool', targetId: poolId, details: { ip_id: r.replacementId, after: { weight }, reason: `replacement for ${r.ipId} (rested after damage)`, incident_id: String(incident.id) } });
    }
    summary.rotated_ips.push({ ip_id: r.ipId, replacement_ip_id: r.replacementId });
  }
}

/**
 * A spare IP (in no pool, warming or active) to stand in for a damaged one, preferring nodes that hold
 * the fewest of this tier's IPs, so the rotation does not worsen the node concentration.
 */
async function pickReplacement(tx: Tx, pool: { tier: Tier; ips: PooledIp[] }, damaged: PooledIp, maxSharePct: number, taken: Set<string>): Promise<string | null> {
  const spares = await tx
    .selectFrom('ip_addresses as ip')
    .leftJoin('ip_pool_members as m', 'm.ip_id', 'ip.id')
    .select(['ip.id', 'ip.node_id', 'ip.state', 'ip.address'])
    .where('m.ip_id', 'is', null)
    .where('ip.state', 'in', ['active', 'warming'])
    .where('ip.id', '!=', damaged.ipId)
    .execute()
    .then((rows) => rows.filter((r) => !taken.has(r.id)));
  if (spares.length === 0) return null;
  const perNode = new Map<string, number>();
  for (const ip of pool.ips) if (ip.ipId !== damaged.ipId) perNode.set(ip.nodeId, (perNode.get(ip.nodeId) ?? 0) + 1);
  const limit = Math.max(1, Math.floor((pool.ips.length * maxSharePct) / 100));
  const ranked = spares
    .map((sp) => ({ sp, load: perNode.get(sp.node_id) ?? 0 }))
    .sort((a, b) => Number(a.load >= limit) - Number(b.load >= limit) || Number(a.sp.state !== 'active') - Number(b.sp.state !== 'active') || a.load - b.load || (a.sp.address < b.sp.address ? -1 : 1));
  return ranked[0]!.sp.id;
}

async function activeQuarantines(tx: Tx, now: Date): Promise<Map<string, { until: Date; reason: string }>> {
  const rows = await tx
    .selectFrom('tenant_quarantines')
    .select(['tenant_id', 'ends_at', 'reason'])
    .where('ends_at', '>', now)
    .where('released_at', 'is', null)
    .orderBy('ends_at', 'desc')
    .execute();
  const out = new Map<string, { until: Date; reason: string }>();
  for (const r of rows) if (!out.has(r.tenant_id)) out.set(r.tenant_id, { until: r.ends_at, reason: r.reason });
  return out;
}

export function shardFor(tenantId: string, tier: Tier, ips: PooledIp[], shardSize: number): ShardEntry[] {
  const candidates = ips.filter((ip) => ip.tier === tier && carriesMail(ip.state));
  const byId = new Map(candidates.map((ip) => [ip.ipId, ip]));
  return assignShard(tenantId, candidates.map((ip) => ({ id: ip.ipId, weight: ip.weight })), shardSize).map((m) => ({
    ip_id: m.id,
    address: byId.get(m.id)!.address,
    weight: m.weight,
    rank: m.rank,
  }));
}

/** The pool a placement names: the pool of its first IP, else the tier's first pool by name. */
function poolFor(tier: Tier, shard: ShardEntry[], ips: PooledIp[], pools: { id: string; name: string; tier: Tier }[]): string | null {
  const first = shard[0] && ips.find((ip) => ip.ipId === shard[0]!.ip_id);
  if (first) return first.poolId;
  return pools.filter((p) => p.tier === tier).sort((a, b) => (a.name < b.name ? -1 : 1))[0]?.id ?? null;
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

export async function runPlacementEngine(ctx: AppContext, tx: Tx, now: Date, onlyTenant?: string): Promise<PlacementRunSummary> {
  const settings = await readSettings(tx);
  const s = settings.placement;
  const summary: PlacementRunSummary = {
    tenants: 0, changed: 0, deferred: 0, by_tier: { premium: 0, standard: 0, rehabilitation: 0, quarantine: 0 }, incidents: 0, quarantined: [], rotated_ips: [], unplaceable: [], diversity_problems: [],
  };

  if (!onlyTenant) await detectBadApples(tx, await loadPooledIps(tx), s, now, summary);
  const ips = await loadPooledIps(tx);
  const pools = await tx.selectFrom('ip_pools').select(['id', 'name', 'tier']).execute();
  for (const tier of TIERS) {
    const tierIps = ips.filter((ip) => ip.tier === tier && carriesMail(ip.state)).map((ip) => ({ ipId: ip.ipId, nodeId: ip.nodeId, nodeName: ip.nodeName }));
    summary.diversity_problems.push(...checkNodeDiversity(tier, tierIps, s.max_node_share_pct).problems);
  }

  let tq = tx.selectFrom('tenants').leftJoin('tenant_trust', 'tenant_trust.tenant_id', 'tenants.id').select(['tenants.id', 'tenant_trust.score', 'tenant_trust.locked', 'tenant_trust.basis']).orderBy('tenants.id');
  if (onlyTenant) tq = tq.where('tenants.id', '=', onlyTenant);
  const tenants = await tq.execute();
  let cq = tx.selectFrom('tenant_placements').select(['id', 'tenant_id', 'pool_id', 'tier', 'origin', 'placed_at', 'override_expires_at', 'shard']).where('superseded_at', 'is', null);
  if (onlyTenant) cq = cq.where('tenant_id', '=', onlyTenant);
  const current = new Map((await cq.execute()).map((r) => [r.tenant_id, r as unknown as CurrentRow]));
  const quarantines = await activeQuarantines(tx, now);

  for (const t of tenants) {
    summary.tenants++;
    const cur = current.get(t.id) ?? null;
    const curPlacement: CurrentPlacement | null = cur ? { tier: cur.tier, origin: cur.origin, placedAt: cur.placed_at, overrideExpiresAt: cur.override_expires_at } : null;
    const decision = decideTier({ score: Number(t.score ?? 0), locked: t.locked ?? true, sampleSufficient: t.basis === 'wilson_interval', quarantine: quarantines.get(t.id) ?? null, current: curPlacement, now }, s);
    if (decision.deferredTo) summary.deferred++;
    const shard = shardFor(t.id, decision.tier, ips, s.shard_size);
    summary.by_tier[decision.tier]++;
    const sameShard = cur !== null && JSON.stringify(cur.shard.map((x) => x.ip_id)) === JSON.stringify(shard.map((x) => x.ip_id));
    if (!decision.changed && sameShard) continue;
    const poolId = poolFor(decision.tier, shard, ips, pools);
    if (!poolId) {
      summary.unplaceable.push({ tenant_id: t.id, reason: `no pool of tier ${decision.tier} exists` });
      continue;
    }
    const reason = decision.changed
      ? `${cur ? `${cur.tier} -> ${decision.tier}` : `placed in ${decision.tier}`}: ${decision.reason}`
      : `shard rebalanced within ${decision.tier}: the tier's IPs changed (${cur!.shard.map((x) => x.address).join(', ') || 'none'} -> ${shard.map((x) => x.address).join(', ') || 'none'})`;
    const keepOverride = cur?.origin === 'operator' && !decision.changed;
    await recordPlacement(
      tx,
      cur,
      {
        tenantId: t.id,
        poolId,
        tier: decision.tier,
        origin: keepOverride ? 'operator' : 'engine',
        reason: shard.length === 0 ? `${reason} (the tier has no IP carrying mail yet)` : reason,
        inputs: { ...decision.inputs, shard_size: s.shard_size, tier_ips: ips.filter((ip) => ip.tier === decision.tier && carriesMail(ip.state)).length },
        shard,
        overrideExpiresAt: keepOverride ? cur!.override_expires_at : null,
      },
      now,
    );
    summary.changed++;
  }
  if (summary.changed > 0 || summary.incidents > 0) ctx.log.info({ ...summary, quarantined: summary.quarantined.length, rotated_ips: summary.rotated_ips.length }, 'placement run');
  return summary;
}
