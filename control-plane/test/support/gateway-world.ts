/**
 * A small world for gateway tests: the harness, two SMTP sinks standing in for kumod nodes (a standard
 * and a rehabilitation IP on each), one tenant (`acme`, acme.example verified, placed in the standard
 * tier, scored and unlocked) with an SMTP credential, a self-signed certificate, and the environment a
 * gateway needs. Each test file starts its own gateways from `env`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { expectJson, startHarness, type Harness } from './harness.js';
import { startSmtpSink, type SmtpSink } from './smtp-sink.js';
import { SmtpDialogue } from './smtp-dialogue.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../../..');

export interface GatewayWorld {
  h: Harness;
  sinks: [SmtpSink, SmtpSink];
  tenant: string;
  domainId: string;
  creds: { username: string; password: string };
  /** environment for testConfig(...).gateway: TTL 0, budget cache 0, both ports free */
  env: Record<string, string>;
  messages(): import('./smtp-sink.js').SinkMessage[];
  close(): Promise<void>;
}

export async function startGatewayWorld(): Promise<GatewayWorld> {
  const sinks: [SmtpSink, SmtpSink] = [await startSmtpSink(), await startSmtpSink()];
  const h = await startHarness();
  const tls = mkdtempSync(path.join(tmpdir(), 'kcp-tls-'));
  await run('bash', [path.join(root, 'scripts/self-signed-cert.sh'), tls, 'localhost']);
  const pool = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'standard-1', tier: 'standard' } }), 201);
  const rehab = await expectJson(await h.request('POST', '/v1/pools', { body: { name: 'rehab-1', tier: 'rehabilitation' } }), 201);
  let octet = 10;
  for (const [i, sink] of sinks.entries()) {
    const n = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: `node-${i}`, region: 'fsn1', public_address: `198.51.100.${octet}`, relay_host: '127.0.0.1', relay_port: sink.port } }), 201);
    for (const p of [pool.id, rehab.id]) {
      const ip = await expectJson(await h.request('POST', '/v1/ips', { body: { address: `203.0.113.${octet++}`, node_id: n.id, rdns_name: `mta${octet}.example.net`, state: 'active' } }), 201);
      await expectJson(await h.request('PUT', `/v1/pools/${p}/members/${ip.id}`, { body: { weight: 100 } }), 200);
    }
  }
  const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'acme', display_name: 'Acme' } }), 201);
  const d = await expectJson(await h.request('POST', `/v1/tenants/${t.id}/domains`, { body: { domain: 'acme.example' } }), 201);
  await expectJson(await h.request('PATCH', `/v1/tenants/${t.id}/domains/${d.id}`, { body: { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' } }), 200);
  await expectJson(await h.request('POST', `/v1/tenants/${t.id}/placement/override`, { body: { tier: 'standard', expires_at: new Date(Date.now() + 86_400_000).toISOString(), reason: 'test' } }), 200);
  await h.ctx.db
    .insertInto('tenant_trust')
    .values({ tenant_id: t.id, score: 86.5, basis: 'wilson_interval', locked: false, computed_at: new Date() })
    .onConflict((oc) => oc.column('tenant_id').doUpdateSet({ score: 86.5, locked: false, lock_kind: null, locked_at: null }))
    .execute();
  const creds = await expectJson<{ username: string; password: string }>(await h.request('POST', `/v1/tenants/${t.id}/smtp-credentials`, { body: { username: 'acme-app' } }), 201);
  const env = {
    DATABASE_URL: h.db.url, REDIS_URL: h.ctx.config.redisUrl, CP_ROLES: 'gateway',
    CP_SMTP_TLS_CERT_FILE: path.join(tls, 'cert.pem'), CP_SMTP_TLS_KEY_FILE: path.join(tls, 'key.pem'),
    CP_SMTP_SUBMISSION_PORT: '0', CP_SMTP_TLS_PORT: '-1', CP_SMTP_HOSTNAME: 'gateway.test',
    CP_SMTP_FACTS_TTL_MS: '0', CP_SMTP_BUDGET_CACHE_MS: '0', CP_RELAY_NODE_DOWN_MS: '60000', CP_RELAY_CONNECT_TIMEOUT_MS: '1000',
  };
  return {
    h,
    sinks,
    tenant: t.id,
    domainId: d.id,
    creds,
    env,
    messages: () => [...sinks[0].messages, ...sinks[1].messages],
    async close() {
      await h.close();
      for (const s of sinks) await s.close();
    },
  };
}

/** EHLO, STARTTLS, EHLO and AUTH PLAIN with `creds`; the reply to AUTH must be 235. */
export async function authedDialogue(port: number, creds: { username: string; password: string }, opts: { localAddress?: string } = {}): Promise<SmtpDialogue> {
  const { d } = await SmtpDialogue.open(port, opts);
  await d.send('EHLO client.example');
  await d.starttls();
  await d.send('EHLO client.example');
  expect(await d.send(`AUTH PLAIN ${Buffer.from(`\0${creds.username}\0${creds.password}`).toString('base64')}`)).toMatch(/^235/);
  return d;
}

export const authPlain = (username: string, password: string): string => `AUTH PLAIN ${Buffer.from(`\0${username}\0${password}`).toString('base64')}`;
