/**
 * An API that can face the internet (issue 14), over real sockets:
 *   - HTTPS with the certificate scripts/api-tls-cert.sh makes (a local CA and a server certificate);
 *   - a changed certificate is served to the next connection without a restart, and a pair that does
 *     not load is logged and the previous one kept;
 *   - node mutual TLS: with CP_HTTP_NODE_CLIENT_CERT `bound` a node request without a client
 *     certificate, with one from another CA, or with one naming another node is refused, the right
 *     one is accepted; operators still need none; `required` takes any certificate the client CA signed;
 *   - failed token authentications per client address: 429 with Retry-After past the limit (the right
 *     token included), another address unaffected, back after the window; good requests count nothing;
 *   - Redis unreadable: 503 DEPENDENCY_UNAVAILABLE, never an unmetered yes.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContext, type AppContext } from '../../src/context.js';
import { createLogger } from '../../src/adapters/logger.js';
import { apiAuthFailureKey } from '../../src/adapters/redis/keys.js';
import { newApp } from '../../src/http/app.js';
import { startApiServer, type ApiServer } from '../../src/http/server.js';
import { projectRoot } from '../../src/project-root.js';
import { eventually } from '../support/eventually.js';
import { expectJson, startHarness, testConfig, type Harness } from '../support/harness.js';
import { issue, makeCa, type Pem } from '../support/test-pki.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: () => Record<string, any>;
  /** SHA-256 fingerprint of the certificate the server presented */
  serverCert: string;
}

/** One request on a connection of its own (so every request sees the server's current certificate). */
function call(
  port: number,
  p: string,
  opts: { token?: string; ca?: string; client?: Pem; from?: string; method?: string; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path: p,
        method: opts.method ?? 'GET',
        headers,
        agent: false,
        ca: opts.ca ? readFileSync(opts.ca) : undefined,
        ...(opts.client ? { cert: readFileSync(opts.client.cert), key: readFileSync(opts.client.key) } : {}),
        ...(opts.from ? { localAddress: opts.from } : {}),
      },
      (res) => {
        const serverCert = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body), serverCert }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

const fingerprint = (file: string): string => new X509Certificate(readFileSync(file)).fingerprint256;

let dir: string;
let serverCa: string;
let clientCa: Pem;
let rogueCa: Pem;
let edge1: Pem;
let edge2: Pem;
let rogueEdge1: Pem;
/** the files the API is configured with; tests replace their contents */
let live: { cert: string; key: string };

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'kcp-api-tls-'));
  // the server certificate the way scripts/run.sh makes one: a local CA and a leaf it signed
  execFileSync('bash', [path.join(projectRoot(), 'scripts/api-tls-cert.sh'), path.join(dir, 'server'), 'localhost'], { stdio: 'ignore' });
  serverCa = path.join(dir, 'server', 'ca.pem');
  live = { cert: path.join(dir, 'live-cert.pem'), key: path.join(dir, 'live-key.pem') };
  copyFileSync(path.join(dir, 'server', 'cert.pem'), live.cert);
  copyFileSync(path.join(dir, 'server', 'key.pem'), live.key);
  clientCa = makeCa(dir, 'node client CA');
  rogueCa = makeCa(dir, 'somebody else');
  edge1 = issue(dir, clientCa, { cn: 'edge-1', usage: 'client' });
  // bound by a DNS name of the SAN rather than the CN
  edge2 = issue(dir, clientCa, { cn: 'kumod node', san: ['DNS:edge-2'], usage: 'client' });
  rogueEdge1 = issue(dir, rogueCa, { cn: 'edge-1', usage: 'client' });
});

describe('HTTPS with certificate reload', () => {
  let h: Harness;
  let api: ApiServer;
  beforeAll(async () => {
    h = await startHarness({ CP_HTTP_TLS_CERT_FILE: live.cert, CP_HTTP_TLS_KEY_FILE: live.key, CP_HTTP_TLS_RELOAD_INTERVAL_MS: '100' });
    api = await startApiServer(h.ctx, h.app, { host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await api?.close();
    await h?.close();
  });

  it('serves HTTPS with the configured certificate, which a client verifies against the local CA', async () => {
    expect(api.scheme).toBe('https');
    const r = await call(api.port, '/v1/me', { token: h.adminToken, ca: serverCa });
    expect(r.status).toBe(200);
    expect(r.serverCert).toBe(fingerprint(live.cert));
    // a client that does not trust the CA refuses the connection
    await expect(call(api.port, '/health')).rejects.toThrow(/certificate/i);
    // and the port speaks no plain HTTP
    const plain = await new Promise<string>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: api.port, path: '/health', agent: false }, (res) => resolve(`HTTP ${res.statusCode}`));
      req.on('error', (e) => resolve(`refused: ${e.message}`));
      req.end();
    });
    expect(plain).not.toBe('HTTP 200');
  });

  it('a changed certificate reaches the next connection without a restart; a pair that does not load is logged and the old one kept', async () => {
    const before = fingerprint(live.cert);
    const next = issue(dir, { cert: serverCa, key: path.join(dir, 'server', 'ca-key.pem') }, { cn: 'localhost', san: ['DNS:localhost', 'IP:127.0.0.1'], usage: 'server' });
    // replaced the way deployments do it: written beside, renamed over (key first, then certificate)
    copyFileSync(next.key, `${live.key}.new`);
    renameSync(`${live.key}.new`, live.key);
    copyFileSync(next.cert, `${live.cert}.new`);
    renameSync(`${live.cert}.new`, live.cert);
    const seen = await eventually('a new connection gets the new certificate', async () => {
      const r = await call(api.port, '/health', { ca: serverCa });
      return r.serverCert === fingerprint(next.cert) ? r : undefined;
    }, 10_000);
    expect(seen.status).toBe(200);
    expect(seen.serverCert).not.toBe(before);
    expect(h.logText()).toContain('API TLS certificate reloaded');

    // a certificate whose key is not the one beside it: refused, the previous pair keeps serving
    const third = issue(dir, { cert: serverCa, key: path.join(dir, 'server', 'ca-key.pem') }, { cn: 'localhost', san: ['IP:127.0.0.1'], usage: 'server' });
    copyFileSync(third.cert, `${live.cert}.new`);
    renameSync(`${live.cert}.new`, live.cert);
    await eventually('the bad pair is reported', async () => (h.logText().includes('do not load: kept the previous certificate') ? true : undefined), 10_000);
    expect((await call(api.port, '/health', { ca: serverCa })).serverCert).toBe(fingerprint(next.cert));
    // garbage in the key file: the same
    writeFileSync(live.key, 'not a key\n');
    await api.checkTls();
    expect((await call(api.port, '/health', { ca: serverCa })).serverCert).toBe(fingerprint(next.cert));
    // the matching key arrives: now the third certificate is served
    copyFileSync(third.key, live.key);
    await eventually('the completed pair is served', async () => ((await call(api.port, '/health', { ca: serverCa })).serverCert === fingerprint(third.cert) ? true : undefined), 10_000);
  });
});

describe('node mutual TLS', () => {
  let h: Harness;
  let api: ApiServer;
  let nodes: Record<string, { id: string; token: string }> = {};
  const registerNode = async (name: string) => {
    const n = await expectJson(await h.request('POST', '/v1/nodes', { body: { name, region: 'fsn1', public_address: `203.0.113.${Object.keys(nodes).length + 20}` } }), 201);
    nodes[name] = { id: n.id, token: n.token };
  };
  beforeAll(async () => {
    h = await startHarness({
      CP_HTTP_TLS_CERT_FILE: path.join(dir, 'server', 'cert.pem'),
      CP_HTTP_TLS_KEY_FILE: path.join(dir, 'server', 'key.pem'),
      CP_HTTP_TLS_CLIENT_CA_FILE: clientCa.cert,
      CP_HTTP_NODE_CLIENT_CERT: 'bound',
    });
    api = await startApiServer(h.ctx, h.app, { host: '127.0.0.1', port: 0 });
    nodes = {};
    await registerNode('edge-1');
    await registerNode('edge-2');
  });
  afterAll(async () => {
    await api?.close();
    await h?.close();
  });

  const keys = (name: string, client?: Pem) => call(api.port, `/v1/nodes/${nodes[name]!.id}/dkim-keys`, { token: nodes[name]!.token, ca: serverCa, ...(client ? { client } : {}) });

  it('refuses a node request without a client certificate, even with its token', async () => {
    const r = await keys('edge-1');
    expect(r.status).toBe(401);
    expect(r.headers['content-type']).toContain('application/problem+json');
    expect(r.json()).toMatchObject({ code: 'UNAUTHENTICATED', context: { client_certificate: 'none' } });
    expect(r.json().detail).toMatch(/client certificate/);
  });

  it('refuses a client certificate from a CA it does not trust', async () => {
    const r = await keys('edge-1', rogueEdge1);
    expect(r.status).toBe(401);
    expect(r.json()).toMatchObject({ code: 'UNAUTHENTICATED', context: { client_certificate: 'unverified' } });
    // nor does the log hook get in with it
    const post = await call(api.port, '/v1/events/kumo', { method: 'POST', body: '[]', token: nodes['edge-1']!.token, ca: serverCa, client: rogueEdge1 });
    expect(post.status).toBe(401);
  });

  it("refuses the right CA's certificate for another node (bound to the node's name)", async () => {
    const r = await keys('edge-1', edge2);
    expect(r.status).toBe(403);
    expect(r.json()).toMatchObject({ code: 'FORBIDDEN', context: { certificate_names: ['kumod node', 'edge-2'] } });
  });

  it('accepts the node with its own certificate (CN or SAN) and its token', async () => {
    const r = await keys('edge-1', edge1);
    expect(r.status, r.body).toBe(200);
    expect(r.json()).toEqual({ keys: [] });
    expect((await keys('edge-2', edge2)).status).toBe(200);
    const post = await call(api.port, '/v1/events/kumo', { method: 'POST', body: '[]', token: nodes['edge-1']!.token, ca: serverCa, client: edge1 });
    expect(post.status, post.body).toBe(200);
    // the certificate alone is not enough: the token is still checked
    expect((await call(api.port, `/v1/nodes/${nodes['edge-1']!.id}/dkim-keys`, { token: `node_${'x'.repeat(40)}`, ca: serverCa, client: edge1 })).status).toBe(401);
  });

  it('operators need no client certificate on the same listener', async () => {
    expect((await call(api.port, '/v1/me', { token: h.adminToken, ca: serverCa })).status).toBe(200);
  });

  it('`required`: any certificate the client CA signed, besides the token', async () => {
    const ctx = await createContext(
      testConfig({
        DATABASE_URL: h.db.url,
        REDIS_URL: h.ctx.config.redisUrl,
        CP_HTTP_TLS_CERT_FILE: path.join(dir, 'server', 'cert.pem'),
        CP_HTTP_TLS_KEY_FILE: path.join(dir, 'server', 'key.pem'),
        CP_HTTP_TLS_CLIENT_CA_FILE: clientCa.cert,
        CP_HTTP_NODE_CLIENT_CERT: 'required',
      }),
      { log: createLogger('silent') },
    );
    const other = await startApiServer(ctx, newApp(ctx), { host: '127.0.0.1', port: 0 });
    try {
      const at = (client?: Pem) => call(other.port, `/v1/nodes/${nodes['edge-1']!.id}/dkim-keys`, { token: nodes['edge-1']!.token, ca: serverCa, ...(client ? { client } : {}) });
      expect((await at()).status).toBe(401);
      expect((await at(rogueEdge1)).status).toBe(401);
      expect((await at(edge2)).status).toBe(200);
    } finally {
      await other.close();
      await ctx.close();
    }
  });
});

describe('failed token authentications per client address', () => {
  let h: Harness;
  let api: ApiServer;
  beforeAll(async () => {
    h = await startHarness({
      CP_HTTP_TLS_CERT_FILE: path.join(dir, 'server', 'cert.pem'),
      CP_HTTP_TLS_KEY_FILE: path.join(dir, 'server', 'key.pem'),
      CP_HTTP_AUTH_FAILURE_LIMIT: '3',
      CP_HTTP_AUTH_FAILURE_WINDOW_SECONDS: '2',
    });
    api = await startApiServer(h.ctx, h.app, { host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await api?.close();
    await h?.close();
  });

  it('good requests count nothing', async () => {
    for (let i = 0; i < 5; i++) expect((await call(api.port, '/v1/me', { token: h.adminToken, ca: serverCa })).status).toBe(200);
    expect(await h.ctx.redis.exists(apiAuthFailureKey('ip:127.0.0.1'))).toBe(0);
  });

  it('past the limit: 429 problem+json with Retry-After, for the right token too; another address is unaffected; back after the window', async () => {
    // operator, tenant and node tokens all count
    const wrong = [`kcp_${'a'.repeat(40)}`, `kct_${'b'.repeat(40)}`, `node_${'c'.repeat(40)}`];
    for (const [i, token] of wrong.entries()) {
      const route = token.startsWith('node_') ? '/v1/events/kumo' : '/v1/me';
      const r = await call(api.port, route, { token, ca: serverCa, ...(route === '/v1/events/kumo' ? { method: 'POST', body: '[]' } : {}) });
      expect(r.status, `failure ${i + 1}`).toBe(401);
    }
    const limited = await call(api.port, '/v1/me', { token: wrong[0], ca: serverCa });
    expect(limited.status).toBe(429);
    expect(limited.headers['content-type']).toContain('application/problem+json');
    expect(limited.json()).toMatchObject({ code: 'TOO_MANY_REQUESTS', status: 429 });
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(2);
    // refusing only the failures would still answer every guess: the right token waits too
    expect((await call(api.port, '/v1/me', { token: h.adminToken, ca: serverCa })).status).toBe(429);
    // another client address is not held back by this one's failures
    expect((await call(api.port, '/v1/me', { token: h.adminToken, ca: serverCa, from: '127.0.0.2' })).status).toBe(200);
    // the window passes: the right token works again
    await new Promise((r) => setTimeout(r, (retryAfter + 0.3) * 1000));
    expect((await call(api.port, '/v1/me', { token: h.adminToken, ca: serverCa })).status).toBe(200);
    expect(h.logText()).toContain('too many failures from this client');
  });

  it('Redis unreadable: 503 DEPENDENCY_UNAVAILABLE, never an unmetered yes', async () => {
    const ctx: AppContext = await createContext(
      testConfig({ DATABASE_URL: h.db.url, REDIS_URL: 'redis://127.0.0.1:1/0', CP_HTTP_TLS_CERT_FILE: path.join(dir, 'server', 'cert.pem'), CP_HTTP_TLS_KEY_FILE: path.join(dir, 'server', 'key.pem') }),
      { log: createLogger('silent') },
    );
    const down = await startApiServer(ctx, newApp(ctx), { host: '127.0.0.1', port: 0 });
    try {
      for (const token of [h.adminToken, `kcp_${'a'.repeat(40)}`]) {
        const r = await call(down.port, '/v1/me', { token, ca: serverCa });
        expect(r.status).toBe(503);
        expect(r.json()).toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
      }
      // what needs no token still answers
      expect((await call(down.port, '/health', { ca: serverCa })).status).toBe(200);
    } finally {
      await down.close();
      await ctx.close();
    }
  });
});
