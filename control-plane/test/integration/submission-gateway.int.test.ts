/**
 * The submission gateway end to end: real clients (nodemailer, swaks, a line-by-line client for exact
 * replies) over TCP and TLS, the real gateway, PostgreSQL and Redis, and real SMTP servers standing in
 * for two kumod nodes.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createContext } from '../../src/context.js';
import { createLogger } from '../../src/adapters/logger.js';
import { startSubmissionGateway, type SubmissionGateway } from '../../src/gateway/submission-gateway.js';
import { authFailureKeys } from '../../src/adapters/redis/keys.js';
import { clientKey } from '../../src/domain/access/client-key.js';
import { throttleRedisKey, externalThrottleName } from '../../src/domain/policy/throttles.js';
import { expectJson, startHarness, testConfig, type Harness } from '../support/harness.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { SmtpDialogue } from '../support/smtp-dialogue.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../../..');

let h: Harness;
let gw: SubmissionGateway;
let sinkA: SmtpSink;
let sinkB: SmtpSink;
let tenant: string;
let other: string;
let creds: { username: string; password: string };
const nodes: Record<string, string> = {};
let gatewayEnv: Record<string, string>;

async function setTrust(tenantId: string, t: { score: number; locked: boolean; rehab?: number }) {
  const now = new Date();
  await h.ctx.db
    .insertInto('tenant_trust')
    .values({
      tenant_id: tenantId, score: t.score, basis: 'wilson_interval', locked: t.locked, lock_kind: t.locked ? 'score' : null,
      locked_at: t.locked ? now : null, lock_reason: t.locked ? `score ${t.score} fell below 70` : null, rehab_target_sends: t.rehab ?? null, rehab_remaining_sends: t.rehab ?? null, computed_at: now,
    })
    .onConflict((oc) => oc.column('tenant_id').doUpdateSet((eb) => ({
      score: eb.ref('excluded.score'), locked: eb.ref('excluded.locked'), lock_kind: eb.ref('excluded.lock_kind'), locked_at: eb.ref('excluded.locked_at'),
      lock_reason: eb.ref('excluded.lock_reason'), rehab_target_sends: eb.ref('excluded.rehab_target_sends'), rehab_remaining_sends: eb.ref('excluded.rehab_remaining_sends'),
    })))
    .execute();
}

const transport = (opts: Record<string, unknown> = {}) =>
  nodemailer.createTransport({ host: '127.0.0.1', port: gw.submissionPort, secure: false, requireTLS: true, tls: { rejectUnauthorized: false }, auth: { user: creds.username, pass: creds.password }, ...opts });

const message = (to: string | string[], extra: Record<string, unknown> = {}) => ({
  from: 'Acme Sales <sales@acme.example>', to, subject: 'Hello', text: 'A line\r\n.starts with a dot\r\nend', ...extra,
});

const allMessages = () => [...sinkA.messages, ...sinkB.messages];
const header = (raw: Buffer, name: string) => raw.toString('latin1').split('\r\n\r\n')[0]!.split('\r\n').filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));

async function authed(d: SmtpDialogue) {
  await d.send('EHLO client.example');
  await d.starttls();
  await d.send('EHLO client.example');
  const r = await d.send(`AUTH PLAIN ${Buffer.from(`\0${creds.username}\0${creds.password}`).toString('base64')}`);
  expect(r).toMatch(/^235/);
}

beforeAll(async () => {
  sinkA = await startSmtpSink();
  sinkB = await startSmtpSink();
  h = await startHarness();
  const tls = mkdtempSync(path.join(tmpdir(), 'kcp-tls-'));
  await run('bash', [path.join(root, 'scripts/self-signed-cert.sh'), tls, 'localhost']);
  const pool = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'standard-1', tier: 'standard' } }), 201);
  const rehab = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'rehab-1', tier: 'rehabilitation' } }), 201);
  let octet = 10;
  for (const [name, sink] of [['node-a', sinkA], ['node-b', sinkB]] as const) {
    const n = await expectJson(await h.request('POST', '/v1/nodes', { body: { name, region: 'fsn1', public_address: `198.51.100.${octet}`, relay_host: '127.0.0.1', relay_port: sink.port } }), 201);
    nodes[name] = n.id;
    for (const p of [pool.id, rehab.id]) {
      const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: `203.0.113.${octet++}`, node_id: n.id, rdns_name: `mta${octet}.example.net`, state: 'active' } }), 201);
      await expectJson(await h.request('PUT', `/v1/pools/${p}/members/${ip.id}`, { body: { weight: 100 } }), 200);
    }
  }
  for (const slug of ['acme', 'other']) {
    const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug, display_name: slug } }), 201);
    const d = await expectJson(await h.request('POST', `/v1/tenants/${t.id}/domains`, { body: { domain: `${slug}.example` } }), 201);
    await expectJson(await h.request('PATCH', `/v1/tenants/${t.id}/domains/${d.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
    await expectJson(await h.request('POST', `/v1/tenants/${t.id}/placement/override`, { body: { tier: 'standard', expires_at: new Date(Date.now() + 86_400_000).toISOString(), reason: 'test' } }), 200);
    if (slug === 'acme') tenant = t.id;
    else other = t.id;
  }
  await expectJson(await h.request('POST', `/v1/tenants/${tenant}/domains`, { body: { domain: 'unverified.example' } }), 201);
  creds = await expectJson(await h.request('POST', `/v1/tenants/${tenant}/smtp-credentials`, { body: { username: 'acme-app' } }), 201);
  gatewayEnv = {
    DATABASE_URL: h.db.url, REDIS_URL: h.ctx.config.redisUrl, CP_ROLES: 'gateway',
    CP_SMTP_TLS_CERT_FILE: path.join(tls, 'cert.pem'), CP_SMTP_TLS_KEY_FILE: path.join(tls, 'key.pem'),
    CP_SMTP_SUBMISSION_PORT: '0', CP_SMTP_TLS_PORT: '0', CP_SMTP_HOSTNAME: 'gateway.test',
    CP_SMTP_FACTS_TTL_MS: '0', CP_SMTP_BUDGET_CACHE_MS: '0', CP_SMTP_AUTH_FAILURE_LIMIT: '3', CP_SMTP_AUTH_SOURCE_FAILURE_LIMIT: '3', CP_SMTP_MAX_RECIPIENTS: '3', CP_SMTP_MAX_MESSAGE_BYTES: '65536',
    CP_SMTP_MAX_CONNECTIONS_PER_TENANT: '4', CP_RELAY_NODE_DOWN_MS: '60000', CP_RELAY_CONNECT_TIMEOUT_MS: '1000',
  };
  gw = await startSubmissionGateway(h.ctx, testConfig(gatewayEnv).gateway);
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await h?.close();
  await sinkA?.close();
  await sinkB?.close();
});

beforeEach(async () => {
  sinkA.messages.length = 0;
  sinkB.messages.length = 0;
  sinkA.behaviour.refuseRecipient = sinkB.behaviour.refuseRecipient = undefined;
  sinkA.behaviour.dropDuringDataAfter = sinkB.behaviour.dropDuringDataAfter = null;
  sinkA.behaviour.dataReply = sinkB.behaviour.dataReply = null;
  await setTrust(tenant, { score: 86.5, locked: false });
  await h.ctx.redis.flushdb();
  await h.ctx.db.deleteFrom('suppressions').execute();
  await h.ctx.db.deleteFrom('submission_networks').execute();
  await gw.refreshIndex();
});

describe('authentication', () => {
  it('accepts AUTH PLAIN after STARTTLS and relays with the trusted headers, forged ones stripped', async () => {
    const info = await transport().sendMail(message('someone@gmail.com', { headers: { 'X-KCP-Tenant': other, 'X-KCP-Lane': 'warming' } }));
    expect(info.accepted).toEqual(['someone@gmail.com']);
    expect(info.response).toMatch(/^250 2\.0\.0 OK ids=sink-\d+$/);
    const [m] = allMessages();
    expect(m!.mailFrom).toBe('sales@acme.example');
    expect(m!.rcptTo).toEqual(['someone@gmail.com']);
    expect(header(m!.raw, 'X-KCP-Tenant')).toEqual([`X-KCP-Tenant: ${tenant}`]);
    expect(header(m!.raw, 'X-KCP-Lane')).toEqual(['X-KCP-Lane: external']);
    // the body went through dot-stuffing both ways unchanged
    expect(m!.raw.toString()).toContain('\r\n.starts with a dot\r\n');
  });

  it('offers and accepts AUTH only after STARTTLS on the submission port', async () => {
    const { d } = await SmtpDialogue.open(gw.submissionPort);
    const plain = await d.send('EHLO client.example');
    expect(plain).toContain('250-STARTTLS');
    expect(plain).not.toContain('AUTH');
    expect(await d.send(`AUTH PLAIN ${Buffer.from(`\0${creds.username}\0${creds.password}`).toString('base64')}`)).toMatch(/^538 .*STARTTLS/);
    await d.starttls();
    expect(await d.send('EHLO client.example')).toMatch(/250-AUTH PLAIN LOGIN/);
    d.close();
  });

  it('accepts AUTH LOGIN on the implicit-TLS port (swaks)', async () => {
    const { stdout } = await run('swaks', [
      '--server', '127.0.0.1', '--port', String(gw.tlsPort), '--tlsc', '--auth', 'LOGIN', '--auth-user', creds.username, '--auth-password', creds.password,
      '--from', 'ops@acme.example', '--to', 'reader@example.org', '--header', 'From: ops@acme.example', '--header', 'X-KCP-Tenant: nope', '--body', 'swaks body',
    ]);
    expect(stdout).toMatch(/<~ {2}250 2\.0\.0 OK ids=sink-\d+/);
    const [m] = allMessages();
    expect(header(m!.raw, 'X-KCP-Tenant')).toEqual([`X-KCP-Tenant: ${tenant}`]);
  });

  it('says the same for a wrong password and an unknown user, then locks the IP out', async () => {
    const wrong = transport({ auth: { user: creds.username, pass: 'wrong-password' } });
    await expect(wrong.sendMail(message('a@gmail.com'))).rejects.toMatchObject({ responseCode: 535, response: '535 5.7.8 authentication credentials invalid' });
    const unknown = transport({ auth: { user: 'nobody-here', pass: 'whatever' } });
    await expect(unknown.sendMail(message('a@gmail.com'))).rejects.toMatchObject({ response: '535 5.7.8 authentication credentials invalid' });
    await expect(wrong.sendMail(message('a@gmail.com'))).rejects.toMatchObject({ responseCode: 535 });
    // third failure from this IP: now even the right password is refused, with a temporary reply
    await expect(transport().sendMail(message('a@gmail.com'))).rejects.toMatchObject({ response: '454 4.7.0 too many failed authentication attempts: try again later' });
    expect(Number(await h.ctx.redis.get(authFailureKeys(clientKey('127.0.0.1'), creds.username).user))).toBe(2);
    expect(await h.ctx.redis.ttl(authFailureKeys(clientKey('127.0.0.1'), creds.username).source)).toBeGreaterThan(0);
    expect(h.logText()).not.toContain('wrong-password');
    expect(allMessages()).toHaveLength(0);
  });

  it('lets a bound network submit without AUTH; anyone else must authenticate', async () => {
    const plain = nodemailer.createTransport({ host: '127.0.0.1', port: gw.submissionPort, secure: false, ignoreTLS: true });
    await expect(plain.sendMail(message('a@gmail.com'))).rejects.toMatchObject({ response: '530 5.7.0 authentication required' });
    // a binding wider than the API allows, left from before the limit, lets nobody in
    await h.ctx.db.insertInto('submission_networks').values({ tenant_id: tenant, network: '127.0.0.0/8', description: 'from an older version' }).execute();
    await expect(plain.sendMail(message('a@gmail.com'))).rejects.toMatchObject({ response: '530 5.7.0 authentication required' });
    await h.ctx.db.deleteFrom('submission_networks').where('network', '=', '127.0.0.0/8').execute();
    await expectJson(await h.request('POST', `/v1/tenants/${tenant}/submission-networks`, { body: { network: '127.0.0.0/16', description: 'app servers' } }), 201);
    const clash = await expectJson(await h.request('POST', `/v1/tenants/${other}/submission-networks`, { body: { network: '127.0.0.1/32' } }), 409);
    expect(clash.detail).toContain('overlaps');
    expect((await expectJson(await h.request('POST', `/v1/tenants/${other}/submission-networks`, { body: { network: '10.0.0.1/8' } }), 400)).code).toBe('VALIDATION_FAILED');
    const info = await plain.sendMail(message('a@gmail.com'));
    expect(info.response).toMatch(/^250 /);
    expect(header(allMessages()[0]!.raw, 'X-KCP-Tenant')).toEqual([`X-KCP-Tenant: ${tenant}`]);
  });

  it('limits concurrent sessions per tenant', async () => {
    await expectJson(await h.request('POST', `/v1/tenants/${tenant}/submission-networks`, { body: { network: '127.0.0.1/32' } }), 201);
    const open = await Promise.all([1, 2, 3, 4].map(() => SmtpDialogue.open(gw.submissionPort)));
    const fifth = await SmtpDialogue.open(gw.submissionPort);
    expect(fifth.greeting).toBe('421 4.7.0 too many concurrent sessions for this tenant: try again shortly');
    for (const o of open) o.d.close();
    await Promise.all(open.map((o) => o.d.closed()));
    await new Promise((r) => setTimeout(r, 50));
    const again = await SmtpDialogue.open(gw.submissionPort);
    expect(again.greeting).toMatch(/^220 /);
    again.d.close();
  });
});

describe('sender checks', () => {
  it('refuses an envelope sender on a domain the tenant has not verified', async () => {
    await expect(transport().sendMail(message('a@gmail.com', { envelope: { from: 'x@unverified.example', to: 'a@gmail.com' } }))).rejects.toMatchObject({
      response: '553 5.7.1 sender domain unverified.example is not a verified sending domain of this tenant',
    });
    await expect(transport().sendMail(message('a@gmail.com', { envelope: { from: 'x@other.example', to: 'a@gmail.com' } }))).rejects.toMatchObject({ responseCode: 553 });
  });

  it('refuses a header From on another domain, and nothing reaches a node', async () => {
    await expect(transport().sendMail(message('a@gmail.com', { from: 'ceo@other.example', envelope: { from: 'sales@acme.example', to: 'a@gmail.com' } }))).rejects.toMatchObject({
      response: '553 5.7.1 header From domain other.example is not a verified sending domain of this tenant',
    });
    expect(allMessages()).toHaveLength(0);
  });
});

describe('the gate', () => {
  it('refuses a suppressed recipient, naming the suppression, and takes the others', async () => {
    await expectJson(await h.request('POST', `/v1/tenants/${tenant}/suppressions`, { body: { pattern: 'gone@gmail.com', reason: 'hard_bounce' } }), 201);
    // the gateway's in-memory index sees a new suppression within a second; the test does not wait
    await gw.refreshIndex();
    const info = await transport().sendMail(message(['gone@gmail.com', 'here@gmail.com']));
    expect(info.rejected).toEqual(['gone@gmail.com']);
    expect((info.rejectedErrors as { response: string }[])[0]!.response).toBe('550 5.1.1 gone@gmail.com is on the tenant suppression list (gone@gmail.com: hard_bounce)');
    expect(allMessages().map((m) => m.rcptTo)).toEqual([['here@gmail.com']]);
  });

  it('refuses external mail from a locked tenant with the score, thresholds and rehabilitation', async () => {
    await setTrust(tenant, { score: 41, locked: true, rehab: 400 });
    await expect(transport().sendMail(message('a@gmail.com'))).rejects.toMatchObject({
      response: '550 5.7.1 external sending is locked: Platform Trust Score 41 (locks below 70, unlocks at 75). Rehabilitation: 0 of 400 clean warming sends done; send them on the warming lane.',
    });
  });

  it('puts warming-network recipients on the warming lane, even for a locked tenant, and keeps lanes apart', async () => {
    await setTrust(tenant, { score: 41, locked: true, rehab: 400 });
    await h.ctx.db.insertInto('warming_members').values({ kind: 'golden_seed', address: 'seed@gmail.com', provider: 'gmail', weight: 3 }).onConflict((oc) => oc.doNothing()).execute();
    await gw.refreshIndex();
    // without a warming plan for today, the network is not the tenant's to write to
    await expect(transport().sendMail(message('seed@gmail.com'))).rejects.toMatchObject({ response: "452 4.7.1 today's warming schedule is used up: try again tomorrow" });
    const domain = (await expectJson(await h.request('GET', `/v1/tenants/${tenant}/domains`), 200)).items.find((d: { domain: string }) => d.domain === 'acme.example');
    const mb = await expectJson(await h.request('POST', `/v1/tenants/${tenant}/mailboxes`, { body: { domain_id: domain.id, local_part: 'warmer' } }), 201);
    const peer = await expectJson(await h.request('POST', `/v1/tenants/${tenant}/warming/members`, { body: { mailbox_id: mb.id } }), 201);
    const seedRow = await h.ctx.db.selectFrom('warming_members').select('id').where('address', '=', 'seed@gmail.com').executeTakeFirstOrThrow();
    const seed2 = await h.ctx.db.insertInto('warming_members').values({ kind: 'golden_seed', address: 'seed2@gmail.com', provider: 'gmail', weight: 3 }).returning('id').executeTakeFirstOrThrow();
    // two warming sends planned for today: room for the two messages below
    for (const [i, r] of [seedRow.id, seed2.id].entries()) {
      await h.ctx.db.insertInto('warming_sends').values({ day: new Date().toISOString().slice(0, 10), sender_id: peer.id, recipient_id: r, tenant_id: tenant, kind: 'new', reply_to: null, scheduled_at: new Date(), message_id: `<plan-${i}@acme.example>`, subject: 'hello' }).execute();
    }
    const info = await transport().sendMail(message('Seed@gmail.com'));
    expect(info.accepted).toEqual(['Seed@gmail.com']);
    expect(header(allMessages()[0]!.raw, 'X-KCP-Lane')).toEqual(['X-KCP-Lane: warming']);

    await setTrust(tenant, { score: 86.5, locked: false });
    const { d } = await SmtpDialogue.open(gw.submissionPort);
    await authed(d);
    expect(await d.send('MAIL FROM:<sales@acme.example>')).toMatch(/^250/);
    expect(await d.send('RCPT TO:<seed@gmail.com>')).toMatch(/^250/);
    expect(await d.send('RCPT TO:<someone@gmail.com>')).toBe('452 4.5.3 this recipient goes on the external lane and the message already has warming recipients: send it in a separate message');
    d.close();
  });

  it('defers external mail when the budget in kumod\'s throttle key is used up, saying when it refills', async () => {
    const spec = '5000/h'; // the standard tier's default in settings
    const key = throttleRedisKey(externalThrottleName(tenant), spec);
    const [secs] = await h.ctx.redis.time();
    // kumod's script backend stores the TAT as float seconds: a full burst spent ends one period ahead
    await h.ctx.redis.set(key, String(Number(secs) + 3600 + 30), 'EX', 7200);
    await expect(transport().sendMail(message('a@gmail.com'))).rejects.toMatchObject({ responseCode: 452 });
    const { d } = await SmtpDialogue.open(gw.submissionPort);
    await authed(d);
    await d.send('MAIL FROM:<sales@acme.example>');
    expect(await d.send('RCPT TO:<a@gmail.com>')).toMatch(/^452 4\.7\.1 the external sending budget is used up: it refills in (30|31) seconds$/);
    d.close();
    // the read took nothing: the stored state is as kumod left it
    expect(Number(await h.ctx.redis.get(key))).toBe(Number(secs) + 3600 + 30);
  });

  it('answers 451 4.3.0 when Redis is unreachable, never an accept', async () => {
    const cfg = testConfig({ ...gatewayEnv, REDIS_URL: 'redis://127.0.0.1:1/0' });
    const ctx = await createContext(cfg, { log: createLogger('silent') });
    const down = await startSubmissionGateway(ctx, cfg.gateway);
    try {
      await expectJson(await h.request('POST', `/v1/tenants/${tenant}/submission-networks`, { body: { network: '127.0.0.1/32' } }), 201);
      const { d } = await SmtpDialogue.open(down.submissionPort);
      await d.send('EHLO client.example');
      expect(await d.send('MAIL FROM:<sales@acme.example>')).toMatch(/^250/);
      expect(await d.send('RCPT TO:<a@gmail.com>')).toBe('451 4.3.0 the sending budget cannot be checked right now: try again later');
      d.close();
      expect(allMessages()).toHaveLength(0);
    } finally {
      await down.close();
      await ctx.close();
    }
  });
});

describe('relay', () => {
  it('maps kumod\'s per-recipient refusals back to the client', async () => {
    sinkA.behaviour.refuseRecipient = sinkB.behaviour.refuseRecipient = (a) => (a === 'unknown@example.org' ? { code: 550, message: '5.1.1 no such user here' } : null);
    const info = await transport().sendMail(message(['unknown@example.org', 'known@example.org']));
    expect(info.rejected).toEqual(['unknown@example.org']);
    expect((info.rejectedErrors as { response: string }[])[0]!.response).toBe('550 5.1.1 no such user here');
    expect(allMessages().map((m) => m.rcptTo)).toEqual([['known@example.org']]);
  });

  it('passes kumod\'s refusal of the message on as it is', async () => {
    sinkA.behaviour.dataReply = sinkB.behaviour.dataReply = { code: 550, message: '5.7.1 external sending is locked for this sender: warming lane only' };
    await expect(transport().sendMail(message('a@gmail.com'))).rejects.toMatchObject({ response: '550 5.7.1 external sending is locked for this sender: warming lane only' });
  });

  it('a node lost during the data means 451 and nothing delivered; sent again, it arrives exactly once', async () => {
    sinkA.behaviour.dropDuringDataAfter = sinkB.behaviour.dropDuringDataAfter = 10;
    await expect(transport().sendMail(message('once@gmail.com'))).rejects.toMatchObject({ response: '451 4.4.2 the relay connection was lost before the message was accepted: send it again' });
    expect(allMessages()).toHaveLength(0);
    sinkA.behaviour.dropDuringDataAfter = sinkB.behaviour.dropDuringDataAfter = null;
    // the node that dropped is marked down; the next message goes to another
    const info = await transport().sendMail(message('once@gmail.com'));
    expect(info.response).toMatch(/^250 /);
    expect(allMessages().filter((m) => m.rcptTo.includes('once@gmail.com'))).toHaveLength(1);
  });

  it('fails over to another node when one is down, and says so in its health', async () => {
    const fresh = await startSubmissionGateway(h.ctx, testConfig(gatewayEnv).gateway);
    const dead = await startSmtpSink();
    const deadPort = dead.port;
    await dead.close();
    try {
      await h.ctx.db.updateTable('nodes').set({ relay_port: deadPort }).where('id', '=', nodes['node-a']!).execute();
      for (let i = 0; i < 4; i++) {
        const info = await transport({ port: fresh.submissionPort }).sendMail(message(`f${i}@gmail.com`));
        expect(info.response).toMatch(/^250 /);
      }
      expect(sinkB.messages).toHaveLength(4);
      const states = fresh.pool.states([{ id: nodes['node-a']!, name: 'node-a', host: '127.0.0.1', port: deadPort }]);
      expect(states[0]).toMatchObject({ up: false });
      expect(states[0]!.last_error).toMatch(/ECONNREFUSED/);
    } finally {
      await h.ctx.db.updateTable('nodes').set({ relay_port: sinkA.port }).where('id', '=', nodes['node-a']!).execute();
      await fresh.close();
    }
  });

  it('answers 451 4.4.1 when no node is reachable', async () => {
    const fresh = await startSubmissionGateway(h.ctx, testConfig(gatewayEnv).gateway);
    await h.ctx.db.updateTable('nodes').set({ relay_port: 1 }).execute();
    try {
      await expect(transport({ port: fresh.submissionPort }).sendMail(message('a@gmail.com'))).rejects.toMatchObject({ response: '451 4.4.1 no relay node is reachable right now: try again later' });
    } finally {
      await h.ctx.db.updateTable('nodes').set({ relay_port: sinkA.port }).where('id', '=', nodes['node-a']!).execute();
      await h.ctx.db.updateTable('nodes').set({ relay_port: sinkB.port }).where('id', '=', nodes['node-b']!).execute();
      await fresh.close();
    }
  });
});

describe('the in-memory recipient index', () => {
  it('picks up a suppression added while the gateway runs, within its one-second refresh', async () => {
    expect((await transport().sendMail(message('later@gmail.com'))).accepted).toEqual(['later@gmail.com']);
    await expectJson(await h.request('POST', '/v1/suppressions', { body: { pattern: '*@gmail.com', reason: 'manual' } }), 201);
    await new Promise((r) => setTimeout(r, 2200));
    await expect(transport().sendMail(message('later@gmail.com'))).rejects.toMatchObject({ response: '550 5.1.1 later@gmail.com is on the global suppression list (*@gmail.com: manual)' });
  });
});

describe('limits and protocol errors', () => {
  it('refuses an oversized message with 552 5.3.4, and the node never completes it', async () => {
    await expect(transport().sendMail(message('big@gmail.com', { text: 'x'.repeat(70_000) }))).rejects.toMatchObject({ responseCode: 552 });
    expect(allMessages()).toHaveLength(0);
  });

  it('defers recipients beyond the limit with 452 4.5.3', async () => {
    const info = await transport().sendMail(message(['1@gmail.com', '2@gmail.com', '3@gmail.com', '4@gmail.com']));
    expect(info.rejected).toEqual(['4@gmail.com']);
    expect((info.rejectedErrors as { response: string }[])[0]!.response).toBe('452 4.5.3 too many recipients: at most 3 per message, send the rest in another');
  });

  it('answers malformed and out-of-order commands with the right codes', async () => {
    const { d } = await SmtpDialogue.open(gw.submissionPort);
    expect(await d.send('HELLO there')).toMatch(/^500 /);
    expect(await d.send('EHLO client.example')).toMatch(/^250-gateway\.test/);
    await d.starttls();
    await d.send('EHLO client.example');
    await d.send(`AUTH PLAIN ${Buffer.from(`\0${creds.username}\0${creds.password}`).toString('base64')}`);
    expect(await d.send('RCPT TO:<a@gmail.com>')).toMatch(/^503 /);
    expect(await d.send('DATA')).toMatch(/^503 /);
    expect(await d.send('MAIL FROM:<broken')).toMatch(/^501 /);
    expect(await d.send('MAIL FROM:<a b@acme.example>')).toMatch(/^(501|553) /);
    expect(await d.send('MAIL FROM:<>')).toBe('553 5.7.1 a null sender cannot be submitted here');
    expect(await d.send('MAIL FROM:<sales@acme.example>')).toMatch(/^250 /);
    expect(await d.send('RCPT TO:<not-an-address>')).toMatch(/^(501|553) /);
    expect(await d.send('RCPT TO:<ok@gmail.com>')).toMatch(/^250 /);
    expect(await d.send('DATA')).toMatch(/^354 /);
    d.write('Subject: no from header\r\n\r\nbody\r\n.\r\n');
    expect(await d.reply()).toBe('550 5.6.0 the message has no From header');
    expect(await d.send('QUIT')).toMatch(/^221 /);
    expect(allMessages()).toHaveLength(0);
  });

  it('closes an idle session with 421', async () => {
    const idle = await startSubmissionGateway(h.ctx, testConfig({ ...gatewayEnv, CP_SMTP_IDLE_TIMEOUT_MS: '1000' }).gateway);
    try {
      const { d } = await SmtpDialogue.open(idle.submissionPort);
      await d.send('EHLO client.example');
      expect(await d.reply(5000)).toMatch(/^421 /);
      await d.closed();
    } finally {
      await idle.close();
    }
  });

  it('keeps the session usable after a refused message, on a reused relay connection', async () => {
    const t = transport({ pool: true, maxConnections: 1 });
    await expect(t.sendMail(message('a@gmail.com', { from: 'x@other.example', envelope: { from: 'sales@acme.example', to: 'a@gmail.com' } }))).rejects.toMatchObject({ responseCode: 553 });
    for (let i = 0; i < 3; i++) expect((await t.sendMail(message(`p${i}@gmail.com`))).response).toMatch(/^250 /);
    t.close();
    expect(allMessages()).toHaveLength(3);
  });
});
