/**
 * /metrics, the alert rules and the dashboard agree: promtool checks the rules and runs their unit
 * tests; every metric the rules and the dashboard name is in a real /metrics after the control plane
 * and the gateway have done some work; and the counters moved with that work.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSubmissionGateway, type SubmissionGateway } from '../../src/gateway/submission-gateway.js';
import { probeDependencies } from '../../src/app/observability/dependency-probe.js';
import { expectJson, startHarness, testConfig, type Harness } from '../support/harness.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { kumoRecord } from '../support/kumo-records.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../../..');
const rulesDir = path.join(root, 'control-plane/observability/prometheus');
const dashboardFile = path.join(root, 'control-plane/observability/grafana/kcp-dashboard.json');

let h: Harness;
let gw: SubmissionGateway;
let sink: SmtpSink;
let metricsText = '';

/** Metric names in a PromQL text, histogram series reduced to their family. */
function referencedMetrics(text: string): Set<string> {
  return new Set([...text.matchAll(/\bkcp_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, '')));
}

beforeAll(async () => {
  sink = await startSmtpSink();
  h = await startHarness();
  const tls = mkdtempSync(path.join(tmpdir(), 'kcp-tls-'));
  await run('bash', [path.join(root, 'scripts/self-signed-cert.sh'), tls, 'localhost']);
  const pool = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'standard-1', tier: 'standard' } }), 201);
  const node = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'node-a', region: 'fsn1', public_address: '198.51.100.10', relay_host: '127.0.0.1', relay_port: sink.port } }), 201);
  const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: '203.0.113.10', node_id: node.id, rdns_name: 'mta.example.net', state: 'active' } }), 201);
  await expectJson(await h.request('PUT', `/v1/pools/${pool.id}/members/${ip.id}`, { body: { weight: 100 } }), 200);
  const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'acme', display_name: 'Acme' } }), 201);
  const d = await expectJson(await h.request('POST', `/v1/tenants/${t.id}/domains`, { body: { domain: 'acme.example' } }), 201);
  await expectJson(await h.request('PATCH', `/v1/tenants/${t.id}/domains/${d.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
  await expectJson(await h.request('POST', `/v1/tenants/${t.id}/placement/override`, { body: { tier: 'standard', expires_at: '2099-01-01T00:00:00Z', reason: 'test' } }), 200);
  await h.ctx.db.updateTable('tenant_trust').set({ score: 90, locked: false, lock_kind: null, locked_at: null, lock_reason: null }).where('tenant_id', '=', t.id).execute();
  const creds = await expectJson(await h.request('POST', `/v1/tenants/${t.id}/smtp-credentials`, { body: {} }), 201);

  // some work for every part: a publish and a pull, events, a message, a refused login, a probe
  await expectJson(await h.request('POST', '/v1/policy/publish', { body: { node_ids: [node.id] } }), 200);
  expect((await h.request('GET', `/v1/nodes/${node.id}/policy`, { token: node.token })).status).toBe(200);
  gw = await startSubmissionGateway(h.ctx, testConfig({ DATABASE_URL: h.db.url, REDIS_URL: h.ctx.config.redisUrl, CP_ROLES: 'gateway', CP_SMTP_TLS_CERT_FILE: `${tls}/cert.pem`, CP_SMTP_TLS_KEY_FILE: `${tls}/key.pem`, CP_SMTP_SUBMISSION_PORT: '0', CP_SMTP_TLS_PORT: '-1' }).gateway);
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.submissionPort, requireTLS: true, tls: { rejectUnauthorized: false }, auth: { user: creds.username, pass: creds.password } });
  await transport.sendMail({ from: 'a@acme.example', to: 'b@example.org', subject: 's', text: 't' });
  await expect(nodemailer.createTransport({ host: '127.0.0.1', port: gw.submissionPort, requireTLS: true, tls: { rejectUnauthorized: false }, auth: { user: creds.username, pass: 'nope' } }).sendMail({ from: 'a@acme.example', to: 'b@example.org', text: 't' })).rejects.toMatchObject({ responseCode: 535 });
  // events last: their 10% bounces lock the tenant
  const records = Array.from({ length: 120 }, (_, i) => kumoRecord(i % 10 === 0 ? 'Bounce' : 'Delivery', { tenant: t.id }));
  await expectJson(await h.request('POST', '/v1/events/kumo', { token: node.token, body: records }), 200);
  await probeDependencies(h.ctx);
  const res = await h.request('GET', '/metrics', { token: null });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  metricsText = await res.text();
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await h?.close();
  await sink?.close();
});

const sample = (name: string, labels: Record<string, string> = {}): number | null => {
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return null;
};

describe('observability', () => {
  it('promtool accepts the rules, and their unit tests pass', () => {
    const promtool = execFileSync('bash', [path.join(root, 'scripts/ensure-promtool.sh')], { encoding: 'utf8' }).trim();
    expect(execFileSync(promtool, ['check', 'rules', path.join(rulesDir, 'kcp-alerts.yml')], { encoding: 'utf8' })).toContain('SUCCESS: 11 rules found');
    expect(execFileSync(promtool, ['test', 'rules', 'kcp-alerts.test.yml'], { cwd: rulesDir, encoding: 'utf8' })).toContain('SUCCESS');
  });

  it('every metric the rules and the dashboard name is exported', () => {
    const exported = new Set([...metricsText.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as { panels: { targets: { expr: string }[] }[] };
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(15);
    const names = new Set([...referencedMetrics(readFileSync(path.join(rulesDir, 'kcp-alerts.yml'), 'utf8')), ...referencedMetrics(dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n'))]);
    expect(names.size).toBeGreaterThan(15);
    const missing = [...names].filter((n) => !exported.has(n));
    expect(missing).toEqual([]);
  });

  it('follows Prometheus naming: counters end in _total, units in the names', () => {
    for (const m of metricsText.matchAll(/^# TYPE (kcp_\S+) (counter|gauge|histogram)$/gm)) {
      if (m[2] === 'counter') expect(m[1]).toMatch(/_total$/);
      if (m[2] === 'histogram') expect(m[1]).toMatch(/_seconds$/);
    }
  });

  it('the counters moved with the work done', () => {
    expect(sample('kcp_smtp_transactions_total', { outcome: 'accepted' })).toBe(1);
    expect(sample('kcp_gate_decisions_total', { reason: 'accepted_external' })).toBe(1);
    expect(sample('kcp_smtp_auth_total', { outcome: 'invalid' })).toBe(1);
    expect(sample('kcp_events_ingested_total', { source: 'kumo', result: 'accepted' })).toBe(120);
    expect(sample('kcp_policy_publishes_total', { result: 'changed' })).toBe(1);
    expect(sample('kcp_node_policy_latest_version', { node: 'node-a' })).toBe(1);
    expect(sample('kcp_node_last_seen_timestamp_seconds', { node: 'node-a' })).toBeGreaterThan(Date.now() / 1000 - 600);
    expect(sample('kcp_dependency_up', { dependency: 'postgresql' })).toBe(1);
    expect(sample('kcp_dependency_up', { dependency: 'redis' })).toBe(1);
    expect(sample('kcp_relay_node_up', { node: 'node-a' })).toBe(1);
    expect(sample('kcp_http_requests_total', { route: '/v1/tenants', method: 'POST', status: '201' })).toBe(1);
    expect(sample('kcp_db_query_duration_seconds_count')).toBeGreaterThan(10);
    expect(sample('kcp_tenant_bounce_rate_ratio')).toBeCloseTo(0.1, 2);
    expect(sample('kcp_tenant_bounce_threshold_ratio')).toBe(0.01);
    expect(sample('kcp_event_ingest_lag_seconds')).not.toBeNull();
  });

  it('asks for a token when one is configured', async () => {
    const secured = await startHarness({ CP_METRICS_TOKEN: 'metrics-secret-token-123' });
    try {
      expect((await secured.request('GET', '/metrics', { token: null })).status).toBe(401);
      expect((await secured.request('GET', '/metrics', { token: 'metrics-secret-token-123' })).status).toBe(200);
    } finally {
      await secured.close();
    }
  });
});
