/**
 * The warming network against the real database, gateway and an SMTP server standing in for kumod:
 * members join, a day is planned under the contagion rules, the worker sends the plan through the
 * gateway as the warming agent (warming lane, tagged Message-IDs), engagement and replies are credited
 * with the recipient's weight, and operators and tenants see progress and health.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSubmissionGateway, type SubmissionGateway } from '../../src/gateway/submission-gateway.js';
import { warmingAcceptedKey } from '../../src/adapters/redis/keys.js';
import { warmingTransport } from '../../src/app/jobs/warming-jobs.js';
import { sendDueWarming } from '../../src/app/warming/send-due.js';
import { expectJson, startHarness, testConfig, type Harness } from '../support/harness.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../../..');
const NOW = new Date('2026-11-22T23:30:00Z');
const DAY = '2026-11-22';

let h: Harness;
let gw: SubmissionGateway;
let sink: SmtpSink;
const tenants: Record<string, string> = {};
const seeds: string[] = [];
let gatewayEnv: Record<string, string>;

async function tenantWithMailboxes(slug: string, n: number, opts: { locked: boolean; listed?: boolean }) {
  const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug, display_name: slug } }), 201);
  const d = await expectJson(await h.request('POST', `/v1/tenants/${t.id}/domains`, { body: { domain: `${slug}.example` } }), 201);
  await expectJson(await h.request('PATCH', `/v1/tenants/${t.id}/domains/${d.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
  await expectJson(await h.request('POST', `/v1/tenants/${t.id}/placement/override`, { body: { tier: opts.locked ? 'rehabilitation' : 'standard', expires_at: '2027-01-01T00:00:00Z', reason: 'test' } }), 200);
  await h.ctx.db
    .updateTable('tenant_trust')
    .set(opts.locked ? { score: 55, locked: true, lock_kind: 'score', locked_at: new Date('2026-11-20T00:00:00Z'), lock_reason: 'score 55 fell below 70', rehab_target_sends: 400 } : { score: 85, locked: false, lock_kind: null, locked_at: null, lock_reason: null, rehab_target_sends: null })
    .where('tenant_id', '=', t.id)
    .execute();
  for (let i = 0; i < n; i++) {
    const m = await expectJson(await h.request('POST', `/v1/tenants/${t.id}/mailboxes`, { body: { domain_id: d.id, local_part: `person${i}` } }), 201);
    const w = await expectJson(await h.request('POST', `/v1/tenants/${t.id}/warming/members`, { body: { mailbox_id: m.id, ramp: i === 0 ? 'prewarmed' : 'new' } }), 201);
    if (opts.listed) await expectJson(await h.request('PATCH', `/v1/warming/members/${w.id}`, { body: { listed: true } }), 200);
  }
  tenants[slug] = t.id;
}

beforeAll(async () => {
  sink = await startSmtpSink();
  h = await startHarness({}, { now: () => NOW });
  const tls = mkdtempSync(path.join(tmpdir(), 'kcp-tls-'));
  await run('bash', [path.join(root, 'scripts/self-signed-cert.sh'), tls, 'localhost']);
  const rehab = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'rehab-1', tier: 'rehabilitation' } }), 201);
  const std = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'standard-1', tier: 'standard' } }), 201);
  const node = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'node-a', region: 'fsn1', public_address: '198.51.100.10', relay_host: '127.0.0.1', relay_port: sink.port } }), 201);
  for (const [i, p] of [rehab.id, std.id].entries()) {
    const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: `203.0.113.${20 + i}`, node_id: node.id, rdns_name: `mta${i}.example.net`, state: 'active' } }), 201);
    await expectJson(await h.request('PUT', `/v1/pools/${p}/members/${ip.id}`, { body: { weight: 100 } }), 200);
  }
  // locked, but above the score that isolates a member (50): it rehabilitates with the seeds' help
  await tenantWithMailboxes('rehabco', 3, { locked: true });
  await tenantWithMailboxes('goodco', 4, { locked: false });
  await tenantWithMailboxes('okco', 3, { locked: false });
  await tenantWithMailboxes('listedco', 3, { locked: false, listed: true });
  await tenantWithMailboxes('listed2', 2, { locked: false, listed: true });
  for (const [i, p] of (['gmail', 'microsoft', 'yahoo', 'gmail'] as const).entries()) {
    const s = await expectJson(await h.request('POST', '/v1/warming/seeds', { body: { address: `seed${i}@${p === 'microsoft' ? 'outlook.com' : `${p}.com`}`, provider: p, weight: 2 + i } }), 201);
    seeds.push(s.id);
  }
  gatewayEnv = {
    DATABASE_URL: h.db.url, REDIS_URL: h.ctx.config.redisUrl, CP_ROLES: 'gateway', CP_SMTP_TLS_CERT_FILE: path.join(tls, 'cert.pem'), CP_SMTP_TLS_KEY_FILE: path.join(tls, 'key.pem'),
    CP_SMTP_SUBMISSION_PORT: '0', CP_SMTP_TLS_PORT: '0', CP_SMTP_FACTS_TTL_MS: '0', CP_SMTP_BUDGET_CACHE_MS: '0',
  };
  gw = await startSubmissionGateway(h.ctx, testConfig(gatewayEnv).gateway);
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await h?.close();
  await sink?.close();
});

describe('the warming network', () => {
  it('plans a day under the contagion rules, once', async () => {
    const r = await expectJson(await h.request('POST', '/v1/warming/plan', { body: { day: DAY } }), 200);
    expect(r.planned).toBeGreaterThan(60);
    expect(r.isolated).toBe(5);
    const again = await expectJson(await h.request('POST', '/v1/warming/plan', { body: { day: DAY } }), 200);
    expect(again).toMatchObject({ already_planned: true, planned: r.planned });

    const members = (await expectJson(await h.request('GET', '/v1/warming/members'), 200)).items as { id: string; kind: string; tenant_id: string | null; risk_reason: string | null }[];
    const byId = new Map(members.map((m) => [m.id, m]));
    const sends = await h.ctx.db.selectFrom('warming_sends').selectAll().where('day', '=', DAY).execute();
    for (const s of sends) {
      const a = byId.get(s.sender_id)!;
      const b = byId.get(s.recipient_id)!;
      // no risky member ever touches a golden seed; risky ones stay among themselves
      if (a.risk_reason || b.risk_reason) {
        expect(b.kind).toBe('peer');
        expect(Boolean(a.risk_reason) && Boolean(b.risk_reason)).toBe(true);
      }
      expect(a.tenant_id).not.toBe(b.tenant_id);
    }
    expect(members.filter((m) => m.risk_reason).every((m) => m.risk_reason === 'its domain is on a blocklist')).toBe(true);
    // a new mailbox starts at 25 a day, a pre-warmed one at 5
    const perSender = new Map<string, number>();
    for (const s of sends) perSender.set(s.sender_id, (perSender.get(s.sender_id) ?? 0) + 1);
    for (const [id, n] of perSender) expect(n).toBeLessThanOrEqual(25);
    expect(Math.min(...perSender.values())).toBeLessThanOrEqual(5);
    // seeds went to the rehabilitating tenant first
    const toSeeds = sends.filter((s) => seeds.includes(s.recipient_id));
    expect(toSeeds.length).toBeGreaterThan(0);
    expect(toSeeds.some((s) => s.tenant_id === tenants.rehabco)).toBe(true);
  });

  it('sends the plan through the gateway as the warming agent, on the warming lane', async () => {
    const cfg = testConfig({ ...gatewayEnv, CP_WARMING_GATEWAY_URL: `smtps://127.0.0.1:${gw.tlsPort}`, CP_WARMING_TLS_VERIFY: 'false' });
    const transport = warmingTransport(cfg);
    try {
      let total = 0;
      for (;;) {
        const r = await sendDueWarming(h.ctx, transport, 200);
        expect(r.failed).toBe(0);
        total += r.sent;
        if (r.due === 0) break;
      }
      const planned = await h.ctx.db.selectFrom('warming_sends').select((eb) => eb.fn.countAll<string>().as('n')).where('day', '=', DAY).executeTakeFirstOrThrow();
      expect(total).toBe(Number(planned.n));
    } finally {
      transport.close();
    }
    expect(sink.messages.length).toBeGreaterThan(60);
    const raw = sink.messages[0]!.raw.toString('latin1');
    expect(raw).toMatch(/^X-KCP-Tenant: [0-9a-f-]{36}\r\nX-KCP-Lane: warming\r\n/);
    expect(raw).toMatch(/\r\nMessage-ID:\s+<kcpw\.[0-9a-f-]{36}\.[0-9a-f]{16}@[a-z0-9.-]+>\r\n/i);
    expect(raw).not.toMatch(/\{|\}/);
  });

  it('refuses the warming agent anything but warming-network recipients', async () => {
    const cfg = testConfig({ ...gatewayEnv, CP_WARMING_GATEWAY_URL: `smtps://127.0.0.1:${gw.tlsPort}`, CP_WARMING_TLS_VERIFY: 'false' });
    const t = warmingTransport(cfg);
    try {
      await expect(t.sendMail({ from: 'person1@goodco.example', to: 'stranger@example.org', subject: 'x', text: 'y' })).rejects.toMatchObject({ response: '550 5.7.1 the warming agent sends only to warming-network members' });
      await expect(t.sendMail({ from: 'nobody@goodco.example', to: 'seed0@gmail.com', subject: 'x', text: 'y' })).rejects.toMatchObject({ response: '553 5.7.1 the warming agent sends only from warming-network peers' });
    } finally {
      t.close();
    }
  });

  it('credits engagement to the sending tenant, weighted by the recipient, once', async () => {
    const send = await h.ctx.db.selectFrom('warming_sends').selectAll().where('recipient_id', '=', seeds[3]!).where('day', '=', DAY).executeTakeFirstOrThrow();
    const r = await expectJson(await h.request('POST', '/v1/warming/engagement', { body: { message_id: send.message_id, kind: 'open' } }), 200);
    expect(r).toMatchObject({ recognised: true, duplicate: false, tenant_id: send.tenant_id, weight: 5 });
    expect((await expectJson(await h.request('POST', '/v1/warming/engagement', { body: { message_id: send.message_id, kind: 'open' } }), 200)).duplicate).toBe(true);
    const ev = await h.ctx.db.selectFrom('engagement_events').selectAll().where('message_id', '=', send.message_id).execute();
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ lane: 'warming', kind: 'open', tenant_id: send.tenant_id });
    expect(Number(ev[0]!.weight)).toBe(5);
    // a Message-ID that only looks like ours is not credited
    const forged = send.message_id.replace(/\.[0-9a-f]{16}@/, '.0000000000000000@');
    expect((await expectJson(await h.request('POST', '/v1/warming/engagement', { body: { message_id: forged, kind: 'reply' } }), 200)).recognised).toBe(false);
  });

  it('recognises a reply to warming mail that comes back through the gateway', async () => {
    // a send to a peer, so it is not the seed send credited with an open above
    const send = await h.ctx.db.selectFrom('warming_sends').selectAll().where('tenant_id', '=', tenants.goodco!).where('day', '=', DAY).where('recipient_id', 'not in', seeds).orderBy('id').executeTakeFirstOrThrow();
    const creds = await expectJson(await h.request('POST', `/v1/tenants/${tenants.okco}/smtp-credentials`, { body: {} }), 201);
    await h.ctx.db.updateTable('tenant_trust').set({ score: 85, locked: false }).where('tenant_id', '=', tenants.okco!).execute();
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: gw.submissionPort, requireTLS: true, tls: { rejectUnauthorized: false }, auth: { user: creds.username, pass: creds.password } });
    await t.sendMail({ from: 'person0@okco.example', to: 'someone@example.org', subject: 'Re: hello', text: 'thanks', inReplyTo: send.message_id, references: [send.message_id] });
    for (let i = 0; i < 20; i++) {
      const s = await h.ctx.db.selectFrom('warming_sends').select('replied_at').where('id', '=', send.id).executeTakeFirstOrThrow();
      if (s.replied_at) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await h.ctx.db.selectFrom('warming_sends').select('replied_at').where('id', '=', send.id).executeTakeFirstOrThrow()).replied_at).not.toBeNull();
    // credited under the Message-ID the reply named
    const ev = await h.ctx.db.selectFrom('engagement_events').select(['kind', 'lane']).where('message_id', '=', send.message_id).execute();
    expect(ev).toEqual([{ kind: 'reply', lane: 'warming' }]);
  });

  it('holds a tenant to its warming schedule when it writes to the network itself', async () => {
    const creds = await expectJson(await h.request('POST', `/v1/tenants/${tenants.listed2}/smtp-credentials`, { body: {} }), 201);
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: gw.submissionPort, requireTLS: true, tls: { rejectUnauthorized: false }, auth: { user: creds.username, pass: creds.password } });
    const planned = Number((await h.ctx.db.selectFrom('warming_sends').select((eb) => eb.fn.countAll<string>().as('n')).where('tenant_id', '=', tenants.listed2!).where('day', '=', DAY).executeTakeFirstOrThrow()).n);
    await h.ctx.redis.set(warmingAcceptedKey(tenants.listed2!, DAY), String(planned));
    await expect(t.sendMail({ from: 'person0@listed2.example', to: 'seed0@gmail.com', subject: 'x', text: 'y' })).rejects.toMatchObject({ response: "452 4.7.1 today's warming schedule is used up: try again tomorrow" });
  });

  it('shows the rehabilitating tenant its progress and estimated unlock, and operators the network', async () => {
    const trust = await expectJson(await h.request('GET', `/v1/tenants/${tenants.rehabco}/trust`), 200);
    const p = trust.rehabilitation?.progress;
    if (p) {
      expect(p.planned_warming_sends_today).toBeGreaterThan(0);
      expect(p.estimated_unlock_on).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
    const health = await expectJson(await h.request('GET', '/v1/warming/health'), 200);
    expect(health.seeds.count).toBe(4);
    expect(health.seeds.monthly_cost_usd).toBe(16);
    expect(health.isolated).toHaveLength(5);
    const today = health.daily.find((d: { day: string }) => d.day === DAY);
    expect(today.planned).toBe(today.sent);
    expect(today.engaged).toBeGreaterThanOrEqual(2);
    expect(health.members.find((m: { kind: string; state: string }) => m.kind === 'golden_seed' && m.state === 'active').count).toBe(4);
  });
});
