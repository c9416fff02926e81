import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectJson, startHarness, type Harness } from '../support/harness.js';
import { kumoRecord } from '../support/kumo-records.js';

let h: Harness;
let nodeToken: string;

async function verifiedTenant(slug: string, opts: { reported?: string[] } = {}): Promise<string> {
  const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug, display_name: slug, ...(opts.reported ? { engagement_reported: opts.reported } : {}) } }), 201);
  const d = await expectJson(await h.request('POST', `/v1/tenants/${t.id}/domains`, { body: { domain: `${slug}.example` } }), 201);
  await expectJson(await h.request('PATCH', `/v1/tenants/${t.id}/domains/${d.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
  return t.id;
}
const ingest = (records: unknown[]) => h.request('POST', '/v1/events/kumo', { token: nodeToken, body: records }).then((r) => expectJson(r, 200));
const engage = (events: unknown[]) => h.request('POST', '/v1/events/engagement', { body: { events } }).then((r) => expectJson(r, 200));

beforeAll(async () => {
  h = await startHarness();
  nodeToken = (await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'trust-node', region: 'fsn1', public_address: '203.0.113.210' } }), 201)).token;
});
afterAll(async () => h?.close());

describe('trust score through the API', () => {
  it('a new tenant without an authenticated domain is locked and told why', async () => {
    const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'unauth', display_name: 'U' } }), 201);
    const trust = await expectJson(await h.request('GET', `/v1/tenants/${t.id}/trust`), 200);
    expect(trust).toMatchObject({ score: 0, locked: true, external_sending: 'locked', authenticated: false, basis: 'insufficient_sample' });
    expect(trust.rehabilitation.instructions).toContain('SPF, DKIM and DMARC');
  });

  it('5 bounces in 100 sends lock; the target comes from the unlock rule, counts add up, and doing what it says unlocks', async () => {
    // a tenant that reports no engagement: its external mail is taken to engage at the priors
    const t = await verifiedTenant('bouncy');
    const at = new Date(Date.now() - 3600_000);
    await ingest([...Array.from({ length: 95 }, () => kumoRecord('Delivery', { tenant: t, at })), ...Array.from({ length: 5 }, () => kumoRecord('Bounce', { tenant: t, at }))]);
    const locked = await expectJson(await h.request('GET', `/v1/tenants/${t}/trust`), 200);
    expect(locked).toMatchObject({ locked: true, basis: 'wilson_interval', sample: { sends: 100, sufficient: true }, engagement_reported: [] });
    expect(locked.counts).toMatchObject({ sent: 100, delivered: 95, bounced: 5, expired: 0, bounces_scored: 5 });
    expect(locked.counts.sent).toBe(locked.counts.delivered + locked.counts.bounced + locked.counts.expired);
    expect(locked.rates.bounces.raw_pct).toBe(5);
    expect(locked.rates.replies).toMatchObject({ source: 'prior', raw_pct: 12 });
    // the score and the reason say the same number
    expect(locked.score).toBe(28);
    expect(locked.history.items[0]).toMatchObject({ locked: true, lock_reason: expect.stringContaining(`score ${locked.score} fell below 70`) });
    expect(locked.history.items[0].components.contributions.bounces).toBeLessThan(0);
    // the seed's arithmetic holds as a milestone; the target is what unlocks under the rule
    expect(locked.rehabilitation.milestones.bounces).toEqual({ current_pct: 5, target_pct: 1, clean_sends_needed: 400 });
    const target: number = locked.rehabilitation.clean_sends_needed;
    expect(target).toBeGreaterThan(400);
    expect(locked.rehabilitation.instructions).toContain(`Send ${target} clean warming messages`);
    expect(locked.rehabilitation.progress).toMatchObject({ clean_warming_sends: 0, remaining: target, target, text: `0 of ${target} clean warming sends` });

    // clean warming sends, which the network's peers and seeds engage with (at least 30% replies, 80% opens)
    const warm = async (n: number, tag: string) => {
      const recipients = Array.from({ length: n }, (_, i) => `${tag}${i}@peer.example`);
      await ingest(recipients.map((r) => kumoRecord('Delivery', { tenant: t, lane: 'warming', recipient: r })));
      const now = new Date().toISOString();
      await engage([
        ...recipients.slice(0, Math.ceil(n * 0.3)).map((_, i) => ({ id: `${tag}-r${i}`, tenant_id: t, lane: 'warming', kind: 'reply', occurred_at: now })),
        ...recipients.slice(0, Math.ceil(n * 0.8)).map((_, i) => ({ id: `${tag}-o${i}`, tenant_id: t, lane: 'warming', kind: 'open', occurred_at: now })),
      ]);
    };
    await warm(100, 'w1-');
    const progressing = await expectJson(await h.request('GET', `/v1/tenants/${t}/trust`), 200);
    expect(progressing.locked).toBe(true);
    const remaining: number = progressing.rehabilitation.clean_sends_needed;
    expect(progressing.rehabilitation.progress).toMatchObject({ clean_warming_sends: 100, remaining, target: 100 + remaining, text: `100 of ${100 + remaining} clean warming sends` });
    expect(progressing.rehabilitation.progress.estimated_unlock_on).toBeNull(); // no warming plan today: no date promised
    // the tenant does exactly what it was told: it unlocks
    await warm(remaining, 'w2-');
    const done = await expectJson(await h.request('GET', `/v1/tenants/${t}/trust`), 200);
    expect(done).toMatchObject({ locked: false, external_sending: 'allowed', rehabilitation: null });
    expect(done.score).toBeGreaterThanOrEqual(75);
  });

  it('a clean tenant that reports no engagement is not locked for it; one that reports it is judged on what it reports', async () => {
    const quiet = await verifiedTenant('quiet');
    await ingest(Array.from({ length: 200 }, () => kumoRecord('Delivery', { tenant: quiet })));
    const q = await expectJson(await h.request('GET', `/v1/tenants/${quiet}/trust`), 200);
    expect(q).toMatchObject({ locked: false, score: 78, engagement_reported: [] });
    expect(q.rates.opens).toMatchObject({ source: 'prior', raw_pct: 50 });
    // it now declares that it reports opens and replies, and has reported none: that is zero engagement
    expect((await expectJson(await h.request('PATCH', `/v1/tenants/${quiet}`, { body: { engagement_reported: ['replies', 'opens'] } }), 200)).engagement_reported).toEqual(['opens', 'replies']);
    const r = await expectJson(await h.request('GET', `/v1/tenants/${quiet}/trust`), 200);
    expect(r).toMatchObject({ score: 50, locked: true });
    expect(r.rates.opens.source).toBe('observed');
    expect((await h.request('PATCH', `/v1/tenants/${quiet}`, { body: { engagement_reported: ['clicks'] } })).status).toBe(400);
  });

  it('engagement lifts the score; a locked tenant unlocks only past the higher threshold', async () => {
    const t = await verifiedTenant('engaged', { reported: ['opens', 'replies'] });
    const at = new Date(Date.now() - 3600_000);
    const delivered = Array.from({ length: 600 }, (_, i) => kumoRecord('Delivery', { tenant: t, at, recipient: `p${i}@gmail.com` }));
    await ingest(delivered);
    expect((await expectJson(await h.request('GET', `/v1/tenants/${t}/trust`), 200)).locked).toBe(true);
    // 15% replies and 50% opens: well above 75
    const events = [
      ...Array.from({ length: 90 }, (_, i) => ({ id: `reply-${i}`, tenant_id: t, kind: 'reply', occurred_at: at.toISOString() })),
      ...Array.from({ length: 300 }, (_, i) => ({ id: `open-${i}`, tenant_id: t, kind: 'open', occurred_at: at.toISOString() })),
    ];
    expect(await engage(events)).toMatchObject({ accepted: 390, duplicates: 0 });
    expect(await engage(events)).toMatchObject({ accepted: 0, duplicates: 390 });
    const trust = await expectJson(await h.request('GET', `/v1/tenants/${t}/trust`), 200);
    expect(trust.score).toBeGreaterThanOrEqual(75);
    expect(trust).toMatchObject({ locked: false, external_sending: 'allowed', rehabilitation: null });
    expect(trust.components.replies).toBeGreaterThan(0);
    expect(trust.history.items[0].lock_reason).toContain('unlocked');
  });

  it('engagement for an unknown tenant is rejected per event, not for the batch', async () => {
    const t = await verifiedTenant('eng-mixed');
    const r = await engage([
      { id: 'a', tenant_id: t, kind: 'open', occurred_at: new Date().toISOString() },
      { id: 'b', tenant_id: '00000000-0000-4000-8000-000000000000', kind: 'open', occurred_at: new Date().toISOString() },
    ]);
    expect(r).toMatchObject({ accepted: 1, rejected: [{ index: 1 }] });
  });

  it('operator-edited weights apply (audited), and recompute rebuilds to the same state', async () => {
    const t = await verifiedTenant('weights');
    await ingest(Array.from({ length: 200 }, () => kumoRecord('Delivery', { tenant: t })));
    const before = await expectJson(await h.request('GET', `/v1/tenants/${t}/trust`), 200);
    expect(before.components.base).toBe(50);
    await expectJson(await h.request('PATCH', '/v1/settings/trust', { body: { base_authenticated: 80 } }), 200);
    const after = await expectJson(await h.request('GET', `/v1/tenants/${t}/trust`), 200);
    expect(after.components.base).toBe(80);
    expect(after.locked).toBe(false);
    const rebuilt = await expectJson(await h.request('POST', '/v1/trust/recompute', { body: { mode: 'rebuild' } }), 200);
    expect(rebuilt.tenants).toBeGreaterThan(0);
    const again = await expectJson(await h.request('GET', `/v1/tenants/${t}/trust`), 200);
    expect(again.lanes).toEqual(after.lanes);
    expect(again.score).toBe(after.score);
    const write = await h.tokenWith(['write']);
    expect((await h.request('POST', '/v1/trust/recompute', { token: write, body: { mode: 'rescore' } })).status).toBe(403);
    await expectJson(await h.request('PATCH', '/v1/settings/trust', { body: { base_authenticated: 50 } }), 200);
  });

  it('tenant tokens read their own trust only', async () => {
    const a = await verifiedTenant('own-a');
    const b = await verifiedTenant('own-b');
    const token = (await expectJson(await h.request('POST', `/v1/tenants/${a}/tokens`, { body: { name: 'dash' } }), 201)).token;
    expect((await expectJson(await h.request('GET', `/v1/tenants/${a}/trust`, { token }), 200)).tenant_id).toBe(a);
    expect((await h.request('GET', `/v1/tenants/${b}/trust`, { token })).status).toBe(403);
    expect((await h.request('GET', `/v1/tenants/${b}/suppressions`, { token })).status).toBe(403);
    expect((await h.request('POST', '/v1/events/engagement', { token, body: { events: [] } })).status).toBe(403);
  });
});

describe('leaderboard', () => {
  it('shows pseudonyms and scores only, without opted-out or unsampled tenants', async () => {
    const shown = await verifiedTenant('board-shown');
    const hidden = await verifiedTenant('board-optout');
    const tiny = await verifiedTenant('board-tiny');
    await ingest([...Array.from({ length: 150 }, () => kumoRecord('Delivery', { tenant: shown })), ...Array.from({ length: 150 }, () => kumoRecord('Delivery', { tenant: hidden })), kumoRecord('Delivery', { tenant: tiny })]);
    await expectJson(await h.request('PATCH', `/v1/tenants/${hidden}`, { body: { leaderboard_opt_out: true } }), 200);
    const token = (await expectJson(await h.request('POST', `/v1/tenants/${tiny}/tokens`, { body: { name: 'board' } }), 201)).token;
    const board = await expectJson(await h.request('GET', '/v1/leaderboard', { token }), 200);
    const pseudonyms = await Promise.all([shown, hidden, tiny].map(async (id) => (await expectJson(await h.request('GET', `/v1/tenants/${id}`), 200)).pseudonym));
    const listed = board.entries.map((e: { pseudonym: string }) => e.pseudonym);
    expect(listed).toContain(pseudonyms[0]);
    expect(listed).not.toContain(pseudonyms[1]);
    expect(listed).not.toContain(pseudonyms[2]);
    for (const e of board.entries) expect(Object.keys(e).sort()).toEqual(['pseudonym', 'rank', 'score']);
    const text = JSON.stringify(board);
    for (const leak of [shown, 'board-shown', '.example', '@', '203.0.113']) expect(text).not.toContain(leak);
  });
});
