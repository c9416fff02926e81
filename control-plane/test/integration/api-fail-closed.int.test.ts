/**
 * The API fails closed (issue 14): a PostgreSQL that refuses or stops answering is a 503
 * DEPENDENCY_UNAVAILABLE within the configured timeouts, never a 500 or a request that hangs; text
 * PostgreSQL cannot store (a NUL byte) is a 400 problem, and in a KumoMTA ingest batch it costs only
 * the record it is in; submission networks wider than a tenant could own are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContext, type AppContext } from '../../src/context.js';
import { createLogger } from '../../src/adapters/logger.js';
import { newApp } from '../../src/http/app.js';
import { expectJson, startHarness, testConfig, type Harness } from '../support/harness.js';
import { kumoRecord } from '../support/kumo-records.js';
import { startPgProxy } from '../support/pg-proxy.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

async function appOn(databaseUrl: string, env: Record<string, string> = {}): Promise<{ ctx: AppContext; request(path: string): Promise<Response> }> {
  const cfg = testConfig({ DATABASE_URL: databaseUrl, REDIS_URL: h.ctx.config.redisUrl, ...env });
  const ctx = await createContext(cfg, { log: createLogger('silent') });
  const app = newApp(ctx);
  return { ctx, request: (path) => Promise.resolve(app.request(path, { headers: { authorization: `Bearer ${h.adminToken}` } })) };
}

describe('PostgreSQL unavailable', () => {
  it('refusing connections: 503 DEPENDENCY_UNAVAILABLE, not 500', async () => {
    const { ctx, request } = await appOn('postgres://postgres:x@127.0.0.1:1/nothing');
    try {
      const p = await expectJson(await request('/v1/tenants'), 503);
      expect(p).toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE', status: 503 });
      expect(JSON.stringify(p)).not.toContain('127.0.0.1:1');
    } finally {
      await ctx.close();
    }
  });

  it('accepting connections but never answering: 503 within the connect timeout', async () => {
    const proxy = await startPgProxy(new URL(h.db.url));
    proxy.freeze();
    const { ctx, request } = await appOn(proxy.url, { CP_DB_CONNECT_TIMEOUT_MS: '500' });
    try {
      const t0 = performance.now();
      expect((await expectJson(await request('/v1/tenants'), 503)).code).toBe('DEPENDENCY_UNAVAILABLE');
      expect(performance.now() - t0).toBeLessThan(3000);
    } finally {
      await ctx.close();
      await proxy.close();
    }
  }, 15_000);

  it('stopping in the middle of a connection: 503 within the statement timeout', async () => {
    const proxy = await startPgProxy(new URL(h.db.url));
    const { ctx, request } = await appOn(proxy.url, { CP_DB_CONNECT_TIMEOUT_MS: '500', CP_DB_STATEMENT_TIMEOUT_MS: '1000' });
    try {
      await expectJson(await request('/v1/tenants'), 200);
      proxy.freeze();
      const t0 = performance.now();
      expect((await expectJson(await request('/v1/tenants'), 503)).code).toBe('DEPENDENCY_UNAVAILABLE');
      expect(performance.now() - t0).toBeLessThan(5000);
    } finally {
      await ctx.close();
      await proxy.close();
    }
  }, 15_000);
});

describe('text PostgreSQL cannot store', () => {
  it('a NUL byte in one record of a kumo batch rejects that record, by index, and stores the rest', async () => {
    const n = await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'nul-node', region: 'fsn1', public_address: '203.0.113.210' } }), 201);
    const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'nulco', display_name: 'Nul Co' } }), 201);
    const batch = [
      kumoRecord('Delivery', { tenant: t.id }),
      kumoRecord('Delivery', { tenant: t.id, recipient: 'evil\u0000@gmail.com' }),
      kumoRecord('Bounce', { tenant: t.id, recipient: 'gone@gmail.com', sender: 'a\u0000b@acme.example' }),
      { ...kumoRecord('Delivery', { tenant: t.id }), egress_source: 'ip-1\u0000', response: { code: 250, content: 'OK \u0000 ids' } },
    ];
    const r = await expectJson(await h.request('POST', '/v1/events/kumo', { token: n.token, body: batch }), 200);
    expect(r.rejected.map((x: { index: number }) => x.index)).toEqual([1]);
    expect(r.rejected[0].reason).toMatch(/recipient/);
    expect(r.accepted).toBe(3);
    const stored = await h.ctx.db.selectFrom('delivery_events').select(['recipient', 'sender', 'egress_source', 'response_text']).where('tenant_id', '=', t.id).execute();
    expect(stored).toHaveLength(3);
    for (const s of stored) expect(JSON.stringify(s)).not.toContain('\\u0000');
  });

  it.each([
    ['a tenant display name', 'POST', '/v1/tenants', { slug: 'nul-name', display_name: 'Evil\u0000Corp' }, 'json.display_name'],
    ['an engagement message id', 'POST', '/v1/events/engagement', { events: [{ id: 'e1', tenant_id: '00000000-0000-4000-8000-000000000001', kind: 'open', occurred_at: '2026-11-20T10:00:00Z', message_id: '<a\u0000b@x>' }] }, 'json.events.0.message_id'],
  ])('a NUL byte in %s is a 400 naming the field, not a 500', async (_n, method, path, body, field) => {
    const p = await expectJson(await h.request(method, path, { body }), 400);
    expect(p.code).toBe('VALIDATION_FAILED');
    expect(p.errors.map((e: { path: string }) => e.path)).toContain(field);
  });
});

describe('submission networks', () => {
  let tenant: string;
  beforeAll(async () => {
    tenant = (await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'netco', display_name: 'Net Co' } }), 201)).id;
  });

  it.each(['0.0.0.0/0', '::/0', '10.0.0.0/8', '128.0.0.0/1', '2001:db8::/32', '2001:db8::1/128x'])('refuses %s with 400', async (network) => {
    const res = await h.request('POST', `/v1/tenants/${tenant}/submission-networks`, { body: { network } });
    if (res.status === 201) await h.request('DELETE', `/v1/tenants/${tenant}/submission-networks/${((await res.clone().json()) as { id: string }).id}`);
    expect((await expectJson(res, 400)).code).toBe('VALIDATION_FAILED');
  });

  it.each(['198.51.100.0/24', '198.51.0.0/16', '192.0.2.7/32', '2001:db8:1::/48', '2001:db8::5/128'])('takes %s', async (network) => {
    const n = await expectJson(await h.request('POST', `/v1/tenants/${tenant}/submission-networks`, { body: { network } }), 201);
    await h.request('DELETE', `/v1/tenants/${tenant}/submission-networks/${n.id}`);
  });
});
