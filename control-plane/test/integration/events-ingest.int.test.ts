import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectJson, startHarness, type Harness } from '../support/harness.js';
import { kumoRecord } from '../support/kumo-records.js';

let h: Harness;
let nodeToken: string;
let nodeId: string;

async function newTenant(slug: string, verified = true): Promise<string> {
  const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug, display_name: slug } }), 201);
  if (verified) {
    const d = await expectJson(await h.request('POST', `/v1/tenants/${t.id}/domains`, { body: { domain: `${slug}.example` } }), 201);
    await expectJson(await h.request('PATCH', `/v1/tenants/${t.id}/domains/${d.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
  }
  return t.id;
}

const post = (body: unknown, token = nodeToken, contentType?: string) =>
  h.request('POST', '/v1/events/kumo', { token, body, headers: contentType ? { 'content-type': contentType } : {} });

async function metrics(tenantId: string) {
  const { rows } = await sql<Record<string, string>>`
    SELECT day::text, lane::text, sent, delivered, hard_bounces, soft_bounces, complaints, opens, clicks, replies
    FROM tenant_daily_metrics WHERE tenant_id = ${tenantId} ORDER BY day, lane`.execute(h.ctx.db);
  return rows;
}

beforeAll(async () => {
  h = await startHarness();
  const n = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'ingest-node', region: 'fsn1', public_address: '203.0.113.200' } }), 201);
  nodeToken = n.token;
  nodeId = n.id;
});
afterAll(async () => h?.close());

describe('POST /v1/events/kumo authentication', () => {
  it('needs a node token: none, an operator token or a rotated node token get 401', async () => {
    const rec = kumoRecord('Delivery', { tenant: null });
    expect((await post(rec, '')).status).toBe(401);
    expect((await post(rec, h.adminToken)).status).toBe(401);
    const n = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'rotating', region: 'fsn1', public_address: '203.0.113.201' } }), 201);
    await expectJson(await h.request('POST', `/v1/nodes/${n.id}/token/rotate`), 200);
    expect((await post(rec, n.token)).status).toBe(401);
  });
});

describe('ingesting a batch', () => {
  let tenant: string;
  beforeEach(async () => {
    tenant = await newTenant(`t-${Math.random().toString(36).slice(2, 8)}`);
  });

  it('stores good records, rejects bad ones by index, suppresses hard bounces and complaints', async () => {
    const at = new Date('2026-11-20T10:00:00Z');
    const batch = [
      kumoRecord('Delivery', { tenant, at }),
      kumoRecord('Bounce', { tenant, at, recipient: 'gone@gmail.com' }),
      { type: 'Delivery', id: 'x' },
      kumoRecord('TransientFailure', { tenant, at }),
      'not a record',
      kumoRecord('Feedback', { tenant, at, recipient: 'angry@yahoo.com' }),
      kumoRecord('Bounce', { tenant, at, code: 500, enhanced: null, content: 'KumoMTA internal: QueueManager::insert failed during reception: no pool' }),
      kumoRecord('Delivery', { tenant, at, recipient: ['a@x.example', 'b@x.example'] }),
    ];
    const r = await expectJson(await post(batch), 200);
    expect(r).toMatchObject({ received: 8, accepted: 7, duplicates: 0, unattributed: 0, suppressed: 2 });
    expect(r.rejected.map((x: { index: number }) => x.index)).toEqual([2, 4]);
    expect(r.rejected[0].reason).toMatch(/time|spool id/);

    expect(await metrics(tenant)).toEqual([
      { day: '2026-11-20', lane: 'external', sent: '4', delivered: '3', hard_bounces: '1', soft_bounces: '1', complaints: '1', opens: '0', clicks: '0', replies: '0' },
    ]);
    const supp = await expectJson(await h.request('GET', `/v1/tenants/${tenant}/suppressions`), 200);
    expect(supp.items.map((s: { pattern: string; reason: string }) => [s.pattern, s.reason]).sort()).toEqual([['angry@yahoo.com', 'complaint'], ['gone@gmail.com', 'hard_bounce']]);
    const node = await expectJson(await h.request('GET', `/v1/nodes/${nodeId}`), 200);
    expect(node.last_seen_at).not.toBeNull();
  });

  it('a retried batch changes nothing', async () => {
    const batch = Array.from({ length: 20 }, (_, i) => kumoRecord(i % 5 === 0 ? 'Bounce' : 'Delivery', { tenant }));
    const first = await expectJson(await post(batch), 200);
    const before = { metrics: await metrics(tenant), snaps: await h.ctx.db.selectFrom('trust_score_snapshots').select('id').where('tenant_id', '=', tenant).execute() };
    const again = await expectJson(await post(batch), 200);
    expect(first).toMatchObject({ accepted: 20, duplicates: 0 });
    expect(again).toMatchObject({ accepted: 0, duplicates: 20, suppressed: 0, tenants_rescored: 0 });
    expect(await metrics(tenant)).toEqual(before.metrics);
    expect(await h.ctx.db.selectFrom('trust_score_snapshots').select('id').where('tenant_id', '=', tenant).execute()).toEqual(before.snaps);
  });

  it('a record repeated inside one batch counts once', async () => {
    const rec = kumoRecord('Delivery', { tenant });
    expect(await expectJson(await post([rec, rec, rec]), 200)).toMatchObject({ accepted: 1, duplicates: 2 });
  });

  it('out-of-order batches roll up to the same numbers as in-order ones', async () => {
    const other = await newTenant(`o-${Math.random().toString(36).slice(2, 8)}`);
    const days = ['2026-11-18', '2026-11-19', '2026-11-20'];
    const plan = days.flatMap((d, i) => [
      ['Delivery', d], ['Delivery', d], ['Bounce', d], ...(i === 1 ? [['TransientFailure', d]] : []),
    ]) as [ 'Delivery' | 'Bounce' | 'TransientFailure', string][];
    const make = (t: string) => plan.map(([type, d], i) => kumoRecord(type, { tenant: t, at: new Date(`${d}T0${i % 10}:00:00Z`), id: `${t.slice(0, 8)}${i}` }));
    for (const rec of make(tenant)) await expectJson(await post([rec]), 200);
    const shuffled = make(other).reverse();
    await expectJson(await post(shuffled.slice(0, 4)), 200);
    await expectJson(await post(shuffled.slice(4)), 200);
    const strip = (rows: Record<string, string>[]) => rows.map(({ ...r }) => r);
    expect(strip(await metrics(other))).toEqual(strip(await metrics(tenant)));
    expect((await metrics(tenant)).length).toBe(3);
  });

  it('accepts NDJSON, one record per line', async () => {
    const ndjson = [kumoRecord('Delivery', { tenant }), kumoRecord('Delivery', { tenant })].map((r) => JSON.stringify(r)).join('\n') + '\n{broken\n';
    const r = await expectJson(await post(ndjson, nodeToken, 'application/x-ndjson'), 200);
    expect(r).toMatchObject({ received: 3, accepted: 2 });
    expect(r.rejected).toHaveLength(1);
  });

  it('five consecutive soft bounces to one recipient count as a hard bounce and suppress it', async () => {
    const t0 = Date.parse('2026-11-21T00:00:00Z');
    const softs = (who: string, n: number, from: number) => Array.from({ length: n }, (_, i) => kumoRecord('TransientFailure', { tenant, recipient: who, at: new Date(t0 + (from + i) * 60_000), attempts: from + i + 1 }));
    const r1 = await expectJson(await post(softs('full@gmail.com', 4, 0)), 200);
    expect(r1.promoted_soft_streaks).toBe(0);
    const r2 = await expectJson(await post(softs('full@gmail.com', 1, 4)), 200);
    expect(r2).toMatchObject({ promoted_soft_streaks: 1, suppressed: 1 });
    // idempotent: replaying the whole streak promotes nothing more
    expect((await expectJson(await post(softs('full@gmail.com', 5, 0)), 200)).promoted_soft_streaks).toBe(0);

    // a delivery in between breaks the streak
    const broken = [...softs('ok@gmail.com', 3, 0), kumoRecord('Delivery', { tenant, recipient: 'ok@gmail.com', at: new Date(t0 + 3.5 * 60_000) }), ...softs('ok@gmail.com', 3, 4)];
    expect((await expectJson(await post(broken), 200)).promoted_soft_streaks).toBe(0);

    const m = await metrics(tenant);
    expect(m.reduce((n, r) => n + Number(r.hard_bounces), 0)).toBe(1);
    const supp = await expectJson(await h.request('GET', `/v1/tenants/${tenant}/suppressions`), 200);
    expect(supp.items.map((s: { pattern: string }) => s.pattern)).toEqual(['full@gmail.com']);
  });

  it('counts the warming lane apart from external traffic', async () => {
    await expectJson(await post([kumoRecord('Delivery', { tenant, lane: 'warming' }), kumoRecord('Delivery', { tenant }), kumoRecord('Delivery', { tenant, lane: 'warming' })]), 200);
    const trust = await expectJson(await h.request('GET', `/v1/tenants/${tenant}/trust`), 200);
    expect(trust.lanes.warming.delivered).toBe(2);
    expect(trust.lanes.external.delivered).toBe(1);
    expect(trust.sample.sends).toBe(3);
  });

  it('records that name no known tenant are stored unattributed, never attached to a tenant', async () => {
    const r = await expectJson(await post([kumoRecord('Delivery', { tenant: '00000000-0000-4000-8000-00000000dead' }), kumoRecord('Delivery', { tenant: null })]), 200);
    expect(r).toMatchObject({ accepted: 2, unattributed: 2, tenants_rescored: 0 });
  });

  it('refuses a batch over the size limit with 413 and stores none of it', async () => {
    const big = Array.from({ length: 10_001 }, () => ({ type: 'Delivery' }));
    expect((await expectJson(await post(big), 413)).code).toBe('PAYLOAD_TOO_LARGE');
    expect((await expectJson(await post('{not json'), 400)).code).toBe('VALIDATION_FAILED');
  });
});
