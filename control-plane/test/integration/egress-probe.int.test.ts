/**
 * The node's own port-25 probe (mta-nodes/bin/kcp-egress-probe) run for real against a running control
 * plane over HTTP: the script reads node_settings.lua as cloud-init writes it, tries its targets (an
 * SMTP stand-in for a public MX, a port nothing listens on, a name that does not resolve), and posts
 * what it saw with the node's token. The control plane draws the verdict, moves the node and its
 * provider project, tells the gateways (a 'fleet' notification), and audits changes only.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATE_FACTS_CHANNEL } from '../../src/adapters/pg/change-feed.js';
import { renderNodeSettings } from '../../src/domain/provisioning/cloud-init.js';
import { projectRoot } from '../../src/project-root.js';
import { FakeHetzner } from '../support/fake-hetzner.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';
import { freePortForTest } from '../support/ports.js';
import { serveApi, type ServedApi } from '../support/serve-api.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';

const script = path.join(projectRoot(), 'mta-nodes/bin/kcp-egress-probe');
const fake = new FakeHetzner();
const dir = mkdtempSync(path.join(tmpdir(), 'kcp-probe-'));
let h: Harness;
let api: ServedApi;
let mx: SmtpSink;
let closedPort: number;
let node: { id: string; token: string };
let project: string;
let listener: pg.Client;
const heard: string[] = [];

interface Probe {
  status: number;
  stdout: string;
  stderr: string;
}

function probe(settingsFile: string, targets: string[]): Promise<Probe> {
  return new Promise((resolve) => {
    execFile('python3', [script, '--settings', settingsFile, '--timeout', '2', ...targets.flatMap((t) => ['--target', t])], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

function settingsFor(n: { id: string; token: string }, url = api.url): string {
  const file = path.join(dir, `node_settings-${n.id}-${Math.random().toString(36).slice(2)}.lua`);
  writeFileSync(file, renderNodeSettings({ control_plane_url: url, node_id: n.id, node_token: n.token, policy_public_key_hex: 'ab'.repeat(32) }), { mode: 0o600 });
  return file;
}

/** the 'fleet' notifications heard since the last call (a marker sent last shows all have arrived) */
async function fleetNews(): Promise<number> {
  await sql`SELECT pg_notify(${GATE_FACTS_CHANNEL}, 'marker')`.execute(h.ctx.db);
  for (let i = 0; i < 200 && !heard.includes('marker'); i++) await new Promise((r) => setTimeout(r, 10));
  const n = heard.filter((p) => p !== 'marker' && (JSON.parse(p) as { scope: string }).scope === 'fleet').length;
  heard.length = 0;
  return n;
}

const nodeView = async () => expectJson(await h.request('GET', `/v1/nodes/${node.id}`), 200);
const projectView = async () => expectJson(await h.request('GET', `/v1/provider-projects/${project}`), 200);
const probeAudits = async () => (await expectJson(await h.request('GET', `/v1/audit-log?target_id=${node.id}`), 200)).items.filter((e: { action: string }) => e.action === 'node.egress_probe');

beforeAll(async () => {
  await fake.start();
  const port = await freePortForTest();
  h = await startHarness({ CP_HETZNER_API_URL: fake.url, CP_NODE_CONTROL_PLANE_URL: `http://127.0.0.1:${port}`, CP_NODE_LOCATIONS: 'fsn1' });
  api = await serveApi(h.app, port);
  mx = await startSmtpSink();
  closedPort = await freePortForTest();
  project = (await expectJson(await h.request('POST', '/v1/provider-projects', { body: { name: 'probed', token: fake.token, port25_egress: 'requested' } }), 201)).id;
  const r = await expectJson(await h.request('POST', '/v1/nodes/provision', { body: { project_id: project, name: 'probe-1' } }), 201);
  node = { id: r.node.id, token: r.token };
  listener = new pg.Client({ connectionString: h.db.url });
  await listener.connect();
  listener.on('notification', (m) => heard.push(m.payload ?? ''));
  await listener.query(`LISTEN ${GATE_FACTS_CHANNEL}`);
}, 60_000);

afterAll(async () => {
  await listener?.end();
  await mx?.close();
  await api?.close();
  await h?.close();
  await fake.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('kcp-egress-probe', () => {
  it('passes its own self-test', async () => {
    const r = await new Promise<Probe>((resolve) => execFile('python3', [script, '--self-test'], (err, stdout, stderr) => resolve({ status: err ? 1 : 0, stdout, stderr })));
    expect(r, r.stderr).toMatchObject({ status: 0, stdout: 'kcp-egress-probe self-test: ok\n' });
  });

  it('reports a port nothing answers on as blocked: the node stays out of mail, the project as it was', async () => {
    await fleetNews();
    const r = await probe(settingsFor(node), [`127.0.0.1:${closedPort}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`refused 127.0.0.1:${closedPort} [127.0.0.1]`);
    expect(r.stdout).toContain('verdict blocked; project egress requested');
    expect((await nodeView()).port25_probe).toMatchObject({ connected: false, detail: expect.stringMatching(new RegExp(`^refused 127\\.0\\.0\\.1:${closedPort} \\[127\\.0\\.0\\.1\\]`)) });
    expect((await projectView()).port25_egress).toBe('requested');
    expect(await fleetNews()).toBe(1);
    expect(r.stdout + r.stderr + h.logText()).not.toContain(node.token);
  });

  it('reports an MX that greets as connected: the project opens, the gateways hear of it, the change is audited', async () => {
    const before = (await probeAudits()).length;
    const r = await probe(settingsFor(node), [`127.0.0.1:${closedPort}`, `127.0.0.1:${mx.port}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('verdict connected; project egress open');
    const probed = (await nodeView()).port25_probe;
    expect(probed).toMatchObject({ connected: true });
    expect(probed.detail).toContain(`greeted 127.0.0.1:${mx.port} [127.0.0.1] 220 `);
    expect(probed.detail).toContain(`refused 127.0.0.1:${closedPort}`);
    expect((await projectView()).port25_egress).toBe('open');
    // the node's probe flipped and the project opened, in one transaction: PostgreSQL folds the two
    // identical notifications into one, which is all a gateway needs to re-read the fleet
    expect(await fleetNews()).toBe(1);
    const audits = await probeAudits();
    expect(audits.length).toBe(before + 1);
    expect(audits[0]).toMatchObject({ actor_type: 'node', actor_id: node.id, details: { connected: true, before: false, project_before: 'requested', project_after: 'open' } });
  });

  it('audits and announces only changes: the same verdict again is recorded on the node, nowhere else', async () => {
    const before = await nodeView();
    const audits = (await probeAudits()).length;
    const r = await probe(settingsFor(node), [`127.0.0.1:${mx.port}`]);
    expect(r.stdout).toContain('verdict connected');
    const after = await nodeView();
    expect(Date.parse(after.port25_probe.at)).toBeGreaterThan(Date.parse(before.port25_probe.at));
    expect((await probeAudits()).length).toBe(audits);
    expect(await fleetNews()).toBe(0);
  });

  it('reads a probe where nothing got as far as connecting as inconclusive: it changes nothing but the detail', async () => {
    const before = await nodeView();
    const r = await probe(settingsFor(node), ['no-such-mx.invalid:25']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('no_address no-such-mx.invalid:25');
    expect(r.stdout).toContain('verdict inconclusive; project egress open');
    const after = await nodeView();
    expect(after.port25_probe).toMatchObject({ connected: true, at: before.port25_probe.at, detail: expect.stringMatching(/^no_address no-such-mx\.invalid:25/) });
    expect((await projectView()).port25_egress).toBe('open');
  });

  it('a failed probe on an open project stops that node only', async () => {
    const r = await probe(settingsFor(node), [`127.0.0.1:${closedPort}`]);
    expect(r.stdout).toContain('verdict blocked; project egress open');
    expect((await nodeView()).port25_probe).toMatchObject({ connected: false });
    expect(await fleetNews()).toBe(1);
  });

  it('tells the gateways when a bought IP\'s reverse DNS is verified or lost, not when it is re-checked', async () => {
    const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: '192.0.2.70', node_id: node.id, rdns_name: 'mx70.example.net' } }), 201);
    await fleetNews();
    const verify = (at: Date | null) => h.ctx.db.updateTable('ip_addresses').set({ rdns_verified_at: at }).where('id', '=', ip.id).execute();
    await verify(new Date());
    expect(await fleetNews()).toBe(1);
    await verify(new Date(Date.now() + 1000));
    expect(await fleetNews()).toBe(0);
    await verify(null);
    expect(await fleetNews()).toBe(1);
    // and the project's egress, whoever moves it
    await expectJson(await h.request('POST', `/v1/provider-projects/${project}/egress`, { body: { event: 'limit_denied' } }), 200);
    expect(await fleetNews()).toBe(1);
    await expectJson(await h.request('POST', `/v1/provider-projects/${project}/egress`, { body: { event: 'limit_denied', note: 'again' } }), 200);
    expect(await fleetNews()).toBe(0);
    await expectJson(await h.request('POST', `/v1/provider-projects/${project}/egress`, { body: { event: 'limit_granted' } }), 200);
    expect(await fleetNews()).toBe(1);
  });

  it('records a hand-registered node\'s probe on the node alone', async () => {
    const byHand = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'by-hand', region: 'fsn1', public_address: '192.0.2.60' } }), 201);
    const r = await probe(settingsFor({ id: byHand.id, token: byHand.token }), [`127.0.0.1:${mx.port}`]);
    expect(r.stdout).toContain('verdict connected; project egress None');
    expect((await expectJson(await h.request('GET', `/v1/nodes/${byHand.id}`), 200)).port25_probe).toMatchObject({ connected: true });
  });

  it('fails loudly, and never with the token in sight, when the control plane will not take it', async () => {
    const other = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'other', region: 'fsn1', public_address: '192.0.2.61' } }), 201);
    // another node's token for this node's probe
    const forbidden = await probe(settingsFor({ id: node.id, token: other.token }), [`127.0.0.1:${mx.port}`]);
    expect(forbidden.status).toBe(1);
    expect(forbidden.stderr).toMatch(/answered 403: .*FORBIDDEN/);
    const unknown = await probe(settingsFor({ id: node.id, token: `node_${'x'.repeat(40)}` }), [`127.0.0.1:${mx.port}`]);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('answered 401');
    const down = await probe(settingsFor(node, `http://127.0.0.1:${closedPort}`), [`127.0.0.1:${mx.port}`]);
    expect(down.status).toBe(1);
    expect(down.stderr).toContain('the control plane could not be told');
    for (const r of [forbidden, unknown, down]) expect(r.stdout + r.stderr).not.toMatch(/node_[0-9A-Za-z]{40}/);
    const missing = path.join(dir, 'empty.lua');
    writeFileSync(missing, 'return {}\n');
    const bad = await probe(missing, [`127.0.0.1:${mx.port}`]);
    expect(bad).toMatchObject({ status: 2, stderr: expect.stringContaining('sets no control_plane_url, node_id, node_token') });
  });

  it('takes a node\'s probes and an operator\'s events at the same moment without a deadlock', async () => {
    const nodeProbe = (outcome: string) => h.request('POST', `/v1/nodes/${node.id}/egress-probe`, { token: node.token, body: { attempts: [{ host: 'mx.example', port: 25, outcome }] } });
    const operator = (connected: boolean) => h.request('POST', `/v1/provider-projects/${project}/egress`, { body: { event: 'probe', node_id: node.id, connected } });
    const all = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? nodeProbe(i % 4 === 1 ? 'greeted' : 'refused') : operator(i % 4 === 0))));
    expect(all.map((r) => r.status)).toEqual(all.map(() => 200));
  });

  it('takes a handshake without an SMTP reply as no evidence', async () => {
    // a middlebox: completes the handshake, says nothing, closes
    const silent = net.createServer((sock) => sock.end());
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const r = await probe(settingsFor(node), [`127.0.0.1:${(silent.address() as net.AddressInfo).port}`]);
      expect(r.stdout).toMatch(/^connected 127\.0\.0\.1:\d+ \[127\.0\.0\.1\] closed without a greeting$/m);
      expect(r.stdout).toContain('verdict inconclusive');
    } finally {
      silent.close();
    }
  });

  it('sends the token to control_plane_url only: no redirect is followed, no plain http off loopback', async () => {
    const elsewhere: string[] = [];
    const thief = http.createServer((req, res) => {
      elsewhere.push(req.headers.authorization ?? '(none)');
      res.end('{}');
    });
    await new Promise<void>((r) => thief.listen(0, '127.0.0.1', r));
    const redirector = http.createServer((_req, res) => res.writeHead(307, { location: `http://127.0.0.1:${(thief.address() as net.AddressInfo).port}/steal` }).end());
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
    try {
      const r = await probe(settingsFor(node, `http://127.0.0.1:${(redirector.address() as net.AddressInfo).port}`), [`127.0.0.1:${mx.port}`]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/answered 307/);
      expect(elsewhere).toEqual([]);
    } finally {
      thief.close();
      redirector.close();
    }
    const offLoopback = await probe(settingsFor(node, 'http://192.0.2.1:8080'), [`127.0.0.1:${mx.port}`]);
    expect(offLoopback).toMatchObject({ status: 2, stderr: expect.stringContaining('plain http to a host that is not loopback') });
  });

  it('refuses a malformed report with a problem naming the field', async () => {
    const steering = await h.request('POST', `/v1/nodes/${node.id}/egress-probe`, { token: node.token, body: { attempts: [{ host: 'mx.example', port: 25, outcome: 'greeted', detail: '220 \u001b[2J fake' }] } });
    expect(steering.status).toBe(400);
    expect(JSON.stringify(await steering.json())).toContain('printable characters only');
    const res = await h.request('POST', `/v1/nodes/${node.id}/egress-probe`, { token: node.token, body: { attempts: [{ host: 'mx.example', port: 25, outcome: 'maybe' }] } });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain('attempts');
    expect((await h.request('POST', `/v1/nodes/${node.id}/egress-probe`, { token: node.token, body: { attempts: [] } })).status).toBe(400);
    // operators record by hand through the project's egress route, not this one
    expect((await h.request('POST', `/v1/nodes/${node.id}/egress-probe`, { body: { attempts: [{ host: 'mx.example', port: 25, outcome: 'greeted' }] } })).status).toBe(401);
  });
});
