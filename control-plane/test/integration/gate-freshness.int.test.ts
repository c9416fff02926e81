/**
 * Gate freshness end to end: real SMTP sessions against the real gateway, PostgreSQL and Redis, smtp
 * sinks as the nodes. A change committed in PostgreSQL (a lock as the rescore job writes it, a
 * suspension, a revocation, a new domain) reaches an open session at its next command through the
 * LISTEN/NOTIFY push, timed here, with a TTL far too long to be what does it. With PostgreSQL cut off
 * (a TCP proxy in front of it), nothing is accepted once the TTL has passed, and the gateway recovers
 * by itself when the database is back.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createContext, type AppContext } from '../../src/context.js';
import { createLogger } from '../../src/adapters/logger.js';
import { GATE_FACTS_CHANNEL } from '../../src/adapters/pg/change-feed.js';
import { startSubmissionGateway, type SubmissionGateway } from '../../src/gateway/submission-gateway.js';
import { expectJson, startHarness, testConfig, type Harness } from '../support/harness.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { SmtpDialogue } from '../support/smtp-dialogue.js';
import { startPgProxy } from '../support/pg-proxy.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../../..');

/** The bound the README states: a committed change is seen by the next command within this. */
const PUSH_BOUND_MS = 500;

let h: Harness;
let gw: SubmissionGateway;
let sinkA: SmtpSink;
let sinkB: SmtpSink;
let tenant: string;
let creds: { username: string; password: string };
let gatewayEnv: Record<string, string>;
const measured: Record<string, number[]> = {};

const record = (what: string, ms: number) => (measured[what] ??= []).push(Math.round(ms * 10) / 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function authed(port: number, c: { username: string; password: string } = creds): Promise<SmtpDialogue> {
  const { d } = await SmtpDialogue.open(port);
  await d.send('EHLO client.example');
  await d.starttls();
  await d.send('EHLO client.example');
  expect(await d.send(`AUTH PLAIN ${Buffer.from(`\0${c.username}\0${c.password}`).toString('base64')}`)).toMatch(/^235/);
  return d;
}

let rcptSeq = 0;
const nextRcpt = () => `RCPT TO:<r${++rcptSeq}@gmail.com>`;

/**
 * Send `command` until a reply matches `want`; how long after `since` that reply came back, and the
 * replies on the way. A short pause between attempts keeps the envelope small.
 */
async function pollUntil(d: SmtpDialogue, command: () => string, want: RegExp, since: number, limitMs = 5000): Promise<{ ms: number; replies: string[] }> {
  const replies: string[] = [];
  for (;;) {
    const r = await d.send(command());
    replies.push(r);
    if (want.test(r)) return { ms: performance.now() - since, replies };
    if (performance.now() - since > limitMs) throw new Error(`no reply matching ${want} within ${limitMs} ms; last: ${replies.slice(-3).join(' | ')}`);
    await sleep(2);
  }
}

/** What the rescore job leaves behind: the tenant's row rewritten, score and lock together. */
async function setLock(tenantId: string, locked: boolean): Promise<void> {
  await h.ctx.db
    .updateTable('tenant_trust')
    .set(locked
      ? { score: 40, locked: true, lock_kind: 'score', locked_at: new Date(), lock_reason: 'score 40 fell below 70', rehab_target_sends: 400, rehab_remaining_sends: 400 }
      : { score: 86.5, locked: false, lock_kind: null, locked_at: null, lock_reason: null, rehab_target_sends: null, rehab_remaining_sends: null })
    .where('tenant_id', '=', tenantId)
    .execute();
}

const LOCKED = /^550 5\.7\.1 external sending is locked: Platform Trust Score 40 /;

beforeAll(async () => {
  sinkA = await startSmtpSink();
  sinkB = await startSmtpSink();
  h = await startHarness();
  const tls = mkdtempSync(path.join(tmpdir(), 'kcp-tls-'));
  await run('bash', [path.join(root, 'scripts/self-signed-cert.sh'), tls, 'localhost']);
  const pool = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'standard-1', tier: 'standard' } }), 201);
  let octet = 10;
  for (const [name, sink] of [['node-a', sinkA], ['node-b', sinkB]] as const) {
    const n = await expectJson(await h.request('POST', '/v1/nodes', { body: { name, region: 'fsn1', public_address: `198.51.100.${octet}`, relay_host: '127.0.0.1', relay_port: sink.port } }), 201);
    const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: `203.0.113.${octet++}`, node_id: n.id, rdns_name: `mta${octet}.example.net`, state: 'active' } }), 201);
    await expectJson(await h.request('PUT', `/v1/pools/${pool.id}/members/${ip.id}`, { body: { weight: 100 } }), 200);
  }
  const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'acme', display_name: 'Acme' } }), 201);
  tenant = t.id;
  const d = await expectJson(await h.request('POST', `/v1/tenants/${tenant}/domains`, { body: { domain: 'acme.example' } }), 201);
  await expectJson(await h.request('PATCH', `/v1/tenants/${tenant}/domains/${d.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
  await expectJson(await h.request('POST', `/v1/tenants/${tenant}/placement/override`, { body: { tier: 'standard', expires_at: new Date(Date.now() + 86_400_000).toISOString(), reason: 'test' } }), 200);
  const now = new Date();
  await h.ctx.db.insertInto('tenant_trust').values({ tenant_id: tenant, score: 86.5, basis: 'wilson_interval', locked: false, computed_at: now }).onConflict((oc) => oc.column('tenant_id').doNothing()).execute();
  creds = await expectJson(await h.request('POST', `/v1/tenants/${tenant}/smtp-credentials`, { body: { username: 'acme-app' } }), 201);
  gatewayEnv = {
    DATABASE_URL: h.db.url, REDIS_URL: h.ctx.config.redisUrl, CP_ROLES: 'gateway',
    CP_SMTP_TLS_CERT_FILE: path.join(tls, 'cert.pem'), CP_SMTP_TLS_KEY_FILE: path.join(tls, 'key.pem'),
    CP_SMTP_SUBMISSION_PORT: '0', CP_SMTP_TLS_PORT: '-1', CP_SMTP_HOSTNAME: 'gateway.test',
    // a minute: anything seen within the bound was pushed, not expired
    CP_SMTP_FACTS_TTL_MS: '60000', CP_SMTP_BUDGET_CACHE_MS: '0', CP_SMTP_MAX_RECIPIENTS: '10000',
    CP_RELAY_NODE_DOWN_MS: '60000', CP_RELAY_CONNECT_TIMEOUT_MS: '1000',
  };
  gw = await startSubmissionGateway(h.ctx, testConfig(gatewayEnv).gateway);
  expect(gw.changes.connected).toBe(true);
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await h?.close();
  await sinkA?.close();
  await sinkB?.close();
  // the numbers behind the README's bound, for whoever reads the test output
  if (Object.keys(measured).length > 0) console.info(`gate freshness, ms from the committing statement to the reply that shows it: ${JSON.stringify(measured)}`);
});

beforeEach(async () => {
  await setLock(tenant, false);
  await h.ctx.db.updateTable('tenants').set({ status: 'active' }).where('id', '=', tenant).execute();
  await h.ctx.redis.flushdb();
});

describe('the triggers', () => {
  it('announce what the gateway caches, and stay quiet for what it does not read', async () => {
    const c = new pg.Client({ connectionString: h.db.url });
    await c.connect();
    const heard: string[] = [];
    c.on('notification', (m) => heard.push(m.payload ?? ''));
    await c.query(`LISTEN ${GATE_FACTS_CHANNEL}`);
    const flush = async () => {
      // notifications arrive in commit order: a marker sent last shows everything before it arrived
      await sql`SELECT pg_notify(${GATE_FACTS_CHANNEL}, 'marker')`.execute(h.ctx.db);
      for (let i = 0; i < 100 && !heard.includes('marker'); i++) await sleep(10);
      const got = heard.filter((p) => p !== 'marker').map((p) => JSON.parse(p) as unknown);
      heard.length = 0;
      return got;
    };
    try {
      // the rescore job rewrites scores all the time: no news while the lock stands still
      await h.ctx.db.updateTable('tenant_trust').set({ score: 85, computed_at: new Date() }).where('tenant_id', '=', tenant).execute();
      await h.ctx.db.updateTable('smtp_credentials').set({ last_used_at: new Date() }).where('tenant_id', '=', tenant).execute();
      await h.ctx.db.updateTable('nodes').set({ last_seen_at: new Date() }).execute();
      await h.ctx.db.updateTable('tenants').set({ status: 'active' }).where('id', '=', tenant).execute();
      expect(await flush()).toEqual([]);

      await setLock(tenant, true);
      expect(await flush()).toEqual([{ scope: 'tenant', tenant }]);
      await h.ctx.db.updateTable('nodes').set({ relay_port: sinkA.port }).where('relay_port', '=', sinkA.port).execute();
      expect(await flush()).toEqual([]);
      await h.ctx.db.updateTable('ip_addresses').set({ state: 'quarantined' }).where('address', '=', '203.0.113.10').execute();
      await h.ctx.db.updateTable('ip_addresses').set({ state: 'active' }).where('address', '=', '203.0.113.10').execute();
      expect(await flush()).toEqual([{ scope: 'fleet' }, { scope: 'fleet' }]);
      await h.ctx.db.updateTable('settings').set({ value: sql<string>`value` }).execute();
      expect(await flush()).toEqual([]);
    } finally {
      await c.end();
    }
  });
});

describe('pushed to open sessions (TTL 60 s, so only the push can explain what is seen)', () => {
  it('a lock refuses the next RCPT of an open session, and an unlock accepts the next one', async () => {
    const d = await authed(gw.submissionPort);
    for (let round = 0; round < 5; round++) {
      expect(await d.send('RSET')).toMatch(/^250/);
      expect(await d.send('MAIL FROM:<sales@acme.example>')).toMatch(/^250/);
      expect(await d.send(nextRcpt())).toMatch(/^250/);

      let t0 = performance.now();
      await setLock(tenant, true);
      const locked = await pollUntil(d, nextRcpt, /^5/, t0);
      expect(locked.replies.at(-1)).toMatch(LOCKED);
      expect(locked.ms).toBeLessThan(PUSH_BOUND_MS);
      record('lock', locked.ms);

      t0 = performance.now();
      await setLock(tenant, false);
      const unlocked = await pollUntil(d, nextRcpt, /^250/, t0);
      expect(unlocked.ms).toBeLessThan(PUSH_BOUND_MS);
      record('unlock', unlocked.ms);
      // once accepted, never the old text again
      for (let i = 0; i < 5; i++) expect(await d.send(nextRcpt())).toMatch(/^250 /);
    }
    d.close();
  });

  it('a suspension refuses the next RCPT and the next MAIL', async () => {
    const d = await authed(gw.submissionPort);
    expect(await d.send('MAIL FROM:<sales@acme.example>')).toMatch(/^250/);
    expect(await d.send(nextRcpt())).toMatch(/^250/);
    const t0 = performance.now();
    await h.ctx.db.updateTable('tenants').set({ status: 'suspended' }).where('id', '=', tenant).execute();
    const r = await pollUntil(d, nextRcpt, /^5/, t0);
    expect(r.replies.at(-1)).toBe('550 5.7.1 this tenant is suspended from sending');
    expect(r.ms).toBeLessThan(PUSH_BOUND_MS);
    record('suspension', r.ms);
    expect(await d.send('RSET')).toMatch(/^250/);
    expect(await d.send('MAIL FROM:<sales@acme.example>')).toBe('550 5.7.1 this tenant is suspended from sending');
    d.close();
  });

  it('a revoked credential refuses the next RCPT and MAIL of its sessions, and AUTH with it', async () => {
    const second = (await expectJson(await h.request('POST', `/v1/tenants/${tenant}/smtp-credentials`, { body: { username: 'acme-second' } }), 201)) as { id: string; username: string; password: string };
    const d = await authed(gw.submissionPort, second);
    // the tenant's other credential is not affected
    const other = await authed(gw.submissionPort);
    expect(await d.send('MAIL FROM:<sales@acme.example>')).toMatch(/^250/);
    expect(await d.send(nextRcpt())).toMatch(/^250/);
    const t0 = performance.now();
    await expectJson(await h.request('DELETE', `/v1/tenants/${tenant}/smtp-credentials/${second.id}`), 200);
    const r = await pollUntil(d, nextRcpt, /^5/, t0);
    expect(r.replies.at(-1)).toBe('530 5.7.0 the credential this session authenticated with has been revoked');
    expect(r.ms).toBeLessThan(PUSH_BOUND_MS);
    record('revocation', r.ms);
    expect(await d.send('RSET')).toMatch(/^250/);
    expect(await d.send('MAIL FROM:<sales@acme.example>')).toBe('530 5.7.0 the credential this session authenticated with has been revoked');
    d.close();
    // the password check it passed a moment ago is not remembered past the revocation
    const { d: again } = await SmtpDialogue.open(gw.submissionPort);
    await again.send('EHLO client.example');
    await again.starttls();
    await again.send('EHLO client.example');
    expect(await again.send(`AUTH PLAIN ${Buffer.from(`\0${second.username}\0${second.password}`).toString('base64')}`)).toBe('535 5.7.8 authentication credentials invalid');
    again.close();
    expect(await other.send('MAIL FROM:<sales@acme.example>')).toMatch(/^250/);
    other.close();
  });

  it('a newly verified sending domain is usable at the next MAIL', async () => {
    const d = await authed(gw.submissionPort);
    expect(await d.send('MAIL FROM:<news@fresh.example>')).toBe('553 5.7.1 sender domain fresh.example is not a verified sending domain of this tenant');
    const dom = await expectJson(await h.request('POST', `/v1/tenants/${tenant}/domains`, { body: { domain: 'fresh.example' } }), 201);
    const t0 = performance.now();
    await expectJson(await h.request('PATCH', `/v1/tenants/${tenant}/domains/${dom.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
    const r = await pollUntil(d, () => 'MAIL FROM:<news@fresh.example>', /^250/, t0);
    expect(r.ms).toBeLessThan(PUSH_BOUND_MS);
    record('new domain', r.ms);
    expect(await d.send(nextRcpt())).toMatch(/^250/);
    d.close();
  });
});

describe('PostgreSQL unreachable (TTL 1 s)', () => {
  const TTL = 1000;
  let proxy: Awaited<ReturnType<typeof startPgProxy>>;
  let ctx: AppContext;
  let down: SubmissionGateway;
  const lines: string[] = [];

  beforeAll(async () => {
    proxy = await startPgProxy(new URL(h.db.url));
    const cfg = testConfig({ ...gatewayEnv, DATABASE_URL: proxy.url, CP_SMTP_FACTS_TTL_MS: String(TTL) });
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        cb();
      },
    });
    ctx = await createContext(cfg, { log: createLogger('debug', sink) });
    down = await startSubmissionGateway(ctx, cfg.gateway);
  });

  afterAll(async () => {
    proxy?.restore();
    await down?.close();
    await ctx?.close();
    await proxy?.close();
  });

  it('answers 4xx once the TTL has passed, never 250, and recovers when the database is back', async () => {
    const d = await authed(down.submissionPort);
    const tAuth = performance.now();
    expect(await d.send('MAIL FROM:<sales@acme.example>')).toMatch(/^250/);
    expect(await d.send(nextRcpt())).toMatch(/^250/);
    // the password check above is now older than the TTL; the facts are read afresh just before the cut
    await sleep(Math.max(0, tAuth + TTL + 100 - performance.now()));
    expect(await d.send(nextRcpt())).toMatch(/^250/);
    const { d: second } = await SmtpDialogue.open(down.submissionPort);
    await second.send('EHLO client.example');
    await second.starttls();
    await second.send('EHLO client.example');

    const tCut = performance.now();
    proxy.cut();
    // a new AUTH cannot be checked: the remembered one is too old and PostgreSQL is away
    expect(await second.send(`AUTH PLAIN ${Buffer.from(`\0${creds.username}\0${creds.password}`).toString('base64')}`)).toBe('454 4.7.0 temporary authentication failure: try again later');
    second.close();

    const seen: { sentAt: number; reply: string }[] = [];
    while (performance.now() < tCut + TTL + 1000) {
      const sentAt = performance.now();
      seen.push({ sentAt, reply: await d.send(nextRcpt()) });
      await sleep(25);
    }
    // nothing read before the cut answers 250 once it is older than the TTL
    const lateAccepts = seen.filter((s) => s.reply.startsWith('250') && s.sentAt >= tCut + TTL);
    expect(lateAccepts).toEqual([]);
    const late = seen.filter((s) => s.sentAt >= tCut + TTL);
    expect(late.length).toBeGreaterThan(10);
    for (const s of late) expect(s.reply).toBe('451 4.3.0 local error in processing: try again later');
    // a new connection is told to come back later
    const { d: third, greeting } = await SmtpDialogue.open(down.submissionPort);
    expect(greeting).toBe('421 4.3.0 service temporarily unavailable: try again later');
    third.close();
    expect(down.changes.connected).toBe(false);

    proxy.restore();
    const tBack = performance.now();
    const back = await pollUntil(d, nextRcpt, /^250/, tBack, 10_000);
    record('recovery (next RCPT accepted)', back.ms);
    for (let i = 0; i < 100 && !down.changes.connected; i++) await sleep(100);
    expect(down.changes.connected).toBe(true);
    record('recovery (notifications listening again)', performance.now() - tBack);
    d.close();
    const fresh = await authed(down.submissionPort);
    expect(await fresh.send('MAIL FROM:<sales@acme.example>')).toMatch(/^250/);
    fresh.close();

    // the outage was logged, without the database's address or password
    const text = lines.join('\n');
    expect(text).toContain('gate fact notifications lost');
    expect(text).toContain('gate fact notifications restored');
    expect(text).not.toContain(proxy.url);
    expect(text).not.toContain(new URL(h.db.url).password || 'no-password-in-url');
  }, 30_000);
});
