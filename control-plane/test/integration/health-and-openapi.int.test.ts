/** Over a real socket: liveness, readiness of PostgreSQL and Redis, and the OpenAPI document. */
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContext, type AppContext } from '../../src/context.js';
import { createLogger } from '../../src/adapters/logger.js';
import { newApp } from '../../src/http/app.js';
import { startHarness, testConfig, type Harness } from '../support/harness.js';

let h: Harness;
let server: ServerType;
let base: string;

async function listen(ctx: AppContext): Promise<{ server: ServerType; base: string }> {
  return new Promise((resolve) => {
    const s = serve({ fetch: newApp(ctx).fetch, hostname: '127.0.0.1', port: 0 }, (info: AddressInfo) => {
      resolve({ server: s, base: `http://127.0.0.1:${info.port}` });
    });
  });
}

beforeAll(async () => {
  h = await startHarness();
  ({ server, base } = await listen(h.ctx));
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await h?.close();
});

describe('health endpoints', () => {
  it('/health answers without touching dependencies', async () => {
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it.each(['db', 'redis'])('/health/%s reports reachability with latency', async (dep) => {
    const res = await fetch(`${base}/health/${dep}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; latency_ms: number };
    expect(body.status).toBe('ok');
    expect(body.latency_ms).toBeGreaterThanOrEqual(0);
  });

  it('503 quickly when a dependency is down, never a false ok', async () => {
    // a port nothing listens on: the listener is closed before the context is built
    const probe = await listen(h.ctx);
    const deadPort = new URL(probe.base).port;
    await new Promise((r) => probe.server.close(r));
    const config = testConfig({ DATABASE_URL: `postgres://x:y@127.0.0.1:${deadPort}/none`, REDIS_URL: `redis://127.0.0.1:${deadPort}/0` });
    const ctx = await createContext(config, { log: createLogger('silent') });
    const dead = await listen(ctx);
    try {
      for (const dep of ['db', 'redis']) {
        const started = Date.now();
        const res = await fetch(`${dead.base}/health/${dep}`);
        expect(res.status).toBe(503);
        expect(((await res.json()) as { status: string }).status).toBe('unavailable');
        expect(Date.now() - started).toBeLessThan(5000);
      }
      expect((await fetch(`${dead.base}/health`)).status).toBe(200);
    } finally {
      await new Promise((r) => dead.server.close(r));
      await ctx.close();
    }
  });
});

describe('/openapi.json', () => {
  it('is an OpenAPI 3.1 document covering every route the app serves', async () => {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, unknown>>; components: Record<string, any> };
    expect(doc.openapi).toBe('3.1.0');
    const documented = new Set(Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ':$1')}`)));
    const served = new Set(h.app.routes.filter((r) => r.method !== 'ALL' && r.path !== '/openapi.json').map((r) => `${r.method} ${r.path}`));
    expect([...served].filter((r) => !documented.has(r))).toEqual([]);
    expect(served.size).toBeGreaterThan(40);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    // request schemas are the validators: unknown fields are closed off in the document too
    expect(doc.components.schemas.TenantCreate.additionalProperties).toBe(false);
    expect(doc.components.schemas.Problem.properties.code.enum).toContain('VALIDATION_FAILED');
  });
});
