import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../settings/settings.js';
import { assessPool } from './bad-apples.js';
import { computeCosts } from './costs.js';
import { checkNodeDiversity } from './node-diversity.js';

const s = DEFAULT_SETTINGS.placement;

describe('node diversity', () => {
  const ip = (i: number, node: string) => ({ ipId: `ip${i}`, nodeId: node, nodeName: node });
  it.each([
    ['4 IPs on 4 nodes', [ip(1, 'a'), ip(2, 'b'), ip(3, 'c'), ip(4, 'd')], true],
    ['8 IPs, 2 per node on 4 nodes', [1, 2, 3, 4, 5, 6, 7, 8].map((i) => ip(i, 'n' + (i % 4))), true],
    ['4 IPs, 2 on one node', [ip(1, 'a'), ip(2, 'a'), ip(3, 'c'), ip(4, 'd')], false],
    ['3 IPs can never satisfy 25%', [ip(1, 'a'), ip(2, 'b'), ip(3, 'c')], false],
    ['no IPs', [], true],
  ])('%s', (_n, ips, ok) => {
    const r = checkNodeDiversity('premium', ips, 25);
    expect(r.satisfied).toBe(ok);
    if (!ok) expect(r.problems.join(' ')).toMatch(/premium:/);
  });

  it('says how many nodes the fleet would need', () => {
    const r = checkNodeDiversity('standard', [1, 2, 3, 4, 5, 6, 7, 8].map((i) => ip(i, i <= 4 ? 'a' : 'b')), 25);
    expect(r).toMatchObject({ satisfied: false, nodes: 2, nodes_needed: 4, worst: { node: 'a', ips: 4, share_pct: 50 } });
  });
});

describe('bad apples', () => {
  const tenants = [
    { tenantId: 'clean-1', sends: 4000, bounces: 20, complaints: 0 },
    { tenantId: 'clean-2', sends: 4000, bounces: 24, complaints: 1 },
    { tenantId: 'burst', sends: 2000, bounces: 700, complaints: 2 },
  ];
  const pool = tenants.reduce((a, t) => ({ sends: a.sends + t.sends, bounces: a.bounces + t.bounces, complaints: a.complaints + t.complaints }), { sends: 0, bounces: 0, complaints: 0 });

  it('finds the tenant whose share of bounces far exceeds its share of volume', () => {
    const r = assessPool(pool, tenants, [], s);
    expect(r.level).toBe('review');
    expect(r.bad_apples.map((b) => b.tenant_id)).toEqual(['burst']);
    expect(r.bad_apples[0]).toMatchObject({ metric: 'bounce', share_of_volume_pct: 20 });
    expect(r.bad_apples[0]!.lift).toBeGreaterThan(4);
    expect(r.bad_apples[0]!.reason).toContain('of the pool\'s bounces');
  });

  it('a clean pool, or one below the minimum sample, is left alone', () => {
    expect(assessPool({ sends: 10000, bounces: 100, complaints: 2 }, tenants.slice(0, 2), [], s).level).toBe('ok');
    expect(assessPool({ sends: 100, bounces: 50, complaints: 5 }, [], [], s)).toMatchObject({ level: 'ok', sample_sufficient: false });
  });

  it('a pool over the pause line, and an IP over it, are flagged', () => {
    const r = assessPool({ sends: 1000, bounces: 120, complaints: 0 }, [], [{ ipId: 'ip-bad', sends: 500, bounces: 100, complaints: 0 }, { ipId: 'ip-ok', sends: 500, bounces: 20, complaints: 0 }], s);
    expect(r.level).toBe('pause');
    expect(r.damaged_ips.map((d) => d.ip_id)).toEqual(['ip-bad']);
  });

  it('an even spread of bounces finds no single bad apple', () => {
    const even = [1, 2, 3, 4].map((i) => ({ tenantId: `t${i}`, sends: 1000, bounces: 60, complaints: 0 }));
    const r = assessPool({ sends: 4000, bounces: 240, complaints: 0 }, even, [], s);
    expect(r.level).toBe('review');
    expect(r.bad_apples).toEqual([]);
  });
});

describe('costs', () => {
  it('prices IPs and nodes per tier and tenants by their share of delivered mail', () => {
    const r = computeCosts({
      ips: [
        { id: 'p1', nodeId: 'n1', tier: 'premium', monthlyUsd: null },
        { id: 's1', nodeId: 'n1', tier: 'standard', monthlyUsd: null },
        { id: 's2', nodeId: 'n2', tier: 'standard', monthlyUsd: 3 },
      ],
      nodes: [{ id: 'n1', monthlyUsd: null }, { id: 'n2', monthlyUsd: 20 }, { id: 'n3', monthlyUsd: null }],
      tenants: [
        { tenantId: 'a', tier: 'standard', delivered: 30000 },
        { tenantId: 'b', tier: 'standard', delivered: 10000 },
        { tenantId: 'c', tier: 'premium', delivered: 5000 },
      ],
      baseline: { ipUsd: 4.99, vpsUsd: 9.99 },
      windowDays: 30.4375,
    });
    const by = Object.fromEntries(r.per_tier.map((t) => [t.tier, t]));
    expect(by.premium).toMatchObject({ ips: 1, ip_usd: 4.99, node_usd: 5, total_usd: 9.99 });
    expect(by.standard).toMatchObject({ ips: 2, ip_usd: 7.99, node_usd: 25, total_usd: 32.99, delivered: 40000 });
    expect(by.unassigned).toMatchObject({ ips: 0, node_usd: 9.99 });
    expect(by.standard!.per_1000_delivered_usd).toBeCloseTo((32.99 / 40000) * 1000, 4);
    expect(r.per_tenant.find((t) => t.tenant_id === 'a')).toMatchObject({ share_of_tier_pct: 75, cost_usd: 24.74 });
    expect(r.total.monthly_usd).toBeCloseTo(9.99 + 32.99 + 9.99, 2);
  });
});
