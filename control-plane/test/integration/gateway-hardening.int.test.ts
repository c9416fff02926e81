/**
 * The gateway fails closed and says no up front (issue 14): with Redis away a warming recipient is
 * deferred; a suppression that commits late is still honoured; bare CR, bare LF and over-long lines
 * are refused before kumod gets the message; Sender, Resent-* and X-KumoRef are checked or removed;
 * AUTH failures lock a (username, source) pair and a source, and only slow a username down; commands
 * before AUTH are capped; every reply carries an enhanced status code; Message-ID and Date are added.
 * Real clients over TCP and TLS, the real gateway, PostgreSQL and Redis, SMTP sinks as the nodes.
 */
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createContext } from '../../src/context.js';
import { createLogger } from '../../src/adapters/logger.js';
import { sessionOptions } from '../../src/adapters/pg/scope.js';
import { startSubmissionGateway, type SubmissionGateway } from '../../src/gateway/submission-gateway.js';
import { expectJson, testConfig } from '../support/harness.js';
import { SmtpDialogue } from '../support/smtp-dialogue.js';
import { authedDialogue, authPlain, startGatewayWorld, type GatewayWorld } from '../support/gateway-world.js';

let w: GatewayWorld;
let gw: SubmissionGateway;

const ENHANCED = /^\d{3} [245]\.\d{1,3}\.\d{1,3} /;

async function openTransaction(d: SmtpDialogue, rcpt = 'someone@gmail.com'): Promise<void> {
  expect(await d.send('MAIL FROM:<sales@acme.example>')).toMatch(/^250/);
  expect(await d.send(`RCPT TO:<${rcpt}>`)).toMatch(/^250/);
  expect(await d.send('DATA')).toMatch(/^354/);
}

beforeAll(async () => {
  w = await startGatewayWorld();
  gw = await startSubmissionGateway(w.h.ctx, testConfig({ ...w.env, CP_SMTP_MAX_MESSAGE_BYTES: '1048576' }).gateway);
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await w?.close();
});

beforeEach(async () => {
  for (const s of w.sinks) s.messages.length = 0;
  await w.h.ctx.redis.flushdb();
  await w.h.ctx.db.deleteFrom('submission_networks').execute();
});

describe('fail closed', () => {
  it('with Redis unreachable, a warming-network recipient is deferred (451 4.3.0), never relayed unmetered', async () => {
    await w.h.ctx.db.insertInto('warming_members').values({ kind: 'golden_seed', address: 'seed@gmail.com', provider: 'gmail', weight: 3 }).onConflict((oc) => oc.doNothing()).execute();
    const cfg = testConfig({ ...w.env, REDIS_URL: 'redis://127.0.0.1:1/0' });
    const ctx = await createContext(cfg, { log: createLogger('silent') });
    const down = await startSubmissionGateway(ctx, cfg.gateway);
    try {
      // AUTH needs Redis too (its failure counters), so the session comes from a bound network
      await expectJson(await w.h.request('POST', `/v1/tenants/${w.tenant}/submission-networks`, { body: { network: '127.0.0.7/32' } }), 201);
      const { d } = await SmtpDialogue.open(down.submissionPort, { localAddress: '127.0.0.7' });
      try {
        await d.send('EHLO client.example');
        expect(await d.send('MAIL FROM:<sales@acme.example>')).toMatch(/^250/);
        expect(await d.send('RCPT TO:<seed@gmail.com>')).toBe('451 4.3.0 the warming schedule cannot be checked right now: try again later');
      } finally {
        d.close();
      }
      expect(w.messages()).toHaveLength(0);
    } finally {
      await down.close();
      await ctx.close();
    }
  });

  it('honours a suppression whose transaction began earlier and committed after more than 1,000 later ones', async () => {
    const indexed = await startSubmissionGateway(w.h.ctx, testConfig({ ...w.env, CP_SMTP_FACTS_TTL_MS: '60000' }).gateway);
    // a second connection as the app makes them: the app's role in the platform scope
    const slow = new pg.Client({ connectionString: w.h.db.url, options: sessionOptions('platform') });
    await slow.connect();
    try {
      await slow.query('BEGIN');
      await slow.query(`INSERT INTO suppressions (tenant_id, pattern, reason) VALUES ($1, 'late@gmail.com', 'import')`, [w.tenant]);
      // 1,100 suppressions commit after it started, with higher ids; the index reads them
      await w.h.ctx.db.insertInto('suppressions').values(Array.from({ length: 1100 }, (_, i) => ({ tenant_id: w.tenant, pattern: `bulk${i}@later.example`, reason: 'import' as const }))).execute();
      await indexed.refreshIndex();
      await slow.query('COMMIT');
      await indexed.refreshIndex();
      const d = await authedDialogue(indexed.submissionPort, w.creds);
      try {
        expect(await d.send('MAIL FROM:<sales@acme.example>')).toMatch(/^250/);
        expect(await d.send('RCPT TO:<late@gmail.com>')).toBe('550 5.1.1 late@gmail.com is on the tenant suppression list (late@gmail.com: import)');
      } finally {
        d.close();
      }
    } finally {
      await slow.end();
      await indexed.close();
      await w.h.ctx.db.deleteFrom('suppressions').execute();
    }
  });
});

describe('message data', () => {
  it.each([
    ['a bare LF in the body', 'From: sales@acme.example\r\nSubject: hi\r\n\r\nline one\nline two\r\n'],
    ['a bare CR in the body', 'From: sales@acme.example\r\nSubject: hi\r\n\r\nline one\rline two\r\n'],
    ['a bare LF in the header block', 'From: sales@acme.example\nSubject: hi\r\n\r\nbody\r\n'],
    ['a lone CR hiding a trusted header', `From: sales@acme.example\r\nSubject: hi\rX-KCP-Tenant: 00000000-0000-4000-8000-000000000666\r\n\r\nbody\r\n`],
    ['a bare LF that would end the data for a lenient server', 'From: sales@acme.example\r\n\r\nbody\n.\nMAIL FROM:<x@evil.example>\r\n'],
    ['a bare LF far into a large body', `From: sales@acme.example\r\n\r\n${'a line of text\r\n'.repeat(20_000)}tail\nend\r\n`],
  ])('refuses %s with 550 5.6.0, relaying nothing, and the session goes on', async (_n, data) => {
    const d = await authedDialogue(gw.submissionPort, w.creds);
    await openTransaction(d);
    d.write(`${data}.\r\n`);
    expect(await d.reply()).toMatch(/^550 5\.6\.0 the message has a bare (CR|LF): /);
    expect(w.messages()).toHaveLength(0);
    // nothing was smuggled after it, and the session is still in step
    expect(await d.send('NOOP')).toMatch(/^250 /);
    await openTransaction(d);
    d.write('From: sales@acme.example\r\nSubject: fine\r\n\r\nbody\r\n.\r\n');
    expect(await d.reply()).toMatch(/^250 /);
    expect(w.messages()).toHaveLength(1);
    d.close();
  });

  it.each([
    ['in the body', `From: sales@acme.example\r\n\r\n${'x'.repeat(999)}\r\n`],
    ['in the header block', `From: sales@acme.example\r\nSubject: ${'x'.repeat(1000)}\r\n\r\nbody\r\n`],
  ])('refuses a line over 998 octets %s with 550 5.6.0', async (_n, data) => {
    const d = await authedDialogue(gw.submissionPort, w.creds);
    await openTransaction(d);
    d.write(`${data}.\r\n`);
    expect(await d.reply()).toBe('550 5.6.0 the message has a line longer than 998 octets (RFC 5322 2.1.1)');
    expect(w.messages()).toHaveLength(0);
    d.close();
  });

  it('takes a line of exactly 998 octets', async () => {
    const d = await authedDialogue(gw.submissionPort, w.creds);
    await openTransaction(d);
    d.write(`From: sales@acme.example\r\n\r\n${'y'.repeat(998)}\r\n.\r\n`);
    expect(await d.reply()).toMatch(/^250 /);
    d.close();
  });
});

describe('headers', () => {
  const send = async (headers: string): Promise<string> => {
    const d = await authedDialogue(gw.submissionPort, w.creds);
    await openTransaction(d);
    d.write(`${headers}\r\n\r\nbody\r\n.\r\n`);
    const r = await d.reply();
    d.close();
    return r;
  };
  const relayedHeaders = (): string[] => w.messages()[0]!.raw.toString('latin1').split('\r\n\r\n')[0]!.split('\r\n');

  it.each([
    ['Sender', 'From: sales@acme.example\r\nSender: ceo@other.example', '553 5.7.1 header Sender domain other.example is not a verified sending domain of this tenant'],
    ['Resent-From', 'From: sales@acme.example\r\nResent-From: ceo@other.example', '553 5.7.1 header Resent-From domain other.example is not a verified sending domain of this tenant'],
    ['Resent-Sender', 'From: sales@acme.example\r\nResent-Sender: <ceo@other.example>', '553 5.7.1 header Resent-Sender domain other.example is not a verified sending domain of this tenant'],
    ['two Sender headers', 'From: sales@acme.example\r\nSender: a@acme.example\r\nSender: b@acme.example', '550 5.6.0 the message has more than one Sender header'],
    ['a Sender of two mailboxes', 'From: sales@acme.example\r\nSender: a@acme.example, b@acme.example', '550 5.6.0 the Sender header is not one plain address'],
  ])('refuses a forged %s', async (_n, headers, reply) => {
    expect(await send(headers)).toBe(reply);
    expect(w.messages()).toHaveLength(0);
  });

  it('keeps a Sender and Resent-From on verified domains, removes X-KumoRef, and leaves Message-ID and Date as given', async () => {
    expect(await send('From: sales@acme.example\r\nSender: ops@acme.example\r\nResent-From: ops@acme.example\r\nX-KumoRef: eyJ0ZW5hbnQiOiJldmlsIn0=\r\nx-kumoref: again\r\nMessage-ID: <given@acme.example>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000')).toMatch(/^250 /);
    const lines = relayedHeaders();
    expect(lines).toContain('Sender: ops@acme.example');
    expect(lines).toContain('Resent-From: ops@acme.example');
    expect(lines.filter((l) => /^x-kumoref:/i.test(l))).toEqual([]);
    expect(lines.filter((l) => /^message-id:/i.test(l))).toEqual(['Message-ID: <given@acme.example>']);
    expect(lines.filter((l) => /^date:/i.test(l))).toEqual(['Date: Tue, 01 Dec 2026 10:00:00 +0000']);
  });

  it('adds Message-ID and Date when the submission lacks them (RFC 6409 8.2, 8.3)', async () => {
    expect(await send('From: sales@acme.example\r\nSubject: bare')).toMatch(/^250 /);
    const lines = relayedHeaders();
    const ids = lines.filter((l) => /^message-id:/i.test(l));
    expect(ids).toHaveLength(1);
    expect(ids[0]).toMatch(/^Message-ID: <[A-Za-z0-9._-]{16,}@acme\.example>$/);
    const dates = lines.filter((l) => /^date:/i.test(l));
    expect(dates).toHaveLength(1);
    const date = dates[0]!.slice('Date: '.length);
    expect(date).toMatch(/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
    expect(Math.abs(Date.parse(date) - Date.now())).toBeLessThan(60_000);
  });
});

describe('AUTH', () => {
  let strict: SubmissionGateway;
  beforeAll(async () => {
    strict = await startSubmissionGateway(w.h.ctx, testConfig({ ...w.env, CP_SMTP_AUTH_FAILURE_LIMIT: '3', CP_SMTP_AUTH_SOURCE_FAILURE_LIMIT: '6', CP_SMTP_AUTH_MAX_DELAY_MS: '1000' }).gateway);
  });
  afterAll(async () => strict?.close());

  const attempt = async (from: string, user: string, pass: string): Promise<{ reply: string; ms: number }> => {
    const { d } = await SmtpDialogue.open(strict.submissionPort, { localAddress: from });
    await d.send('EHLO client.example');
    await d.starttls();
    await d.send('EHLO client.example');
    const t0 = performance.now();
    const reply = await d.send(authPlain(user, pass));
    const ms = performance.now() - t0;
    d.close();
    return { reply, ms };
  };

  it('locks a (username, source) pair out, not the username: the tenant still authenticates from elsewhere, slowed down', async () => {
    for (let i = 0; i < 3; i++) expect((await attempt('127.0.0.2', w.creds.username, 'wrong-password')).reply).toBe('535 5.7.8 authentication credentials invalid');
    // that pair is locked out, even with the right password
    expect((await attempt('127.0.0.2', w.creds.username, w.creds.password)).reply).toBe('454 4.7.0 too many failed authentication attempts: try again later');
    // the same username from another source is not locked out; it waits a little first
    const elsewhere = await attempt('127.0.0.3', w.creds.username, w.creds.password);
    expect(elsewhere.reply).toMatch(/^235 /);
    expect(elsewhere.ms).toBeGreaterThanOrEqual(200);
  });

  it('locks a source out that tries many usernames, with one reply for unknown users and wrong passwords', async () => {
    const replies = new Set<string>();
    for (let i = 0; i < 3; i++) replies.add((await attempt('127.0.0.4', `nobody-${i}`, 'whatever')).reply);
    for (let i = 0; i < 3; i++) replies.add((await attempt('127.0.0.4', w.creds.username, `wrong-${i}`)).reply);
    expect([...replies]).toEqual(['535 5.7.8 authentication credentials invalid']);
    expect((await attempt('127.0.0.4', 'someone-else', 'x')).reply).toBe('454 4.7.0 too many failed authentication attempts: try again later');
  });
});

describe('protocol', () => {
  it('caps the commands a session may send before it authenticates', async () => {
    const capped = await startSubmissionGateway(w.h.ctx, testConfig({ ...w.env, CP_SMTP_MAX_UNAUTHENTICATED_COMMANDS: '5' }).gateway);
    try {
      const { d } = await SmtpDialogue.open(capped.submissionPort);
      expect(await d.send('EHLO client.example')).toMatch(/^250/);
      for (let i = 0; i < 4; i++) expect(await d.send('NOOP')).toMatch(/^250 /);
      expect(await d.send('NOOP')).toBe('421 4.7.0 too many commands before authentication');
      d.close();
      // a session that authenticates is not held to it
      const ok = await authedDialogue(capped.submissionPort, w.creds);
      for (let i = 0; i < 8; i++) expect(await ok.send('NOOP')).toMatch(/^250 /);
      ok.close();
    } finally {
      await capped.close();
    }
  });

  it('advertises ENHANCEDSTATUSCODES and puts an enhanced code on every reply but the greeting, EHLO and 3xx', async () => {
    const { d } = await SmtpDialogue.open(gw.submissionPort);
    const replies: string[] = [];
    const ehlo = await d.send('EHLO client.example');
    expect(ehlo).toContain('250-ENHANCEDSTATUSCODES');
    // with the EHLOs and STARTTLS, ten commands before AUTH: what the default cap allows
    for (const c of ['HELLO there', 'NOOP', 'RSET', 'HELP', 'MAIL FROM:<sales@acme.example>', 'RCPT TO:<a@gmail.com>', authPlain(w.creds.username, w.creds.password), 'EHLO']) replies.push(await d.send(c));
    await d.starttls();
    await d.send('EHLO client.example');
    replies.push(await d.send('AUTH CRAM-MD5'));
    replies.push(await d.send(authPlain(w.creds.username, w.creds.password)));
    replies.push(await d.send('MAIL FROM:<nobody@unverified.example>'));
    replies.push(await d.send('MAIL FROM:<sales@acme.example>'));
    replies.push(await d.send('RCPT TO:<a@gmail.com>'));
    replies.push(await d.send('RSET'));
    replies.push(await d.send('QUIT'));
    for (const r of replies) expect(r, r).toMatch(ENHANCED);
    expect(replies.find((r) => r.startsWith('538'))).toBe('538 5.7.0 Error: Must issue a STARTTLS command first');
  });
});
