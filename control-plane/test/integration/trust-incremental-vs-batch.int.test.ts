/**
 * Property: however events arrive (split into random batches, shuffled, with retries), the rollups and
 * scores that ingest maintains incrementally equal what the full batch job rebuilds from the stored
 * events.
 */
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebuildTrust } from '../../src/app/trust/rebuild.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';
import { kumoRecord, type RecordKind } from '../support/kumo-records.js';

let h: Harness;
let nodeToken: string;
let run = 0;

beforeAll(async () => {
  h = await startHarness({ CP_LOG_LEVEL: 'warn' });
  nodeToken = (await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'prop-node', region: 'fsn1', public_address: '203.0.113.230' } }), 201)).token;
});
afterAll(async () => h?.close());

async function tenants(n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const slug = `p${run}-${i}`;
    const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug, display_name: slug } }), 201);
    if (i % 3 !== 2) {
      const d = await expectJson(await h.request('POST', `/v1/tenants/${t.id}/domains`, { body: { domain: `${slug}.example` } }), 201);
      await expectJson(await h.request('PATCH', `/v1/tenants/${t.id}/domains/${d.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
    }
    ids.push(t.id);
  }
  return ids;
}

async function state(ids: string[]) {
  const metrics = await sql<Record<string, string>>`
    SELECT tenant_id::text, day::text, lane::text, sent, delivered, hard_bounces, soft_bounces, complaints, opens, clicks, replies
    FROM tenant_daily_metrics WHERE tenant_id = ANY(${ids}::uuid[]) AND (sent + delivered + hard_bounces + soft_bounces + complaints + opens + clicks + replies) > 0
    ORDER BY 1, 2, 3`.execute(h.ctx.db);
  const trust = await sql<Record<string, string>>`
    SELECT tenant_id::text, score::text, locked::text, basis::text FROM tenant_trust WHERE tenant_id = ANY(${ids}::uuid[]) ORDER BY 1`.execute(h.ctx.db);
  return { metrics: metrics.rows, trust: trust.rows };
}

const eventArb = fc.record({
  tenant: fc.integer({ min: 0, max: 2 }),
  kind: fc.constantFrom<RecordKind>('Delivery', 'Delivery', 'Delivery', 'Bounce', 'TransientFailure', 'Expiration', 'Feedback', 'AdminBounce', 'Reception'),
  recipient: fc.integer({ min: 0, max: 5 }),
  dayAgo: fc.integer({ min: 0, max: 9 }),
  minute: fc.integer({ min: 0, max: 1439 }),
  warming: fc.boolean(),
});
const engagementArb = fc.record({ tenant: fc.integer({ min: 0, max: 2 }), kind: fc.constantFrom('open', 'click', 'reply', 'not_spam'), dayAgo: fc.integer({ min: 0, max: 9 }), n: fc.integer({ min: 0, max: 1000 }) });

describe('incremental ingest equals the batch rebuild', () => {
  it('for random event sets, batchings and orders', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventArb, { minLength: 1, maxLength: 120 }),
        fc.array(engagementArb, { maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }),
        fc.integer(),
        async (events, engagements, cuts, seed) => {
          run++;
          const ids = await tenants(3);
          const midnight = Date.UTC(2026, 10, 22);
          const records = events.map((e, i) =>
            kumoRecord(e.kind, {
              tenant: ids[e.tenant]!,
              recipient: `rcpt${e.recipient}@gmail.com`,
              at: new Date(midnight - e.dayAgo * 86_400_000 + e.minute * 60_000 - 86_400_000),
              lane: e.warming ? 'warming' : 'external',
              id: `run${run}e${i}`,
            }),
          );
          // shuffle deterministically, then replay a few records as a retry would
          const rnd = fc.sample(fc.integer({ min: 0, max: 1_000_000 }), { seed, numRuns: records.length * 2 + 1 });
          const shuffled = records.map((r, i) => ({ r, k: rnd[i]! })).sort((a, b) => a.k - b.k).map((x) => x.r);
          const withRetries = [...shuffled, ...shuffled.slice(0, Math.min(5, shuffled.length))];
          let at = 0;
          for (let c = 0; at < withRetries.length; c++) {
            const size = cuts[c % cuts.length]!;
            await expectJson(await h.request('POST', '/v1/events/kumo', { token: nodeToken, body: withRetries.slice(at, at + size) }), 200);
            at += size;
          }
          const engagementEvents = engagements.map((g, i) => ({
            id: `run${run}g${i}-${g.n}`,
            tenant_id: ids[g.tenant]!,
            kind: g.kind,
            occurred_at: new Date(midnight - g.dayAgo * 86_400_000 - 3_600_000).toISOString(),
          }));
          if (engagementEvents.length > 0) await expectJson(await h.request('POST', '/v1/events/engagement', { body: { events: engagementEvents } }), 200);

          const incremental = await state(ids);
          await rebuildTrust(h.ctx);
          const rebuilt = await state(ids);
          expect(rebuilt.metrics).toEqual(incremental.metrics);
          expect(rebuilt.trust).toEqual(incremental.trust);
        },
      ),
      { numRuns: 12 },
    );
  }, 120_000);
});
