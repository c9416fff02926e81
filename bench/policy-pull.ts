/**
 * Policy pull benchmark: nodes pulling their signed module over real HTTP (the API server on a
 * socket, node-token authentication, the stored module and its signature), fresh (200 with the
 * module) and unchanged (If-None-Match, 304, no body). Baseline in the same run and server: GET
 * /health, the cheapest request the server answers. Reports requests per second and the ratios.
 *
 *   npm run bench:pull -- [--nodes 8] [--tenants 500] [--requests 3000] [--concurrency 20]
 */
import { parseArgs } from 'node:util';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Pool } from 'undici';
import { createContext } from '../control-plane/src/context.js';
import { createLogger } from '../control-plane/src/adapters/logger.js';
import { loadConfig } from '../control-plane/src/config/config.js';
import { newApp } from '../control-plane/src/http/app.js';
import { createOperator, createOperatorToken } from '../control-plane/src/app/api-tokens.js';
import { systemCaller } from '../control-plane/src/app/actor.js';
import { benchEnv, createBenchDatabase } from './lib/bench-db.js';
import { percentile } from './lib/processes.js';
import { printTable, writeResult } from './lib/report.js';

const { values } = parseArgs({
  strict: false,
  options: { nodes: { type: 'string', default: '8' }, tenants: { type: 'string', default: '500' }, requests: { type: 'string', default: '3000' }, concurrency: { type: 'string', default: '20' } },
});
const NODES = Number(values.nodes);
const TENANTS = Number(values.tenants);
const REQUESTS = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);

const db = await createBenchDatabase();
const cfg = loadConfig(benchEnv(db.url));
if (!cfg.ok) throw new Error(cfg.error.join('; '));
const ctx = await createContext(cfg.value, { log: createLogger('silent') });
const app = newApp(ctx);
const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
await new Promise((r) => server.once('listening', r));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const client = new Pool(base, { connections: CONCURRENCY, pipelining: 1 });
try {
  const op = await createOperator(ctx, systemCaller('bench'), { email: 'bench@localhost.test', name: 'bench' });
  const token = (await createOperatorToken(ctx, systemCaller('bench'), op.id, { name: 'bench', scopes: ['admin'] })).token;
  const api = async (method: string, p: string, body?: unknown) => {
    const res = await app.request(p, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, any>;
  };
  const pool = await api('POST', '/v1/pools', { name: 'standard-1', tier: 'standard' });
  const nodes: { id: string; token: string }[] = [];
  for (let n = 0; n < NODES; n++) {
    const node = await api('POST', '/v1/nodes', { name: `node-${n}`, region: 'fsn1', public_address: `198.51.100.${n + 1}` });
    nodes.push({ id: node.id, token: node.token });
    for (let k = 0; k < 4; k++) {
      const ip = await api('POST', '/v1/ips', { address: `203.0.${n}.${k + 1}`, node_id: node.id, rdns_name: `mta${n}-${k}.example.net`, state: 'active' });
      await app.request(`/v1/pools/${pool.id}/members/${ip.id}`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ weight: 100 }) });
    }
  }
  for (let t = 0; t < TENANTS; t++) {
    const tenant = await api('POST', '/v1/tenants', { slug: `bench-${t}`, display_name: `Bench ${t}` });
    await api('POST', `/v1/tenants/${tenant.id}/placement/override`, { tier: 'standard', expires_at: '2099-01-01T00:00:00Z', reason: 'bench' });
  }
  const published = await api('POST', '/v1/policy/publish', { node_ids: nodes.map((n) => n.id) });
  const etags = new Map<string, string>();

  const load = async (path: (i: number) => { path: string; headers: Record<string, string>; expect: number }) => {
    const times: number[] = [];
    let next = 0;
    let bytes = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < REQUESTS) {
          const r = path(next++);
          const s = performance.now();
          const res = await client.request({ method: 'GET', path: r.path, headers: r.headers });
          const body = await res.body.arrayBuffer();
          bytes += body.byteLength;
          if (res.statusCode !== r.expect) throw new Error(`${r.path}: ${res.statusCode}, expected ${r.expect}`);
          if (res.statusCode === 200 && res.headers.etag) etags.set(r.path, String(res.headers.etag));
          times.push(performance.now() - s);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    times.sort((a, b) => a - b);
    return { per_second: REQUESTS / seconds, p50_ms: percentile(times, 50), p99_ms: percentile(times, 99), bytes_per_request: bytes / REQUESTS };
  };
  const node = (i: number) => nodes[i % nodes.length]!;
  const health = await load(() => ({ path: '/health', headers: {}, expect: 200 }));
  const fresh = await load((i) => ({ path: `/v1/nodes/${node(i).id}/policy`, headers: { authorization: `Bearer ${node(i).token}` }, expect: 200 }));
  const unchanged = await load((i) => ({ path: `/v1/nodes/${node(i).id}/policy`, headers: { authorization: `Bearer ${node(i).token}`, 'if-none-match': etags.get(`/v1/nodes/${node(i).id}/policy`)! }, expect: 304 }));

  const row = (name: string, r: typeof health) => [name, `${r.per_second.toFixed(0)} req/s (${(r.per_second / health.per_second).toFixed(3)}x /health), p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms, ${Math.round(r.bytes_per_request)} B`] as [string, string];
  printTable(`Policy pull (${NODES} nodes, ${TENANTS} tenants, ${REQUESTS} requests each, ${CONCURRENCY} connections)`, [row('baseline GET /health', health), row('pull, 200 with the module', fresh), row('pull, 304 unchanged', unchanged)]);
  await writeResult('policy-pull', {
    benchmark: 'policy-pull',
    parameters: { nodes: NODES, tenants: TENANTS, requests: REQUESTS, concurrency: CONCURRENCY, versions: (published.results as unknown[]).length },
    baseline_health: health,
    pull_200: { ...fresh, ratio: fresh.per_second / health.per_second },
    pull_304: { ...unchanged, ratio: unchanged.per_second / health.per_second },
  });
} finally {
  await client.close();
  server.close();
  await ctx.close();
  await db.drop();
}
