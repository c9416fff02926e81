/**
 * One run of the placement engine, decided without touching anything: given the fleet, the tenants,
 * their current placements and the window's per-IP counts, the plan says what to write.
 *   1. detect bad apples per pool: quarantine the tenants that caused a spike, rest damaged IPs and
 *      bring spares in (an incident with its numbers and actions)
 *   2. decide every tenant's tier (decideTier), on the fleet as step 1 leaves it
 *   3. compute every tenant's shard in its tier (assignShard)
 *   4. a placement decision wherever the tier or the shard changed, with its inputs and reason
 * Pure: the caller loads the inputs and writes the plan (app/pools/placement-engine.ts).
 */
import { carriesMail, ipCarriesMail, type IpState, type MailReadiness } from '../fleet/ip-lifecycle.js';
import { egressSourceName } from '../fleet/naming.js';
import { assessPool, type PlacementSettings, type PoolAssessment } from './bad-apples.js';
import { checkNodeDiversity } from './node-diversity.js';
import { decideTier, TIERS, type CurrentPlacement, type Tier } from './placement.js';
import { assignShard } from './sharding.js';

/** A tenant's IPs in its tier, as stored with its placement. */
export interface ShardEntry {
  ip_id: string;
  address: string;
  weight: number;
  rank: number;
}

/** An IP in a pool, with its node and tier. */
export interface PlanIp {
  ipId: string;
  address: string;
  sourceName: string;
  state: IpState;
  nodeId: string;
  nodeName: string;
  poolId: string;
  poolName: string;
  tier: Tier;
  weight: number;
  /** provisioned IPs: reverse DNS and port-25 egress (ipCarriesMail); absent for hand-registered ones */
  readiness?: MailReadiness | null;
}

/** An IP in no pool that may stand in for a damaged one. */
export interface SpareIp {
  ipId: string;
  nodeId: string;
  address: string;
  state: 'active' | 'warming';
  readiness?: MailReadiness | null;
}

export interface SourceTenantCounts {
  source: string;
  tenantId: string | null;
  sends: number;
  bounces: number;
  complaints: number;
}

export interface PlanTenant {
  id: string;
  score: number;
  locked: boolean;
  sampleSufficient: boolean;
}

export interface CurrentRow {
  id: string;
  tenantId: string;
  poolId: string;
  tier: Tier;
  origin: 'engine' | 'operator';
  placedAt: Date;
  overrideExpiresAt: Date | null;
  shard: ShardEntry[];
}

export interface PlanInputs {
  now: Date;
  settings: PlacementSettings;
  ips: PlanIp[];
  pools: { id: string; name: string; tier: Tier }[];
  spares: SpareIp[];
  /** per (egress source, tenant) over the detection window; omitted: no bad-apple detection this run */
  windowCounts: SourceTenantCounts[] | null;
  windowStart: Date;
  /** pools that had an incident within the window (a standing condition with nothing new is not another) */
  poolsWithRecentIncident: ReadonlySet<string>;
  tenants: PlanTenant[];
  current: ReadonlyMap<string, CurrentRow>;
  quarantines: ReadonlyMap<string, { until: Date; reason: string }>;
}

export interface PlannedIncident {
  poolId: string;
  level: 'review' | 'pause';
  assessment: PoolAssessment;
  actions: Record<string, unknown>[];
  quarantines: { tenantId: string; reason: string; until: Date }[];
  rotations: { ipId: string; replacementId: string | null; weight: number; reason: string }[];
}

export interface PlannedPlacement {
  tenantId: string;
  /** the placement it supersedes */
  currentId: string | null;
  poolId: string;
  tier: Tier;
  origin: 'engine' | 'operator';
  reason: string;
  inputs: Record<string, unknown>;
  shard: ShardEntry[];
  overrideExpiresAt: Date | null;
}

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

export interface PlacementPlan {
  incidents: PlannedIncident[];
  placements: PlannedPlacement[];
  summary: PlacementRunSummary;
}

export function shardFor(tenantId: string, tier: Tier, ips: readonly PlanIp[], shardSize: number): ShardEntry[] {
  const candidates = ips.filter((ip) => ip.tier === tier && ipCarriesMail(ip));
  const byId = new Map(candidates.map((ip) => [ip.ipId, ip]));
  return assignShard(tenantId, candidates.map((ip) => ({ id: ip.ipId, weight: ip.weight })), shardSize).map((m) => ({
    ip_id: m.id,
    address: byId.get(m.id)!.address,
    weight: m.weight,
    rank: m.rank,
  }));
}

/** The pool a placement names: the pool of its first IP, else the tier's first pool by name. */
function poolFor(tier: Tier, shard: ShardEntry[], ips: readonly PlanIp[], pools: PlanInputs['pools']): string | null {
  const first = shard[0] && ips.find((ip) => ip.ipId === shard[0]!.ip_id);
  if (first) return first.poolId;
  return pools.filter((p) => p.tier === tier).sort((a, b) => (a.name < b.name ? -1 : 1))[0]?.id ?? null;
}

/**
 * A spare to stand in for a damaged IP, preferring nodes that hold the fewest of this pool's IPs (so
 * the rotation does not worsen the node concentration), then active over warming, then by address.
 */
function pickReplacement(pool: { ips: PlanIp[] }, damaged: PlanIp, spares: readonly SpareIp[], maxSharePct: number, taken: ReadonlySet<string>): SpareIp | null {
  const free = spares.filter((sp) => sp.ipId !== damaged.ipId && !taken.has(sp.ipId) && ipCarriesMail(sp));
  if (free.length === 0) return null;
  const perNode = new Map<string, number>();
  for (const ip of pool.ips) if (ip.ipId !== damaged.ipId) perNode.set(ip.nodeId, (perNode.get(ip.nodeId) ?? 0) + 1);
  const limit = Math.max(1, Math.floor((pool.ips.length * maxSharePct) / 100));
  const ranked = free
    .map((sp) => ({ sp, load: perNode.get(sp.nodeId) ?? 0 }))
    .sort((a, b) => Number(a.load >= limit) - Number(b.load >= limit) || Number(a.sp.state !== 'active') - Number(b.sp.state !== 'active') || a.load - b.load || (a.sp.address < b.sp.address ? -1 : 1));
  return ranked[0]!.sp;
}

function planIncidents(i: PlanInputs, summary: PlacementRunSummary): PlannedIncident[] {
  if (!i.windowCounts) return [];
  const s = i.settings;
  const ipBySource = new Map(i.ips.map((ip) => [ip.sourceName, ip]));
  const pools = new Map<string, { name: string; tier: Tier; ips: PlanIp[] }>();
  for (const ip of i.ips) {
    const p = pools.get(ip.poolId) ?? { name: ip.poolName, tier: ip.tier, ips: [] };
    p.ips.push(ip);
    pools.set(ip.poolId, p);
  }
  const out: PlannedIncident[] = [];
  const takenSpares = new Set<string>();
  const quarantinedNow = new Set<string>();
  for (const [poolId, pool] of [...pools.entries()].sort((a, b) => (a[1].name < b[1].name ? -1 : 1))) {
    // the quarantine pool holds tenants that were already found out
    if (pool.tier === 'quarantine') continue;
    const total = { sends: 0, bounces: 0, complaints: 0 };
    const byTenant = new Map<string, { tenantId: string; sends: number; bounces: number; complaints: number }>();
    const byIp = new Map<string, { ipId: string; sends: number; bounces: number; complaints: number }>();
    for (const c of i.windowCounts) {
      const ip = ipBySource.get(c.source);
      if (ip?.poolId !== poolId) continue;
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
      const x = byIp.get(ip.ipId) ?? { ipId: ip.ipId, sends: 0, bounces: 0, complaints: 0 };
      x.sends += c.sends;
      x.bounces += c.bounces;
      x.complaints += c.complaints;
      byIp.set(ip.ipId, x);
    }
    const assessment = assessPool(total, [...byTenant.values()], [...byIp.values()], s);
    if (assessment.level === 'ok') continue;

    const actions: Record<string, unknown>[] = [];
    const until = new Date(i.now.getTime() + s.quarantine_hours * 3_600_000);
    const quarantines: PlannedIncident['quarantines'] = [];
    for (const apple of assessment.bad_apples) {
      if (i.quarantines.has(apple.tenant_id) || quarantinedNow.has(apple.tenant_id)) continue;
      const reason = `bad apple in pool ${pool.name}: ${apple.reason}`;
      quarantines.push({ tenantId: apple.tenant_id, reason, until });
      quarantinedNow.add(apple.tenant_id);
      actions.push({ action: 'quarantine_tenant', tenant_id: apple.tenant_id, until: until.toISOString(), reason });
    }
    const rotations: PlannedIncident['rotations'] = [];
    for (const damaged of assessment.damaged_ips) {
      const ip = i.ips.find((x) => x.ipId === damaged.ip_id);
      if (!ip || !carriesMail(ip.state)) continue;
      const replacement = pickReplacement(pool, ip, i.spares, s.max_node_share_pct, takenSpares);
      if (replacement) takenSpares.add(replacement.ipId);
      rotations.push({ ipId: ip.ipId, replacementId: replacement?.ipId ?? null, weight: ip.weight, reason: damaged.reason });
      actions.push({ action: 'rotate_ip', ip_id: ip.ipId, address: ip.address, to_state: 'quarantined', replacement_ip_id: replacement?.ipId ?? null, reason: damaged.reason });
    }
    // an ongoing condition with nothing new to do is not a new incident
    if (actions.length === 0 && i.poolsWithRecentIncident.has(poolId)) continue;
    out.push({ poolId, level: assessment.level as 'review' | 'pause', assessment, actions, quarantines, rotations });
    summary.incidents++;
    summary.quarantined.push(...quarantines.map((q) => q.tenantId));
    summary.rotated_ips.push(...rotations.map((r) => ({ ip_id: r.ipId, replacement_ip_id: r.replacementId })));
  }
  return out;
}

/** The fleet as the incidents leave it: damaged IPs rest outside their pool, spares take their place. */
function applyRotations(ips: readonly PlanIp[], spares: readonly SpareIp[], incidents: readonly PlannedIncident[], allIps: readonly PlanIp[]): PlanIp[] {
  const out = ips.map((ip) => ({ ...ip }));
  for (const inc of incidents) {
    for (const r of inc.rotations) {
      const idx = out.findIndex((ip) => ip.ipId === r.ipId);
      const damaged = idx >= 0 ? out[idx]! : null;
      if (idx >= 0) out.splice(idx, 1);
      const sp = r.replacementId ? spares.find((x) => x.ipId === r.replacementId) : undefined;
      const pool = damaged ?? allIps.find((ip) => ip.poolId === inc.poolId);
      if (sp && pool) {
        out.push({ ...pool, ipId: sp.ipId, address: sp.address, sourceName: egressSourceName(sp.address), state: sp.state, nodeId: sp.nodeId, weight: r.weight });
      }
    }
  }
  return out.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}

export function planPlacements(i: PlanInputs): PlacementPlan {
  const s = i.settings;
  const summary: PlacementRunSummary = {
    tenants: 0, changed: 0, deferred: 0, by_tier: { premium: 0, standard: 0, rehabilitation: 0, quarantine: 0 }, incidents: 0, quarantined: [], rotated_ips: [], unplaceable: [], diversity_problems: [],
  };
  const incidents = planIncidents(i, summary);
  const ips = applyRotations(i.ips, i.spares, incidents, i.ips);
  const quarantines = new Map(i.quarantines);
  for (const inc of incidents) for (const q of inc.quarantines) if (!quarantines.has(q.tenantId)) quarantines.set(q.tenantId, { until: q.until, reason: q.reason });

  for (const tier of TIERS) {
    const tierIps = ips.filter((ip) => ip.tier === tier && ipCarriesMail(ip)).map((ip) => ({ ipId: ip.ipId, nodeId: ip.nodeId, nodeName: ip.nodeName }));
    summary.diversity_problems.push(...checkNodeDiversity(tier, tierIps, s.max_node_share_pct).problems);
  }

  const placements: PlannedPlacement[] = [];
  for (const t of i.tenants) {
    summary.tenants++;
    const cur = i.current.get(t.id) ?? null;
    const curPlacement: CurrentPlacement | null = cur ? { tier: cur.tier, origin: cur.origin, placedAt: cur.placedAt, overrideExpiresAt: cur.overrideExpiresAt } : null;
    const decision = decideTier({ score: t.score, locked: t.locked, sampleSufficient: t.sampleSufficient, quarantine: quarantines.get(t.id) ?? null, current: curPlacement, now: i.now }, s);
    if (decision.deferredTo) summary.deferred++;
    const shard = shardFor(t.id, decision.tier, ips, s.shard_size);
    summary.by_tier[decision.tier]++;
    const sameShard = cur !== null && JSON.stringify(cur.shard.map((x) => x.ip_id)) === JSON.stringify(shard.map((x) => x.ip_id));
    if (!decision.changed && sameShard) continue;
    const poolId = poolFor(decision.tier, shard, ips, i.pools);
    if (!poolId) {
      summary.unplaceable.push({ tenant_id: t.id, reason: `no pool of tier ${decision.tier} exists` });
      continue;
    }
    const reason = decision.changed
      ? `${cur ? `${cur.tier} -> ${decision.tier}` : `placed in ${decision.tier}`}: ${decision.reason}`
      : `shard rebalanced within ${decision.tier}: the tier's IPs changed (${cur!.shard.map((x) => x.address).join(', ') || 'none'} -> ${shard.map((x) => x.address).join(', ') || 'none'})`;
    const keepOverride = cur?.origin === 'operator' && !decision.changed;
    placements.push({
      tenantId: t.id,
      currentId: cur?.id ?? null,
      poolId,
      tier: decision.tier,
      origin: keepOverride ? 'operator' : 'engine',
      reason: (shard.length === 0 ? `${reason} (the tier has no IP carrying mail yet)` : reason).slice(0, 1000),
      inputs: { ...decision.inputs, shard_size: s.shard_size, tier_ips: ips.filter((ip) => ip.tier === decision.tier && ipCarriesMail(ip)).length },
      shard,
      overrideExpiresAt: keepOverride ? cur!.overrideExpiresAt : null,
    });
    summary.changed++;
  }
  return { incidents, placements, summary };
}
