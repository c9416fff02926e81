import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectJson, startHarness, type Harness } from '../support/harness.js';
import { kumoRecord } from '../support/kumo-records.js';

let h: Harness;
const ids: Record<string, any> = {};

// these tenants report their engagement: placement follows what they report
async function verifiedTenant(slug: string): Promise<string> {
  const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug, display_name: slug, engagement_reported: ['opens', 'replies'] } }), 201);
  const d = await expectJson(await h.request('POST', `/v1/tenants/${t.id}/domains`, { body: { domain: `${slug}.example` } }), 201);
  await expectJson(await h.request('PATCH', `/v1/tenants/${t.id}/domains/${d.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
  return t.id;
}

beforeAll(async () => {
  h = await startHarness();
  const nodes: any[] = [];
  for (let i = 0; i < 4; i++) nodes.push(await expectJson(await h.request('POST', '/v1/nodes', { body: { name: `node-${i}`, region: 'fsn1', public_address: `198.51.100.${i + 1}` } }), 201));
  ids.nodes = nodes;
  for (const [tier, count, state] of [['premium', 4, 'active'], ['standard', 4, 'active'], ['rehabilitation', 2, 'warming'], ['quarantine', 1, 'active']] as const) {
    const pool = await expectJson(await h.request('POST', '/v1/pools', { body: { name: `${tier}-1`, tier } }), 201);
    ids[tier] = { pool: pool.id, ips: [] as any[] };
    for (let i = 0; i < count; i++) {
      const n = Object.keys(ids).length * 10 + i;
      const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: `203.0.113.${n}`, node_id: nodes[i % 4]!.id, rdns_name: `mta${n}.example.net`, state } }), 201);
      await expectJson(await h.request('PUT', `/v1/pools/${pool.id}/members/${ip.id}`, { body: { weight: 100 } }), 200);
      ids[tier].ips.push(ip);
    }
  }
});
afterAll(async () => h?.close());

describe('placement through the API', () => {
  it('places tenants by trust, with shards drawn only from their tier, and explains why', async () => {
    const good = await verifiedTenant('good');
    const unauth = (await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'unauth', display_name: 'u' } }), 201)).id;
    // make "good" premium-worthy: plenty of deliveries and engagement
    const node = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'poster', region: 'fsn1', public_address: '198.51.100.99' } }), 201);
    await expectJson(await h.request('POST', '/v1/events/kumo', { token: node.token, body: Array.from({ length: 500 }, () => kumoRecord('Delivery', { tenant: good })) }), 200);
    const at = new Date().toISOString();
    await expectJson(await h.request('POST', '/v1/events/engagement', { body: { events: [...Array.from({ length: 150 }, (_, i) => ({ id: `r${i}`, tenant_id: good, kind: 'reply', occurred_at: at })), ...Array.from({ length: 400 }, (_, i) => ({ id: `o${i}`, tenant_id: good, kind: 'open', occurred_at: at }))] } }), 200);

    const run = await expectJson(await h.request('POST', '/v1/placements/run'), 200);
    expect(run.changed).toBeGreaterThanOrEqual(2);
    expect(run.diversity_problems.join(' ')).toContain('rehabilitation');

    const g = await expectJson(await h.request('GET', `/v1/tenants/${good}/placement`), 200);
    expect(g).toMatchObject({ tier: 'premium', origin: 'engine', pool_id: ids.premium.pool, quarantine: null });
    expect(g.shard).toHaveLength(2);
    const premiumIps = new Set(ids.premium.ips.map((ip: any) => ip.id));
    expect(g.shard.every((s: any) => premiumIps.has(s.ip_id))).toBe(true);
    expect(g.reason).toContain('premium band');
    expect(g.inputs).toMatchObject({ current_tier: null, shard_size: 2, tier_ips: 4 });

    const u = await expectJson(await h.request('GET', `/v1/tenants/${unauth}/placement`), 200);
    expect(u).toMatchObject({ tier: 'rehabilitation' });
    expect(u.reason).toContain('locked');

    // same inputs, same placement: a second run changes nothing
    expect((await expectJson(await h.request('POST', '/v1/placements/run'), 200)).changed).toBe(0);
    ids.good = good;
  });

  it('an operator override holds until it is released; the history explains every step', async () => {
    const t = ids.good;
    const o = await expectJson(await h.request('POST', `/v1/tenants/${t}/placement/override`, { body: { tier: 'quarantine', expires_at: new Date(Date.now() + 86_400_000).toISOString(), reason: 'abuse report under review' } }), 200);
    expect(o).toMatchObject({ tier: 'quarantine', origin: 'operator' });
    expect(o.override_expires_at).not.toBeNull();
    expect((await expectJson(await h.request('POST', '/v1/placements/run'), 200)).changed).toBe(0);
    expect((await expectJson(await h.request('GET', `/v1/tenants/${t}/placement`), 200)).tier).toBe('quarantine');
    const released = await expectJson(await h.request('DELETE', `/v1/tenants/${t}/placement/override`), 200);
    expect(released).toMatchObject({ tier: 'premium', origin: 'engine' });
    expect((await expectJson(await h.request('DELETE', `/v1/tenants/${t}/placement/override`), 409)).code).toBe('CONFLICT');
    const history = await expectJson(await h.request('GET', `/v1/tenants/${t}/placements`), 200);
    expect(history.items.map((p: any) => p.tier)).toEqual(['premium', 'quarantine', 'premium']);
    expect(history.items[1].reason).toContain('abuse report under review');
    expect(history.items[1].superseded_at).not.toBeNull();
    const audit = await expectJson(await h.request('GET', `/v1/audit-log?target_id=${t}&action=placement.override`), 200);
    expect(audit.items).toHaveLength(1);
  });

  it('removing an IP from a tier rebalances only the tenants that used it, and records why', async () => {
    const tenants = [];
    for (let i = 0; i < 6; i++) tenants.push(await verifiedTenant(`std-${i}`));
    await expectJson(await h.request('POST', '/v1/placements/run'), 200);
    const before = new Map<string, string[]>();
    for (const t of tenants) before.set(t, (await expectJson(await h.request('GET', `/v1/tenants/${t}/placement`), 200)).shard.map((s: any) => s.ip_id));
    const victim = ids.standard.ips[0].id;
    await expectJson(await h.request('DELETE', `/v1/pools/${ids.standard.pool}/members/${victim}`), 200);
    await expectJson(await h.request('POST', '/v1/placements/run'), 200);
    for (const t of tenants) {
      const p = await expectJson(await h.request('GET', `/v1/tenants/${t}/placement`), 200);
      const ipsNow = p.shard.map((s: any) => s.ip_id);
      expect(ipsNow).not.toContain(victim);
      if (before.get(t)!.includes(victim)) expect(p.reason).toContain('shard rebalanced');
      else expect(ipsNow).toEqual(before.get(t));
    }
    await expectJson(await h.request('PUT', `/v1/pools/${ids.standard.pool}/members/${victim}`, { body: { weight: 100 } }), 200);
  });

  it('reports tiers with node concentration problems and what the fleet lacks', async () => {
    const r = await expectJson(await h.request('GET', '/v1/tiers'), 200);
    const by = Object.fromEntries(r.tiers.map((t: any) => [t.tier, t]));
    expect(by.premium.node_diversity).toMatchObject({ ips: 4, nodes: 4, satisfied: true });
    expect(by.rehabilitation.node_diversity.satisfied).toBe(false);
    expect(by.rehabilitation.node_diversity.problems.join(' ')).toContain('at least 4 IPs');
    expect(by.premium.tenants).toBeGreaterThanOrEqual(1);
  });

  it('shows an IP\'s warm-up schedule as KumoMTA throttles, and advances a day only when it was earned', async () => {
    const ip = ids.rehabilitation.ips[0];
    const w = await expectJson(await h.request('GET', `/v1/ips/${ip.id}/warmup?days=3`), 200);
    expect(w).toMatchObject({ state: 'warming', day: 0, egress_source: `ip-${ip.address.replace(/\./g, '-')}`, throttles_today: { gmail: '50/d,max_burst=3', microsoft: '50/d,max_burst=3', yahoo: '50/d,max_burst=3', other: '100/d,max_burst=5' } });
    expect(w.schedule.map((d: any) => d.caps.gmail)).toEqual([50, 70, 98]);

    // yesterday: the IP sent its full caps, cleanly
    const node = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'warm-poster', region: 'fsn1', public_address: '198.51.100.98' } }), 201);
    const yesterday = new Date(Date.now() - 86_400_000);
    yesterday.setUTCHours(12);
    const records = (['gmail.com', 'outlook.com', 'yahoo.com', 'example.org'] as const).flatMap((domain, i) =>
      Array.from({ length: i === 3 ? 100 : 50 }, (_, n) => ({ ...kumoRecord('Delivery', { tenant: ids.good, at: yesterday, recipient: `w${n}@${domain}` }), egress_source: w.egress_source })),
    );
    await expectJson(await h.request('POST', '/v1/events/kumo', { token: node.token, body: records }), 200);
    const other = ids.rehabilitation.ips[1];
    const run = await expectJson(await h.request('POST', '/v1/ips/warmup/run'), 200);
    expect(run.evaluated).toBeGreaterThanOrEqual(2);
    expect((await expectJson(await h.request('GET', `/v1/ips/${ip.id}/warmup`), 200)).day).toBe(1);
    // the IP that sent nothing repeats its day
    expect((await expectJson(await h.request('GET', `/v1/ips/${other.id}/warmup`), 200)).day).toBe(0);
    // judged once per day
    expect((await expectJson(await h.request('POST', '/v1/ips/warmup/run'), 200)).evaluated).toBe(0);
    const audit = await expectJson(await h.request('GET', `/v1/audit-log?target_id=${ip.id}&action=ip.warmup.advance`), 200);
    expect(audit.items[0].details.reason).toContain('day 0 earned');
  });

  it('reports costs per tier, per tenant and per 1,000 delivered, for operators only', async () => {
    const c = await expectJson(await h.request('GET', '/v1/costs'), 200);
    expect(c.baseline).toEqual({ ip_monthly_usd: 4.99, vps_monthly_usd: 9.99 });
    const premium = c.per_tier.find((t: any) => t.tier === 'premium');
    expect(premium.ips).toBe(4);
    expect(premium.ip_usd).toBeCloseTo(4 * 4.99, 2);
    expect(c.per_tenant.find((t: any) => t.tenant_id === ids.good)).toMatchObject({ tier: 'premium' });
    expect(c.total.per_1000_delivered_usd).toBeGreaterThan(0);
    const tenantToken = (await expectJson(await h.request('POST', `/v1/tenants/${ids.good}/tokens`, { body: { name: 'x' } }), 201)).token;
    expect((await h.request('GET', '/v1/costs', { token: tenantToken })).status).toBe(403);
    expect((await h.request('GET', `/v1/tenants/${ids.good}/placement`, { token: tenantToken })).status).toBe(403);
  });

  it('a tenant not placed yet answers 404 with a hint', async () => {
    const { rows } = await sql<{ id: string }>`INSERT INTO tenants (slug, display_name, pseudonym, updated_at) VALUES ('unplaced', 'x', 'Sender_999999', now()) RETURNING id`.execute(h.ctx.db);
    expect((await expectJson(await h.request('GET', `/v1/tenants/${rows[0]!.id}/placement`), 404)).detail).toContain('not been placed yet');
  });
});
