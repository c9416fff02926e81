/**
 * A KumoMTA node for real: kumod started with mta-nodes/policy/init.lua and a node_settings.lua made
 * from a real POST /v1/nodes, next to a running control plane (its API on HTTPS, the certificate
 * verified by kumod against a local CA through SSL_CERT_FILE), the submission gateway,
 * a DNS server answering MX for the test domains and an SMTP server standing for the internet. Shown:
 *   1. the node pulls its module, verifies it, installs it, reloads, and keeps pulling;
 *   2. mail flows tenant -> gateway -> kumod -> internet from the source placement chose, DKIM-signed;
 *   3. the log hook closes the loop (records posted, a 550 5.1.1 suppresses and moves the score);
 *   4. publishes take effect, bad modules leave the node on its last good one, and with the control
 *      plane down the node keeps delivering;
 *   5. the external budget the gateway reads is the Redis key kumod writes.
 * The tests run in order and share one node.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/project-root.js';
import { readExternalBudget } from '../../src/adapters/redis/throttle-reader.js';
import { throttleRedisKey, externalThrottleName, warmupThrottleName } from '../../src/domain/policy/throttles.js';
import type { SubmissionGateway } from '../../src/gateway/submission-gateway.js';
import { startApiServer, type ApiServer } from '../../src/http/server.js';
import { startDnsServer, type DnsServer } from '../support/dns-server.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';
import { kumoRelease, releaseAtLeast, sayWhySkipped } from '../support/kumo-release.js';
import { readyToSend, startTestGateway, submit, verifyDkimIn } from '../support/mail-flow.js';
import { loopbackNodeSettings, stageNode, type StagedNode } from '../support/node-dir.js';
import { freePortForTest, waitForPortForTest } from '../support/ports.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { eventually, startKumod, type Kumod } from './kumod-process.js';

const release = kumoRelease();
if (!release.kumod || !release.shareDir) {
  sayWhySkipped('the real-kumod node suite (pull, mail flow, log hook, reload, budgets)', 'KUMOD_BIN names no kumod with its share directory (scripts/test.sh sets it from ../shared/kumomta when that is there)');
}

/** The API as a deployment runs it: HTTPS (the certificate of scripts/api-tls-cert.sh), which kumod verifies. */
const startApi = (h: Harness, port: number): Promise<ApiServer> => startApiServer(h.ctx, h.app, { host: '127.0.0.1', port });

describe.skipIf(!release.kumod || !release.shareDir)(`a KumoMTA node in a real kumod ${release.version ?? ''}`, () => {
  let h: Harness;
  let api: ApiServer;
  let apiPort: number;
  let dns: DnsServer;
  let internet: SmtpSink;
  let node: StagedNode;
  let kumod: Kumod;
  let gateway: SubmissionGateway;
  let redis: Redis;
  let tenant: { id: string };
  let other: { id: string };
  let creds: { username: string; password: string };
  let ips: Record<string, { id: string }> = {};
  let poolId: string;
  let nodeId: string;
  let httpPort: number;
  let tsaDaemon: ChildProcess;
  let tsaLog = '';
  let edCreds: { username: string; password: string };
  const dkimDir = mkdtempSync(path.join(tmpdir(), 'kcp-dkim-'));
  const apiTls = mkdtempSync(path.join(tmpdir(), 'kcp-api-tls-'));
  const tsaDir = mkdtempSync(path.join(tmpdir(), 'kcp-tsa-'));
  // the operator's own shaping file, loaded by the nodes and by TSA: one automation rule
  const rules = path.join(tsaDir, 'shaping.toml');
  writeFileSync(rules, ['["tsa.test"]', 'mx_rollup = false', '', '[["tsa.test".automation]]', 'regex = "mailbox busy \\\\(tsa\\\\)"', 'action = "Suspend"', 'duration = "10m"', ''].join('\n'));

  const send = (to: string, extra: Record<string, unknown> = {}, as: { username: string; password: string } = creds) =>
    submit(gateway.submissionPort, as, { from: 'Acme Sales <sales@acme.test>', to, subject: 'via kumod', text: 'hello from the platform', ...extra });

  /** DKIM as a receiver checks it, with an independent verifier and the keys published in our DNS */
  const verifyDkim = (raw: Buffer) => verifyDkimIn(dns, raw);
  /** the messages the internet received for a recipient */
  const arrived = (rcpt: string) => internet.messages.filter((m) => m.rcptTo.includes(rcpt));
  const installed = () => readFileSync(path.join(node.cpDir, 'generated.lua'), 'utf8');
  const currentVersion = async () => (await h.ctx.db.selectFrom('policy_versions').select(['version', 'lua_text', 'content_sha256']).where('node_id', '=', nodeId).orderBy('version', 'desc').executeTakeFirstOrThrow());
  const publish = async (): Promise<{ version: number; changed: boolean; reload: { ok: boolean } | null }[]> => (await expectJson(await h.request('POST', '/v1/policy/publish', { body: {} }), 200)).results;

  beforeAll(async () => {
    apiPort = await freePortForTest();
    // the node channel over HTTPS: a local CA and a certificate it signed, as scripts/run.sh makes them
    execFileSync('bash', [path.join(projectRoot(), 'scripts/api-tls-cert.sh'), apiTls, 'localhost'], { stdio: 'ignore' });
    h = await startHarness({ CP_POLICY_DKIM_KEY_DIR: dkimDir, CP_POLICY_BUMP_TIMEOUT_MS: '2000', CP_HTTP_TLS_CERT_FILE: path.join(apiTls, 'cert.pem'), CP_HTTP_TLS_KEY_FILE: path.join(apiTls, 'key.pem') });
    api = await startApi(h, apiPort);
    redis = new Redis(h.ctx.config.redisUrl);
    internet = await startSmtpSink();
    internet.behaviour.refuseRecipient = (a) =>
      a.startsWith('unknown@')
        ? { code: 550, message: '5.1.1 <unknown@inbox.test>: no such user here' }
        : a.startsWith('later@')
          ? { code: 451, message: '4.2.0 mailbox busy, try later' }
          : a.startsWith('busy@')
            ? { code: 451, message: '4.2.1 mailbox busy (tsa)' }
            : null;
    // inbox.test is an ordinary domain; gmail.test's MX is named like Google's, so KumoMTA's shaping
    // data calls its site `google` and the warm-up class is gmail
    dns = await startDnsServer({
      mx: {
        'inbox.test': [{ exchange: 'mx.inbox.test' }],
        'gmail.test': [{ exchange: 'alt1.gmail-smtp-in.l.google.com' }],
        // a Google Workspace domain: another MX site of the same provider
        'workspace.test': [{ exchange: 'aspmx.l.google.com' }],
        'tsa.test': [{ exchange: 'mx.tsa.test' }],
      },
      a: { 'mx.inbox.test': ['127.0.0.1'], 'alt1.gmail-smtp-in.l.google.com': ['127.0.0.1'], 'aspmx.l.google.com': ['127.0.0.1'], 'mx.tsa.test': ['127.0.0.1'] },
    });

    // warm-up caps small enough to see at work (gmail 48 a day: 2 an hour), and room for the rest; an
    // external budget whose spent tokens take a minute each to come back (60 an hour)
    await expectJson(await h.request('PATCH', '/v1/settings/ip_warmup', { body: { start_per_day: { gmail: 48, microsoft: 48, yahoo: 48, other: 24000 } } }), 200);
    await expectJson(await h.request('PATCH', '/v1/settings/placement', { body: { standard_external_per_hour: 60 } }), 200);
    // the fleet, through the API: one node, a standard pool, a warming IP in it (loopback sources)
    const [relayPort, inboundPort, tsaPort] = [await freePortForTest(), await freePortForTest(), await freePortForTest()];
    httpPort = await freePortForTest();
    // KumoMTA's Traffic Shaping Automation daemon, with the project's TSA policy
    writeFileSync(path.join(tsaDir, 'tsa_settings.lua'), `return { listen = '127.0.0.1:${tsaPort}', trusted_hosts = { '127.0.0.1' }, db_path = '${tsaDir}/tsa.db', kumo_share_dir = '${release.shareDir}', extra_shaping_files = { '${rules}' }, dns_name_servers = { '${dns.address}' } }\n`);
    tsaDaemon = spawn(path.join(path.dirname(release.kumod!), 'tsa-daemon'), ['--policy', path.join(projectRoot(), 'mta-nodes/tsa/init.lua')], { env: { ...process.env, KCP_TSA_SETTINGS: path.join(tsaDir, 'tsa_settings.lua') }, stdio: ['ignore', 'pipe', 'pipe'] });
    tsaDaemon.stderr!.on('data', (d) => (tsaLog += d));
    await waitForPortForTest(tsaPort, 30_000);
    poolId = (await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'standard-1', tier: 'standard' } }), 201)).id;
    const created = await expectJson(
      await h.request('POST', '/v1/nodes', { body: { name: 'kumod-1', region: 'fsn1', public_address: '127.0.0.1', relay_host: '127.0.0.1', relay_port: relayPort, admin_url: `http://127.0.0.1:${httpPort}` } }),
      201,
    );
    nodeId = created.id;
    for (const [addr, state] of [['127.0.0.2', 'warming'], ['127.0.0.3', 'active']] as const) {
      ips[addr] = await expectJson(await h.request('POST', '/v1/ips', { body: { address: addr, node_id: nodeId, rdns_name: `mta${addr.split('.')[3]}.kumod.test`, state } }), 201);
    }
    await expectJson(await h.request('PUT', `/v1/pools/${poolId}/members/${ips['127.0.0.2']!.id}`, { body: { weight: 100 } }), 200);

    // tenants: acme sends; beta owns a domain too (for forged reports)
    tenant = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'acme', display_name: 'Acme' } }), 201);
    other = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'beta', display_name: 'Beta' } }), 201);
    for (const [t, domain] of [[tenant, 'acme.test'], [other, 'beta.test']] as const) {
      await readyToSend(h, t.id, domain, dns);
      await h.ctx.db.updateTable('tenant_trust').set({ score: 88, locked: false, lock_kind: null, locked_at: null, lock_reason: null }).where('tenant_id', '=', t.id).execute();
    }
    creds = await expectJson(await h.request('POST', `/v1/tenants/${tenant.id}/smtp-credentials`, { body: {} }), 201);
    // a tenant whose domain signs with Ed25519 (kumod loads such keys from 2025.05.06 on)
    const ed = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'edwards', display_name: 'Edwards' } }), 201);
    await readyToSend(h, ed.id, 'ed.test', dns, { dkim_algorithm: 'ed25519-sha256' });
    await h.ctx.db.updateTable('tenant_trust').set({ score: 88, locked: false, lock_kind: null, locked_at: null, lock_reason: null }).where('tenant_id', '=', ed.id).execute();
    edCreds = await expectJson(await h.request('POST', `/v1/tenants/${ed.id}/smtp-credentials`, { body: {} }), 201);

    // the node: settings from its registration and the control plane's key, as a deployment writes them
    const key = await expectJson(await h.request('GET', '/v1/policy/public-key'), 200);
    node = stageNode((root) =>
      loopbackNodeSettings(
        root,
        {
          controlPlaneUrl: `https://127.0.0.1:${apiPort}`,
          node: { id: created.id, token: created.token },
          publicKeyHex: key.public_key_hex,
          redisUrl: h.ctx.config.redisUrl,
          ports: { relay: relayPort, inbound: inboundPort, http: httpPort },
          dkimDir,
          shareDir: release.shareDir!,
          dnsServer: dns.address,
          internetPort: internet.port,
        },
        { tsa_urls: [`http://127.0.0.1:${tsaPort}`], extra_shaping_files: [rules] },
      ),
    );
    (node as StagedNode & { inboundPort: number }).inboundPort = inboundPort;
    // kumod's HTTP client has no CA option (kumo.http.build_client): it trusts the system's roots,
    // which SSL_CERT_FILE replaces; a deployment installs the CA in the node's trust store instead
    node.env.SSL_CERT_FILE = path.join(apiTls, 'ca.pem');
    kumod = await startKumod(node, relayPort);

    gateway = await startTestGateway(h, { CP_SMTP_FACTS_TTL_MS: '0' });
  }, 120_000);

  afterAll(async () => {
    await gateway?.close();
    await kumod?.stop();
    await api?.close().catch(() => undefined);
    redis?.disconnect();
    await internet?.close();
    tsaDaemon?.kill('SIGTERM');
    await dns?.close();
    await h?.close();
  });

  it('before it has a verified module, the node refuses mail with a 4xx at reception, and nothing leaves', async () => {
    await expect(send('reader@inbox.test')).rejects.toThrow(/451 4\.3\.0 this node has no verified policy yet/);
    expect(internet.messages).toHaveLength(0);
  });

  it('pulls its module from the control plane over HTTPS, verifies and installs it, reloads, and keeps pulling', async () => {
    const mark = kumod.mark();
    const [published] = await publish();
    // the control plane asked kumod to reload too (its HTTP listener trusts the control plane)
    expect(published).toMatchObject({ version: 1, changed: true, reload: { ok: true } });
    await kumod.waitForLog(/cp: installed a new policy module/, 30_000, mark);
    const v1 = await currentVersion();
    expect(installed()).toBe(v1.lua_text);
    // the hash beside it says what was verified; the DKIM keys were written before it
    expect(readFileSync(path.join(node.cpDir, 'generated.lua.sha256'), 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(readFileSync(path.join(dkimDir, 'acme.test', 'kcp1.key'), 'utf8')).toContain('PRIVATE KEY');
    // applied, as kumod itself reports it on the pull right after the install
    const status = await eventually('kumod reports it runs v1', async () => {
      const s = await expectJson(await h.request('GET', '/v1/policy/status'), 200);
      return s.nodes[0].state === 'up_to_date' ? s.nodes[0] : undefined;
    }, 15_000);
    expect(status).toMatchObject({ node: 'kumod-1', served_version: 1, applied_version: 1, current_version: 1, applied_sha256: v1.content_sha256, running_copy: 'generated', install_error: null });
    // still pulling: the next pulls are answered 304 and change nothing
    const seen = await h.ctx.db.selectFrom('nodes').select('last_seen_at').where('id', '=', nodeId).executeTakeFirstOrThrow();
    await eventually('another pull', async () => {
      const now = await h.ctx.db.selectFrom('nodes').select('last_seen_at').where('id', '=', nodeId).executeTakeFirstOrThrow();
      return now.last_seen_at! > seen.last_seen_at! ? true : undefined;
    }, 15_000);
    expect(installed()).toBe(v1.lua_text);
  });

  it("mail flows end to end: from the placement's source address, DKIM-signed and verifiable, trusted headers gone", async () => {
    const info = await send('reader@inbox.test');
    expect(info.response).toMatch(/^250 /);
    const [m] = await eventually('the message at the internet', async () => (arrived('reader@inbox.test').length > 0 ? arrived('reader@inbox.test') : undefined));
    // the tenant's shard is the one IP in its pool: kumod bound it, and said its rDNS name in EHLO
    expect(m!.remoteAddress).toBe('127.0.0.2');
    expect(m!.clientHostname).toBe('mta2.kumod.test');
    const raw = m!.raw.toString('utf8');
    expect(raw).not.toMatch(/^X-KCP-/im);
    expect(raw).toMatch(/^X-KumoRef: /m);
    const dkim = await verifyDkim(m!.raw);
    expect(dkim.results.map((r) => [r.signingDomain, r.selector, r.status.result])).toEqual([['acme.test', 'kcp1', 'pass']]);
  });

  it('a From header with two authors (kumod raises on .domain of it) is signed for the first and delivered', async () => {
    const info = await send('authors@inbox.test', { from: '"Sales, EU" <eu@acme.test>, Ops <ops@acme.test>', sender: 'eu@acme.test' });
    expect(info.response).toMatch(/^250 /);
    const [m] = await eventually('the two-author message', async () => (arrived('authors@inbox.test').length > 0 ? arrived('authors@inbox.test') : undefined));
    expect(m!.raw.toString()).toMatch(/^From: .*eu@acme\.test.*ops@acme\.test/m);
    const dkim = await verifyDkim(m!.raw);
    expect(dkim.results.map((r) => [r.signingDomain, r.status.result])).toEqual([['acme.test', 'pass']]);
  });

  it(
    releaseAtLeast(release, '2025.05.06')
      ? 'a domain that signs with Ed25519: signed, and verifiable'
      : 'a domain that signs with Ed25519: kumod 2025.03.19 never loads such keys (fixed in 2025.05.06), so the node tempfails it and nothing leaves',
    async () => {
      const mail = { from: 'News <news@ed.test>' };
      if (releaseAtLeast(release, '2025.05.06')) {
        expect((await send('ed@inbox.test', mail, edCreds)).response).toMatch(/^250 /);
        const [m] = await eventually('the Ed25519-signed message', async () => (arrived('ed@inbox.test').length > 0 ? arrived('ed@inbox.test') : undefined));
        const dkim = await verifyDkim(m!.raw);
        expect(dkim.results.map((r) => [r.signingDomain, r.status.result])).toEqual([['ed.test', 'pass']]);
      } else {
        // kumod answers 421 technical difficulties; the gateway tells the client to send again
        await expect(send('ed@inbox.test', mail, edCreds)).rejects.toThrow(/451 4\.4\.2 .*technical difficulties/);
        await new Promise((r) => setTimeout(r, 500));
        expect(arrived('ed@inbox.test')).toHaveLength(0);
      }
    },
  );

  it("a DKIM key file that is missing makes the node tempfail that domain's mail (kumod: 421), never send it unsigned", async () => {
    const beta = (await expectJson(await h.request('POST', `/v1/tenants/${other.id}/smtp-credentials`, { body: {} }), 201)) as { username: string; password: string };
    const file = path.join(dkimDir, 'beta.test', 'kcp1.key');
    renameSync(file, `${file}.away`);
    try {
      await expect(send('beta@inbox.test', { from: 'beta@beta.test' }, beta)).rejects.toThrow(/451 4\.4\.2 .*technical difficulties/);
      await new Promise((r) => setTimeout(r, 500));
      expect(arrived('beta@inbox.test')).toHaveLength(0);
    } finally {
      renameSync(`${file}.away`, file);
    }
    // with the key back, the same mail goes, signed; from 2025.12.02 kumod remembers a failed key
    // load for a minute, and the mail is tempfailed (never sent unsigned) until then
    const remembers = releaseAtLeast(release, '2025.12.02');
    const accepted = await eventually('the mail accepted with its key back', async () => (await send('beta@inbox.test', { from: 'beta@beta.test' }, beta).catch(() => undefined))?.response, remembers ? 75_000 : 1_000, 5_000);
    expect(accepted).toMatch(/^250 /);
    const [m] = await eventually('the signed message', async () => (arrived('beta@inbox.test').length > 0 ? arrived('beta@inbox.test') : undefined));
    expect(m!.raw.toString()).toMatch(/^DKIM-Signature: .*d=beta\.test/ms);
    // room for the minute kumod remembers the failed load (from 2025.12.02)
  }, 100_000);

  it('the log hook closes the loop: deliveries, bounces and transient failures reach the control plane; a 550 5.1.1 suppresses and moves the score', async () => {
    const before = await h.ctx.db.selectFrom('tenant_trust').select('score').where('tenant_id', '=', tenant.id).executeTakeFirstOrThrow();
    expect((await send('unknown@inbox.test')).response).toMatch(/^250 /);
    expect((await send('later@inbox.test')).response).toMatch(/^250 /);
    const events = await eventually('delivered, hard- and soft-bounced records', async () => {
      const rows = await h.ctx.db.selectFrom('delivery_events').selectAll().where('tenant_id', '=', tenant.id).where('node_id', '=', nodeId).execute();
      const byRecipient = (r: string) => rows.find((e) => e.recipient === r && e.record_type !== 'Reception');
      return byRecipient('reader@inbox.test') && byRecipient('unknown@inbox.test') && byRecipient('later@inbox.test') ? { rows, byRecipient } : undefined;
    }, 30_000);
    expect(events.byRecipient('reader@inbox.test')).toMatchObject({ record_type: 'Delivery', outcome: 'delivered', lane: 'external', egress_source: 'ip-127-0-0-2' });
    // kumod's bounce classifier (IANA rules) classified it; the control plane stored its word
    expect(events.byRecipient('unknown@inbox.test')).toMatchObject({ record_type: 'Bounce', outcome: 'hard_bounce', response_code: 550, enhanced_code: '5.1.1', bounce_classification: 'InvalidRecipient' });
    expect(events.byRecipient('later@inbox.test'), JSON.stringify(events.rows.map((e) => [e.recipient, e.record_type, e.response_text]))).toMatchObject({ record_type: 'TransientFailure', outcome: 'soft_bounce', response_code: 451 });
    // the deferred message is still kumod's: its pulls say so (message_count of its own /metrics), and
    // that keeps the control plane from deleting the server under it
    const holding = await eventually('the node reports the message it holds', async () => {
      const row = await h.ctx.db.selectFrom('nodes').select(['queued_messages', 'queued_messages_at']).where('id', '=', nodeId).executeTakeFirstOrThrow();
      return row.queued_messages !== null && Number(row.queued_messages) >= 1 ? row : undefined;
    }, 45_000);
    // the count rides on a pull every 30 s (cp_pull QUEUE_REPORT_EVERY_SECONDS)
    expect(Date.now() - holding.queued_messages_at!.getTime()).toBeLessThan(45_000);
    const suppressed = await h.ctx.db.selectFrom('suppressions').select(['pattern', 'reason']).where('tenant_id', '=', tenant.id).execute();
    expect(suppressed).toContainEqual(expect.objectContaining({ pattern: 'unknown@inbox.test' }));
    const after = await h.ctx.db.selectFrom('tenant_trust').select('score').where('tenant_id', '=', tenant.id).executeTakeFirstOrThrow();
    expect(Number(after.score)).toBeLessThan(Number(before.score));
    // the suppressed address is now refused at the gateway, before any node sees it (its recipient
    // index picks new suppressions up within a second)
    await new Promise((r) => setTimeout(r, 1500));
    await expect(send('unknown@inbox.test')).rejects.toThrow(/550 5\.1\.1/);
    // room for the queue count's 30 s cadence
  }, 90_000);

  it("TSA: a rule in the operator's shaping file fires on a deferral, and the node suspends that path", async () => {
    expect((await send('busy@tsa.test')).response).toMatch(/^250 /);
    let list: { name: string; reason: string }[] = [];
    const suspension = await eventually('the ready-queue suspension TSA pushed', async () => {
      const res = await fetch(`http://127.0.0.1:${httpPort}/api/admin/suspend-ready-q/v1`);
      list = (await res.json()) as { name: string; reason: string }[];
      return list.find((s) => s.name.includes('tsa.test')) ?? undefined;
    }, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}; suspensions: ${JSON.stringify(list)}; tsa-daemon said:\n${tsaLog.slice(-3000)}\nkumod said:\n${kumod.log().slice(-3000)}`);
    });
    expect(suspension.name).toMatch(/^ip-127-0-0-2->/);
    expect(suspension.reason).toContain('rule_hash');
  });

  it("the external budget the gateway reads is the key kumod writes; log records and retries do not spend it", async () => {
    const settings = await expectJson(await h.request('GET', '/v1/settings'), 200);
    const spec = `${settings.placement.standard_external_per_hour}/h`;
    const key = throttleRedisKey(externalThrottleName(tenant.id), spec);
    const watch = await watchThrottleChecks(h.ctx.config.redisUrl);
    try {
      const seenBefore = arrived('budget@inbox.test').length;
      const mark = kumod.mark();
      expect((await send('budget@inbox.test')).response).toMatch(/^250 /);
      await eventually('delivery', async () => (arrived('budget@inbox.test').length > seenBefore ? true : undefined));
      const spent = () => watch.checks().filter((k) => k === key);
      await eventually(`kumod checking ${key}`, async () => (spent().length > 0 ? true : undefined), 10_000).catch((e: Error) => {
        throw new Error(`${e.message}; throttles checked: ${JSON.stringify(watch.checks())}; kumod said:\n${kumod.log().slice(mark)}`);
      });
      // the Delivery record went through the log hook too, and was posted: wait for it
      await eventually('the delivery record', async () => (await h.ctx.db.selectFrom('delivery_events').select('id').where('recipient', '=', 'budget@inbox.test').where('record_type', '=', 'Delivery').executeTakeFirst()) ?? undefined, 30_000);
      await new Promise((r) => setTimeout(r, 1000));
      // one message, one token: not one more per log record (Reception, Delivery) carrying its meta
      expect(spent()).toHaveLength(1);
      // and the warm-up cap of the IP it left from, by provider class, in the same Redis
      expect(watch.checks().some((k) => k.startsWith(`${warmupThrottleName('ip-127-0-0-2', 'other')}:`))).toBe(true);
      const seen = await readExternalBudget(h.ctx.redis, tenant.id, spec);
      expect(seen.key).toBe(key);
      if (releaseAtLeast(release, '2025.05.06')) {
        // the key lives until its bucket drains: the gateway sees what kumod spent
        expect(seen.remaining).toBeLessThan(seen.capacity);
      } else {
        // kumod 2025.03.19 stores the key with an expiry in milliseconds (fixed in 2025.05.06): it is gone already
        expect(await redis.exists(key)).toBe(0);
        expect(seen.remaining).toBe(seen.capacity);
      }
    } finally {
      await watch.stop();
    }
  });

  it(
    releaseAtLeast(release, '2025.05.06')
      ? "a warming IP's gmail cap is one bucket for every Google-hosted site: its hour's share goes, the next waits"
      : "a warming IP's gmail cap is checked under one name for every Google-hosted site; kumod 2025.03.19 forgets it at once (fixed in 2025.05.06)",
    async () => {
      const watch = await watchThrottleChecks(h.ctx.config.redisUrl);
      const gmailCap = `${warmupThrottleName('ip-127-0-0-2', 'gmail')}:48:2:86400`;
      try {
        // two Google-hosted domains with different MX sites, three messages: the cap is 2 an hour
        for (const to of ['one@gmail.test', 'two@workspace.test', 'three@workspace.test']) {
          expect((await send(to)).response).toMatch(/^250 /);
          await eventually(`kumod checking the cap for ${to}`, async () => (watch.checks().filter((k) => k === gmailCap).length >= ['one@gmail.test', 'two@workspace.test', 'three@workspace.test'].indexOf(to) + 1 ? true : undefined), 10_000);
        }
        const got = () => ['one@gmail.test', 'two@workspace.test', 'three@workspace.test'].filter((r) => arrived(r).length > 0);
        if (releaseAtLeast(release, '2025.05.06')) {
          await eventually('the first two messages', async () => (got().length >= 2 ? true : undefined));
          // the third waits for the cap (kumod retries it later), whichever site it is for
          const deferred = await eventually('the deferral', async () => (await h.ctx.db.selectFrom('delivery_events').select(['recipient', 'response_text']).where('record_type', '=', 'TransientFailure').where('recipient', '=', 'three@workspace.test').executeTakeFirst()) ?? undefined, 30_000);
          expect(deferred.response_text).toContain('no sources');
          expect(got()).toEqual(['one@gmail.test', 'two@workspace.test']);
          // and the bucket is remembered for the hours it takes to refill
          expect(await redis.ttl(gmailCap)).toBeGreaterThan(3000);
        } else {
          // the bucket is written with an expiry in milliseconds where seconds were meant (two tokens of
          // 1800 s each: 3.6 s instead of an hour): within seconds it is gone, and with it the cap
          await eventually('the bucket gone', async () => ((await redis.exists(gmailCap)) === 0 ? true : undefined), 10_000);
        }
      } finally {
        await watch.stop();
      }
    },
  );

  it('a report arriving on the inbound listener cannot name a tenant: it is attributed by its domain, never by a forged header', async () => {
    const port = (node as StagedNode & { inboundPort: number }).inboundPort;
    const dsn = [
      'From: MAILER-DAEMON@mx.inbox.test',
      'To: bounce@bounces.acme.test',
      `X-KCP-Tenant: ${other.id}`,
      'X-KCP-Lane: external',
      'Subject: Undelivered Mail Returned to Sender',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain',
      '',
      'Your message could not be delivered.',
      '--b1',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.inbox.test',
      '',
      'Final-Recipient: rfc822; gone@inbox.test',
      'Action: failed',
      'Status: 5.1.1',
      'Diagnostic-Code: smtp; 550 5.1.1 user unknown',
      '--b1',
      'Content-Type: text/rfc822-headers',
      '',
      'From: sales@acme.test',
      'To: gone@inbox.test',
      'Subject: hello',
      '--b1--',
      '',
    ].join('\r\n');
    await smtpSend(port, 'mailer-daemon@mx.inbox.test', 'bounce@bounces.acme.test', dsn);
    const oob = await eventually('the OOB record', async () => (await h.ctx.db.selectFrom('delivery_events').selectAll().where('record_type', '=', 'OOB').executeTakeFirst()) ?? undefined, 30_000);
    expect(oob.tenant_id).toBe(tenant.id);
    expect(oob.tenant_id).not.toBe(other.id);
  });

  it('a publish takes effect in kumod: the tenant moves to another IP, and the IP it left never fails reception', async () => {
    // IP .3 joins the pool and .2 is retired: the engine re-shards, the node gets a new module
    await expectJson(await h.request('PUT', `/v1/pools/${poolId}/members/${ips['127.0.0.3']!.id}`, { body: { weight: 100 } }), 200);
    await expectJson(await h.request('PATCH', `/v1/ips/${ips['127.0.0.2']!.id}`, { body: { state: 'retired' } }), 200);
    await expectJson(await h.request('POST', `/v1/tenants/${tenant.id}/placement/override`, { body: { tier: 'standard', expires_at: new Date(Date.now() + 86_400_000).toISOString(), reason: 'reshard' } }), 200);
    const mark = kumod.mark();
    await publish();
    await kumod.waitForLog(/cp: installed a new policy module/, 30_000, mark);
    const v2 = await currentVersion();
    expect(v2.version).toBeGreaterThan(1);
    expect(installed()).toBe(v2.lua_text);
    // right after the reload: accepted (a pool kumod cached may still name .2, which still resolves)
    for (let i = 0; i < 3; i++) expect((await send(`moved${i}@inbox.test`)).response).toMatch(/^250 /);
    const moved = await eventually('the moved messages', async () => {
      const got = [0, 1, 2].flatMap((i) => arrived(`moved${i}@inbox.test`));
      return got.length === 3 ? got : undefined;
    });
    expect(moved.at(-1)!.remoteAddress).toBe('127.0.0.3');
    expect(kumod.log().slice(mark)).not.toMatch(/technical difficulties|unknown egress source/);
  });

  it('a module whose signature does not verify, or a signed one that is not valid policy, leaves the node on its last good one', async () => {
    const v2 = await currentVersion();
    const signer = h.ctx.policySigner;
    const insert = async (version: number, text: string, signature: string) =>
      h.ctx.db
        .insertInto('policy_versions')
        .values({ node_id: nodeId, version, content_sha256: (await import('node:crypto')).createHash('sha256').update(text).digest('hex'), model_sha256: '0'.repeat(64), lua_text: text, signature, created_at: new Date(), published_at: new Date() })
        .execute();
    // tampered in the database after signing
    let mark = kumod.mark();
    await insert(v2.version + 1, v2.lua_text.replace("'127.0.0.3'", "'127.0.0.9'"), signer.sign(v2.lua_text));
    await kumod.waitForLog(/policy pull failed: signature does not verify/, 30_000, mark);
    expect(installed()).toBe(v2.lua_text);
    // signed with the right key, but not policy this runtime accepts
    mark = kumod.mark();
    const bad = v2.lua_text.replace("tier = 'standard'", "tier = 'gold'");
    await insert(v2.version + 2, bad, signer.sign(bad));
    await kumod.waitForLog(/policy pull failed: module refused: .*gold/, 30_000, mark);
    expect(installed()).toBe(v2.lua_text);
    // and says so on its next pull: it runs v2, not what it was served, and why
    const stale = await eventually('kumod reports the refusal', async () => {
      const s = (await expectJson(await h.request('GET', '/v1/policy/status'), 200)).nodes[0];
      return s.install_error?.includes('gold') ? s : undefined;
    }, 30_000);
    expect(stale).toMatchObject({ current_version: v2.version + 2, served_version: v2.version + 2, applied_version: v2.version, state: 'applying', running_copy: 'generated' });
    const before = arrived('still@inbox.test').length;
    expect((await send('still@inbox.test')).response).toMatch(/^250 /);
    const got = await eventually('delivery on the last good module', async () => (arrived('still@inbox.test').length > before ? arrived('still@inbox.test') : undefined));
    expect(got.at(-1)!.remoteAddress).toBe('127.0.0.3');
    // the operator withdraws the bad versions: the good one is served again (and it is what runs)
    await h.ctx.db.updateTable('policy_versions').set({ rolled_back_at: new Date() }).where('node_id', '=', nodeId).where('version', '>', v2.version).execute();
  });

  it('with the control plane down the node keeps delivering, and picks up again when it is back', async () => {
    const mark = kumod.mark();
    await api.close();
    await kumod.waitForLog(/policy pull failed: error sending request/, 30_000, mark);
    expect((await send('outage@inbox.test')).response).toMatch(/^250 /);
    const got = await eventually('delivery during the outage', async () => (arrived('outage@inbox.test').length > 0 ? arrived('outage@inbox.test') : undefined));
    expect(got[0]!.remoteAddress).toBe('127.0.0.3');
    api = await startApi(h, apiPort);
    // its delivery record waited in kumod's log-hook queue and is posted once the control plane is back
    await eventually('the outage delivery record', async () => (await h.ctx.db.selectFrom('delivery_events').select('id').where('recipient', '=', 'outage@inbox.test').where('record_type', '=', 'Delivery').executeTakeFirst()) ?? undefined, 90_000);
    // a minute and more after .2 was retired, every pool and source kumod cached has expired: still fine
    expect((await send('afterwards@inbox.test')).response).toMatch(/^250 /);
    const later = await eventually('delivery after the caches expired', async () => (arrived('afterwards@inbox.test').length > 0 ? arrived('afterwards@inbox.test') : undefined));
    expect(later[0]!.remoteAddress).toBe('127.0.0.3');
  }, 120_000);

  it('a sender domain verified after the node\'s module was published waits with a 4xx until its key arrives, never leaves unsigned', async () => {
    const d = await expectJson(await h.request('POST', `/v1/tenants/${tenant.id}/domains`, { body: { domain: 'later.test' } }), 201);
    await expectJson(await h.request('PATCH', `/v1/tenants/${tenant.id}/domains/${d.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
    for (const r of d.dns_records) if (r.type === 'TXT') dns.zone.txt[r.name.toLowerCase()] = [r.value];
    // the gateway knows the domain at once; the node's module does not have its key yet
    await expect(send('late@inbox.test', { from: 'news@later.test' })).rejects.toThrow(/451 4\.7\.0 this node has no DKIM key for the sender domain yet/);
    await new Promise((r) => setTimeout(r, 500));
    expect(arrived('late@inbox.test')).toHaveLength(0);
    const mark = kumod.mark();
    await publish();
    await kumod.waitForLog(/cp: installed a new policy module/, 30_000, mark);
    const accepted = await eventually('the mail accepted with the new module', async () => (await send('late@inbox.test', { from: 'news@later.test' }).catch(() => undefined))?.response, 15_000);
    expect(accepted).toMatch(/^250 /);
    const [m] = await eventually('the signed message', async () => (arrived('late@inbox.test').length > 0 ? arrived('late@inbox.test') : undefined));
    const dkim = await verifyDkim(m!.raw);
    expect(dkim.results.map((r) => [r.signingDomain, r.status.result])).toEqual([['later.test', 'pass']]);
  }, 60_000);
});

/**
 * The throttles kumod checks in Redis (in its own database), seen with MONITOR: its GCRA script is
 * EVALSHA <sha> 1 <key> <limit> <period> <burst> <quantity> (redis-cell: CL.THROTTLE <key> ...).
 * MONITOR changes nothing on the server, unlike keyspace notifications.
 */
async function watchThrottleChecks(url: string): Promise<{ checks(): string[]; stop(): Promise<void> }> {
  const u = new URL(url);
  const db = String(Number(u.pathname.slice(1) || 0));
  const keys: string[] = [];
  // a bare connection rather than ioredis's monitor(): ioredis enters its monitoring state a microtask
  // after MONITOR's OK, so a line arriving in the same read as the OK breaks its command queue
  const sock = connect({ host: u.hostname, port: Number(u.port || 6379) });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const password = decodeURIComponent(u.password);
  const user = decodeURIComponent(u.username);
  if (password) sock.write(user ? `AUTH ${user} ${password}\r\n` : `AUTH ${password}\r\n`);
  sock.write('MONITOR\r\n');
  let buf = '';
  sock.on('data', (d) => {
    buf += d.toString('latin1');
    let nl: number;
    while ((nl = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      // +<time> [<db> <client>] "<arg>" "<arg>" ...
      const m = /^\+\d+\.\d+ \[(\d+) [^\]]*\] (.*)$/.exec(line);
      if (!m || m[1] !== db) continue;
      const args = [...m[2]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((a) => a[1]!.replace(/\\x([0-9a-f]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))).replace(/\\(.)/g, '$1'));
      const cmd = (args[0] ?? '').toUpperCase();
      if (cmd === 'EVALSHA' && args[2] === '1' && args.length === 8) keys.push(args[3]!);
      if (cmd === 'CL.THROTTLE') keys.push(args[1]!);
    }
  });
  sock.on('error', () => undefined);
  return {
    checks: () => [...keys],
    async stop() {
      sock.destroy();
    },
  };
}

/** A bare SMTP client for the inbound listener: no TLS, no AUTH, as a remote MTA delivers a report. */
function smtpSend(port: number, from: string, to: string, data: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    const steps = [`EHLO mx.inbox.test\r\n`, `MAIL FROM:<${from}>\r\n`, `RCPT TO:<${to}>\r\n`, 'DATA\r\n', `${data.replace(/\r\n\./g, '\r\n..')}\r\n.\r\n`, 'QUIT\r\n'];
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      if (!/\r\n$/.test(buf) || /^\d{3}-/m.test(buf.split('\r\n').slice(-2)[0] ?? '')) return;
      const code = Number(buf.slice(0, 3));
      buf = '';
      if (code >= 400) {
        sock.destroy();
        return reject(new Error(`inbound listener answered ${code}`));
      }
      const next = steps.shift();
      if (next) sock.write(next);
      else resolve();
    });
    sock.on('error', reject);
    sock.on('close', () => resolve());
  });
}
