/**
 * Submission benchmark: Postfix's smtp-source drives the real gateway process (every check on: bound
 * network, sender and header From checks, suppression and warming lookups, the budget read from Redis,
 * header rewriting, relay to a node) which relays to Postfix's smtp-sink standing in for kumod. In the
 * same run the same load goes straight to the sink (the baseline) and through a naive smtp-server +
 * nodemailer relay. Then: latency added by the gateway at moderate load, the AUTH path with our own
 * client, and the gate decision alone.
 *
 *   npm run bench:submission -- [--messages 10000] [--conn-messages 3000] [--concurrency 20]
 *                               [--target host:port]   (also drive another SMTP server, e.g. a Postfix)
 */
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { createContext } from '../control-plane/src/context.js';
import { createLogger } from '../control-plane/src/adapters/logger.js';
import { loadConfig } from '../control-plane/src/config/config.js';
import { newApp } from '../control-plane/src/http/app.js';
import { createOperator, createOperatorToken } from '../control-plane/src/app/api-tokens.js';
import { systemCaller } from '../control-plane/src/app/actor.js';
import { SubmissionFacts } from '../control-plane/src/app/submission/submission-facts.js';
import { RecipientGate } from '../control-plane/src/app/submission/gate-recipient.js';
import { RecipientIndex } from '../control-plane/src/app/submission/recipient-index.js';
import { projectRoot } from '../control-plane/src/project-root.js';
import { createBenchDatabase, benchEnv } from './lib/bench-db.js';
import { cpuSeconds, freePort, percentile, run, start, stop, waitForPort } from './lib/processes.js';
import { BenchSmtpClient, benchMessage } from './lib/smtp-client.js';
import { printTable, writeResult } from './lib/report.js';

const { values } = parseArgs({
  strict: false,
  options: {
    messages: { type: 'string', default: '10000' },
    'conn-messages': { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '20' },
    target: { type: 'string' },
    // profiling aid: drive only the gateway, only the first load shape, and skip the rest
    'gateway-only': { type: 'boolean', default: false },
  },
});
const MESSAGES = Number(values.messages);
const CONN_MESSAGES = Number(values['conn-messages']);
const CONCURRENCY = Number(values.concurrency);
const root = projectRoot();
const postfix = execFileSync('bash', [path.join(root, 'bench/lib/postfix-tools.sh')], { encoding: 'utf8' }).trim();
const pfEnv = { ...process.env, LD_LIBRARY_PATH: path.join(postfix, 'usr/lib/postfix') };
const smtpSource = path.join(postfix, 'usr/sbin/smtp-source');
const smtpSink = path.join(postfix, 'usr/sbin/smtp-sink');
const SENDER = 'bench@bench.example';
class GatewayOnlyDone extends Error {}

const db = await createBenchDatabase();
const env = benchEnv(db.url);
const cfg = loadConfig(env);
if (!cfg.ok) throw new Error(cfg.error.join('; '));
const ctx = await createContext(cfg.value, { log: createLogger('silent') });
const children: ReturnType<typeof start>[] = [];

try {
  // ---- the tenant, its domain, trust and placement, and a node that relays to the sink ----
  const sinkPort = await freePort();
  const sink = start(smtpSink, [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), `127.0.0.1:${sinkPort}`, '1024'], { env: pfEnv });
  children.push(sink);
  await waitForPort(sinkPort);

  const app = newApp(ctx);
  const op = await createOperator(ctx, systemCaller('bench'), { email: 'bench@localhost.test', name: 'bench' });
  const token = (await createOperatorToken(ctx, systemCaller('bench'), op.id, { name: 'bench', scopes: ['admin'] })).token;
  const api = async (method: string, p: string, body?: unknown) => {
    const res = await app.request(p, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
    return res.status === 204 ? null : ((await res.json()) as Record<string, any>);
  };
  // kumod, not the gateway, spends the budget; with no kumod here the bench keeps it far from empty
  await api('PATCH', '/v1/settings/placement', { standard_external_per_hour: 10_000_000 });
  const pool = await api('POST', '/v1/pools', { name: 'standard-1', tier: 'standard' });
  const node = await api('POST', '/v1/nodes', { name: 'bench-node', region: 'fsn1', public_address: '198.51.100.1', relay_host: '127.0.0.1', relay_port: sinkPort });
  const ip = await api('POST', '/v1/ips', { address: '203.0.113.1', node_id: node!.id, rdns_name: 'mta1.bench.example', state: 'active' });
  await api('PUT', `/v1/pools/${pool!.id}/members/${ip!.id}`, { weight: 100 });
  const tenant = await api('POST', '/v1/tenants', { slug: 'bench', display_name: 'Bench' });
  const domain = await api('POST', `/v1/tenants/${tenant!.id}/domains`, { domain: 'bench.example' });
  await api('PATCH', `/v1/tenants/${tenant!.id}/domains/${domain!.id}`, { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' });
  await api('POST', `/v1/tenants/${tenant!.id}/placement/override`, { tier: 'standard', expires_at: new Date(Date.now() + 86_400_000).toISOString(), reason: 'bench' });
  await api('POST', `/v1/tenants/${tenant!.id}/submission-networks`, { network: '127.0.0.1/32', description: 'smtp-source' });
  await api('POST', `/v1/suppressions`, { pattern: 'suppressed@example.org', reason: 'manual' });
  const creds = await api('POST', `/v1/tenants/${tenant!.id}/smtp-credentials`, { username: 'bench-auth' });
  await ctx.db
    .insertInto('tenant_trust')
    .values({ tenant_id: tenant!.id, score: 88, basis: 'wilson_interval', locked: false, lock_kind: null, locked_at: null, lock_reason: null, rehab_target_sends: null, computed_at: new Date() })
    // a tenant with a good record: the bench measures the gate's work, not a refusal
    .onConflict((oc) => oc.column('tenant_id').doUpdateSet({ score: 88, locked: false, lock_kind: null, locked_at: null, lock_reason: null, rehab_target_sends: null }))
    .execute();

  // ---- the gateway, as it runs in production (its own process, info logs to a file) ----
  const tls = mkdtempSync(path.join(tmpdir(), 'kcp-bench-tls-'));
  execFileSync('bash', [path.join(root, 'scripts/self-signed-cert.sh'), tls, 'localhost'], { stdio: 'ignore' });
  const gwPort = await freePort();
  const logFile = path.join(tls, 'gateway.log');
  writeFileSync(logFile, '');
  // BENCH_GATEWAY_NODE_ARGS: e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the gateway
  const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const gateway = start(process.execPath, [...nodeArgs, path.join(root, 'dist/control-plane/src/bin/control-plane.js')], {
    env: { ...process.env, ...env, CP_ROLES: 'gateway', CP_LOG_LEVEL: process.env.BENCH_GATEWAY_LOG_LEVEL ?? 'info', CP_SMTP_SUBMISSION_PORT: String(gwPort), CP_SMTP_TLS_PORT: '-1', CP_SMTP_HOSTNAME: 'gateway.bench', CP_SMTP_TLS_CERT_FILE: path.join(tls, 'cert.pem'), CP_SMTP_TLS_KEY_FILE: path.join(tls, 'key.pem'), CP_SMTP_MAX_CONNECTIONS_PER_TENANT: '1000' },
    stdio: ['ignore', openSync(logFile, 'a'), 'inherit'],
  });
  children.push(gateway);
  await waitForPort(gwPort);

  const naivePort = await freePort();
  const naive = start(process.execPath, ['--import', 'tsx', path.join(root, 'bench/lib/naive-relay.ts'), String(naivePort), String(sinkPort)]);
  children.push(naive);
  await waitForPort(naivePort);

  const relayed = () => readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('"msg":"message relayed"')).length;

  // ---- throughput: smtp-source against each server, every load shape ----
  interface Shot { target: string; shape: string; messages: number; seconds: number; per_second: number; cpu_seconds_per_10k: number; accepted: number | null }
  const shots: Shot[] = [];
  const targets: { name: string; port: number; host?: string; pid: number | null }[] = [
    { name: 'smtp-sink (baseline)', port: sinkPort, pid: sink.pid! },
    { name: 'gateway', port: gwPort, pid: gateway.pid! },
    { name: 'naive relay', port: naivePort, pid: naive.pid! },
  ];
  if (typeof values.target === 'string') {
    const [host, port] = values.target.split(':');
    targets.push({ name: `other (${values.target})`, host: host!, port: Number(port), pid: null });
  }
  const shapes = [
    // smtp-source's -d means "don't disconnect": the session carries message after message
    { shape: 'persistent, 1 rcpt', flags: ['-r', '1', '-d'], messages: MESSAGES },
    { shape: 'persistent, 5 rcpt', flags: ['-r', '5', '-d'], messages: MESSAGES },
    { shape: 'connection per message, 1 rcpt', flags: ['-r', '1'], messages: CONN_MESSAGES },
    { shape: 'connection per message, 5 rcpt', flags: ['-r', '5'], messages: CONN_MESSAGES },
  ];
  // warm-up: both Node servers compile their hot paths and open their relay connections first
  for (const t of targets.filter((x) => x.name === 'gateway' || x.name === 'naive relay')) {
    const r = await run(smtpSource, ['-s', String(CONCURRENCY), '-m', '1000', '-l', '2048', '-f', SENDER, '-t', 'warmup@example.org', '-N', '-M', 'source.bench', '-d', `127.0.0.1:${t.port}`], { env: pfEnv });
    if (r.code !== 0) throw new Error(`warm-up against ${t.name} failed: ${r.stderr.slice(0, 300)}`);
  }
  const GATEWAY_ONLY = values['gateway-only'] === true;
  for (const s of GATEWAY_ONLY ? shapes.slice(0, 1) : shapes) {
    for (const t of GATEWAY_ONLY ? targets.filter((x) => x.name === 'gateway') : targets) {
      const cpu0 = t.pid ? cpuSeconds(t.pid) : 0;
      const before = t.name === 'gateway' ? relayed() : 0;
      const r = await run(smtpSource, ['-s', String(CONCURRENCY), '-m', String(s.messages), '-l', '2048', '-f', SENDER, '-t', 'reader@example.org', '-N', '-M', 'source.bench', ...s.flags, `${t.host ?? '127.0.0.1'}:${t.port}`], { env: pfEnv });
      if (r.code !== 0 || /error|fatal|warning/i.test(r.stderr)) throw new Error(`smtp-source against ${t.name} (${s.shape}) failed: ${r.stderr.slice(0, 500)}`);
      const cpu = t.pid ? cpuSeconds(t.pid) - cpu0 : NaN;
      // the gateway log names every message it relayed: the count proves none were refused
      // logs are written asynchronously: wait until the count settles
      let accepted: number | null = null;
      if (t.name === 'gateway') {
        for (let last = -1, i = 0; i < 30; i++) {
          await new Promise((res) => setTimeout(res, 100));
          accepted = relayed() - before;
          if (accepted === last) break;
          last = accepted;
        }
      }
      shots.push({ target: t.name, shape: s.shape, messages: s.messages, seconds: r.seconds, per_second: s.messages / r.seconds, cpu_seconds_per_10k: (cpu / s.messages) * 10_000, accepted });
    }
  }

  if (GATEWAY_ONLY) {
    const g = shots[0]!;
    process.stdout.write(`gateway only: ${g.per_second.toFixed(0)} msg/s, ${g.cpu_seconds_per_10k.toFixed(2)} CPU s/10k\n`);
    throw new GatewayOnlyDone();
  }

  // ---- latency added by the gateway at moderate load: 4 sessions, one transaction at a time each ----
  const latency = async (port: number, auth?: { user: string; pass: string }): Promise<number[]> => {
    const times: number[] = [];
    await Promise.all(
      [0, 1, 2, 3].map(async (k) => {
        const c = await BenchSmtpClient.open(port, auth);
        for (let i = 0; i < 1000; i++) {
          const t = await c.send(SENDER, [`lat${k}-${i}@example.org`], benchMessage(SENDER, 'reader@example.org'));
          if (i >= 20) times.push(t * 1000);
        }
        await c.quit();
      }),
    );
    return times.sort((a, b) => a - b);
  };
  const sinkLat = await latency(sinkPort);
  const gwLat = await latency(gwPort);

  // ---- the AUTH path (STARTTLS + AUTH PLAIN), persistent sessions, our own client ----
  const authMessages = Math.max(1000, Math.floor(MESSAGES / 2));
  const authCpu0 = cpuSeconds(gateway.pid!);
  const a0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, k) => {
      const c = await BenchSmtpClient.open(gwPort, { user: creds!.username, pass: creds!.password });
      for (let i = k; i < authMessages; i += CONCURRENCY) await c.send(SENDER, [`auth${i}@example.org`], benchMessage(SENDER, 'reader@example.org'));
      await c.quit();
    }),
  );
  const authSeconds = (performance.now() - a0) / 1000;
  const authCpu = cpuSeconds(gateway.pid!) - authCpu0;

  // ---- the gate decision alone (PostgreSQL lookups and the Redis budget read), in this process ----
  const facts = new SubmissionFacts(ctx.db, 5000, () => new Date());
  const tf = (await facts.tenant(tenant!.id))!;
  // as the gateway runs it (in-memory index) but with no budget cache: a Redis round trip every time
  const index = new RecipientIndex(ctx.db, ctx.log, 5000);
  // refreshed as the gateway refreshes it: an index older than its TTL answers nothing
  await index.start();
  const timeGate = async (gate: RecipientGate): Promise<number[]> => {
    const times: number[] = [];
    for (let i = 0; i < 5200; i++) {
      const t0 = performance.now();
      const d = await gate.decide(tf, i % 50 === 0 ? 'suppressed@example.org' : `gate${i}@example.org`);
      if (i >= 200) times.push(performance.now() - t0);
      if (i % 50 !== 0 && !d.accept) throw new Error(`the gate refused a clean recipient: ${JSON.stringify(d)}`);
      if (i % 50 === 0 && d.accept) throw new Error('the gate accepted a suppressed recipient');
    }
    return times.sort((a, b) => a - b);
  };
  const gateTimes = await timeGate(new RecipientGate(ctx, 0, index));
  await index.stop();
  // every lookup through PostgreSQL: what a suppression "maybe" or a cold index costs
  const gateDbTimes = await timeGate(new RecipientGate(ctx, 0, null));

  // ---- report ----
  const ratio = (shape: string, target: string) => {
    const base = shots.find((x) => x.shape === shape && x.target.startsWith('smtp-sink'))!;
    const x = shots.find((y) => y.shape === shape && y.target === target)!;
    return x.per_second / base.per_second;
  };
  const rows: [string, string][] = [];
  for (const s of shapes) {
    for (const x of shots.filter((y) => y.shape === s.shape)) {
      rows.push([`${s.shape} | ${x.target}`, `${x.per_second.toFixed(0)} msg/s  (${ratio(s.shape, x.target).toFixed(3)}x sink)  ${Number.isNaN(x.cpu_seconds_per_10k) ? '' : `${x.cpu_seconds_per_10k.toFixed(2)} CPU s/10k`}${x.accepted !== null ? `  accepted ${x.accepted}/${x.messages}` : ''}`]);
    }
  }
  const p = (xs: number[], q: number) => percentile(xs, q).toFixed(2);
  rows.push(['latency sink p50/p99 (ms)', `${p(sinkLat, 50)} / ${p(sinkLat, 99)}`]);
  rows.push(['latency gateway p50/p99 (ms)', `${p(gwLat, 50)} / ${p(gwLat, 99)}`]);
  rows.push(['latency added p50/p99 (ms)', `${(percentile(gwLat, 50) - percentile(sinkLat, 50)).toFixed(2)} / ${(percentile(gwLat, 99) - percentile(sinkLat, 99)).toFixed(2)}`]);
  rows.push(['AUTH path (STARTTLS+AUTH, persistent)', `${(authMessages / authSeconds).toFixed(0)} msg/s, ${((authCpu / authMessages) * 10_000).toFixed(2)} CPU s/10k`]);
  rows.push(['gate decision p50/p99 (ms), Redis read each', `${p(gateTimes, 50)} / ${p(gateTimes, 99)}`]);
  rows.push(['gate decision p50/p99 (ms), database path', `${p(gateDbTimes, 50)} / ${p(gateDbTimes, 99)}`]);

  const gwShots = shots.filter((x) => x.target === 'gateway');
  const checks: [string, boolean][] = [
    ['>= 0.2x sink, 1 rcpt, persistent', ratio('persistent, 1 rcpt', 'gateway') >= 0.2],
    ['>= 0.15x sink, connection per message', ratio('connection per message, 1 rcpt', 'gateway') >= 0.15 && ratio('connection per message, 5 rcpt', 'gateway') >= 0.15],
    ['never below the naive relay', shapes.every((s) => ratio(s.shape, 'gateway') >= ratio(s.shape, 'naive relay'))],
    ['<= 4 CPU s per 10,000 messages', gwShots.every((x) => x.cpu_seconds_per_10k <= 4)],
    ['every message accepted', gwShots.every((x) => x.accepted === x.messages)],
    ['p99 latency added < 5 ms', percentile(gwLat, 99) - percentile(sinkLat, 99) < 5],
    ['gate decision p99 < 1 ms', percentile(gateTimes, 99) < 1],
  ];
  for (const [name, ok] of checks) rows.push([`target: ${name}`, ok ? 'met' : 'MISSED']);
  printTable(`Submission (${CONCURRENCY} sessions, 2 KB messages)`, rows);
  await writeResult('submission', {
    benchmark: 'submission',
    parameters: { messages: MESSAGES, conn_messages: CONN_MESSAGES, concurrency: CONCURRENCY, message_bytes: 2048 },
    throughput: shots,
    latency_ms: { sink: { p50: percentile(sinkLat, 50), p99: percentile(sinkLat, 99) }, gateway: { p50: percentile(gwLat, 50), p99: percentile(gwLat, 99) } },
    auth_path: { messages: authMessages, per_second: authMessages / authSeconds, cpu_seconds_per_10k: (authCpu / authMessages) * 10_000 },
    gate_decision_ms: { p50: percentile(gateTimes, 50), p99: percentile(gateTimes, 99), samples: gateTimes.length },
    gate_decision_database_path_ms: { p50: percentile(gateDbTimes, 50), p99: percentile(gateDbTimes, 99), samples: gateDbTimes.length },
    targets: Object.fromEntries(checks),
  });
} catch (e) {
  if (!(e instanceof GatewayOnlyDone)) throw e;
} finally {
  for (const c of children) await stop(c);
  await ctx.close();
  await db.drop();
}
