import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../settings/settings.js';
import { egressSourceName } from '../fleet/naming.js';
import { planPlacements, type PlanInputs, type PlanIp, type SourceTenantCounts } from './placement-plan.js';
import type { Tier } from './placement.js';

const now = new Date('2026-11-22T12:00:00Z');
const s = DEFAULT_SETTINGS.placement;

function ip(n: number, tier: Tier, node = `n${n % 4}`, state: PlanIp['state'] = 'active'): PlanIp {
  const address = `203.0.113.${n}`;
  return { ipId: `ip${n}`, address, sourceName: egressSourceName(address), state, nodeId: node, nodeName: node, poolId: `pool-${tier}`, poolName: `${tier}-1`, tier, weight: 100 };
}

const fleet = [ip(1, 'premium'), ip(2, 'premium'), ip(3, 'standard'), ip(4, 'standard'), ip(5, 'standard'), ip(6, 'rehabilitation', 'n2', 'warming'), ip(7, 'quarantine')];

function inputs(over: Partial<PlanInputs> = {}): PlanInputs {
  return {
    now,
    settings: s,
    ips: fleet,
    pools: (['premium', 'standard', 'rehabilitation', 'quarantine'] as const).map((t) => ({ id: `pool-${t}`, name: `${t}-1`, tier: t })),
    spares: [{ ipId: 'ip9', nodeId: 'n1', address: '203.0.113.9', state: 'active' }],
    windowCounts: [],
    windowStart: new Date(now.getTime() - s.detection_window_hours * 3_600_000),
    poolsWithRecentIncident: new Set(),
    tenants: [],
    current: new Map(),
    quarantines: new Map(),
    ...over,
  };
}

describe('planPlacements (pure)', () => {
  it('draws no shard from an IP whose node may not send external mail or whose rDNS is not confirmed, nor a spare of that kind', () => {
    const tenant = { id: 'tenant-a', score: 80, locked: false, sampleSufficient: true };
    const gated = fleet.map((x) =>
      x.ipId === 'ip3' ? { ...x, readiness: { rdnsVerified: true, externalEgress: false } } : x.ipId === 'ip4' ? { ...x, readiness: { rdnsVerified: false, externalEgress: true } } : x,
    );
    const p = planPlacements(inputs({ ips: gated, tenants: [tenant] })).placements[0]!;
    expect(p.tier).toBe('standard');
    expect(p.shard.map((m) => m.ip_id)).toEqual(['ip5']);
    expect(p.inputs).toMatchObject({ tier_ips: 1 });
    const none = gated.map((x) => (x.ipId === 'ip5' ? { ...x, readiness: { rdnsVerified: true, externalEgress: false } } : x));
    expect(planPlacements(inputs({ ips: none, tenants: [tenant] })).placements[0]?.shard ?? []).toEqual([]);
  });

  it.each([
    ['a high scorer with a sample', { score: 95, locked: false, sampleSufficient: true }, 'premium'],
    ['a middling one', { score: 80, locked: false, sampleSufficient: true }, 'standard'],
    ['a locked one', { score: 40, locked: true, sampleSufficient: true }, 'rehabilitation'],
    ['a high scorer without a sample stays out of premium', { score: 95, locked: false, sampleSufficient: false }, 'standard'],
  ])('places %s in its tier, with a shard of that tier only', (_n, t, tier) => {
    const plan = planPlacements(inputs({ tenants: [{ id: 'tenant-a', ...t }] }));
    expect(plan.placements).toHaveLength(1);
    const p = plan.placements[0]!;
    expect(p.tier).toBe(tier);
    for (const m of p.shard) expect(fleet.find((x) => x.ipId === m.ip_id)!.tier).toBe(tier);
    expect(p.reason).toContain(`placed in ${tier}`);
  });

  it('writes nothing for a tenant whose tier and shard are unchanged', () => {
    const first = planPlacements(inputs({ tenants: [{ id: 't', score: 80, locked: false, sampleSufficient: true }] })).placements[0]!;
    const current = new Map([['t', { id: 'p1', tenantId: 't', poolId: first.poolId, tier: first.tier, origin: 'engine' as const, placedAt: new Date(now.getTime() - 86_400_000), overrideExpiresAt: null, shard: first.shard }]]);
    const again = planPlacements(inputs({ tenants: [{ id: 't', score: 80, locked: false, sampleSufficient: true }], current }));
    expect(again.placements).toEqual([]);
    expect(again.summary).toMatchObject({ tenants: 1, changed: 0 });
  });

  it('a bad apple is quarantined and the damaged IP rotated out for a spare, and the same run places on that fleet', () => {
    // ip3 carries a bad tenant's bounces: 30% of 1000 sends, where the rest of the pool is clean
    const counts: SourceTenantCounts[] = [
      { source: fleet[2]!.sourceName, tenantId: 'bad', sends: 1000, bounces: 300, complaints: 0 },
      { source: fleet[3]!.sourceName, tenantId: 'good', sends: 1000, bounces: 2, complaints: 0 },
      { source: fleet[4]!.sourceName, tenantId: 'good', sends: 1000, bounces: 2, complaints: 0 },
    ];
    const tenants = [
      { id: 'bad', score: 80, locked: false, sampleSufficient: true },
      { id: 'good', score: 80, locked: false, sampleSufficient: true },
    ];
    const plan = planPlacements(inputs({ windowCounts: counts, tenants }));
    expect(plan.incidents).toHaveLength(1);
    const inc = plan.incidents[0]!;
    expect(inc.poolId).toBe('pool-standard');
    expect(inc.quarantines.map((q) => q.tenantId)).toEqual(['bad']);
    expect(inc.rotations).toEqual([{ ipId: 'ip3', replacementId: 'ip9', weight: 100, reason: expect.any(String) }]);
    const bad = plan.placements.find((p) => p.tenantId === 'bad')!;
    expect(bad.tier).toBe('quarantine');
    const good = plan.placements.find((p) => p.tenantId === 'good')!;
    expect(good.shard.map((m) => m.ip_id)).not.toContain('ip3');
    expect(plan.summary).toMatchObject({ incidents: 1, quarantined: ['bad'], rotated_ips: [{ ip_id: 'ip3', replacement_ip_id: 'ip9' }] });
    // a standing condition with nothing new to act on is no new incident
    const quiet = planPlacements(inputs({ windowCounts: counts, tenants, quarantines: new Map([['bad', { until: new Date(now.getTime() + 3_600_000), reason: 'x' }]]), ips: fleet.filter((x) => x.ipId !== 'ip3'), poolsWithRecentIncident: new Set(['pool-standard']) }));
    expect(quiet.incidents).toEqual([]);
  });

  it('an operator override holds: the tier stays while it lasts', () => {
    const current = new Map([['t', { id: 'p1', tenantId: 't', poolId: 'pool-standard', tier: 'standard' as Tier, origin: 'operator' as const, placedAt: now, overrideExpiresAt: new Date(now.getTime() + 3_600_000), shard: [] }]]);
    const plan = planPlacements(inputs({ tenants: [{ id: 't', score: 99, locked: false, sampleSufficient: true }], current }));
    expect(plan.placements[0]).toMatchObject({ tier: 'standard', origin: 'operator', overrideExpiresAt: new Date(now.getTime() + 3_600_000) });
  });
});
