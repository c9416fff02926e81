import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectJson, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

describe('operator authentication', () => {
  it('401 without a token, with a challenge header and a problem document', async () => {
    const res = await h.request('GET', '/v1/tenants', { token: null });
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
    expect(await expectJson(res, 401)).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
  });

  it.each([
    ['a malformed token', 'not-a-token'],
    ['an unknown well-formed token', `kcp_${'a'.repeat(40)}`],
    ['a tenant-looking unknown token', `kct_${'b'.repeat(40)}`],
  ])('401 with %s', async (_n, token) => {
    expect(await expectJson(await h.request('GET', '/v1/tenants', { token }), 401)).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('403 for a token without the needed scope; scopes nest admin > write > read', async () => {
    const read = await h.tokenWith(['read']);
    const write = await h.tokenWith(['write']);
    expect((await h.request('GET', '/v1/tenants', { token: read })).status).toBe(200);
    const denied = await expectJson(await h.request('POST', '/v1/tenants', { token: read, body: { slug: 'x1', display_name: 'X' } }), 403);
    expect(denied).toMatchObject({ code: 'FORBIDDEN', context: { needed: 'write', granted: ['read'] } });
    await expectJson(await h.request('POST', '/v1/tenants', { token: write, body: { slug: 'x2', display_name: 'X' } }), 201);
    // admin-only: settings, node registration, operators
    expect((await h.request('PATCH', '/v1/settings/costs', { token: write, body: { ip_monthly_usd: 5 } })).status).toBe(403);
    expect((await h.request('GET', '/v1/operators', { token: write })).status).toBe(403);
    expect((await h.request('GET', '/v1/operators', { token: h.adminToken })).status).toBe(200);
  });

  it('a revoked token stops working at once', async () => {
    const created = await expectJson(await h.request('POST', `/v1/operators/${h.operatorId}/tokens`, { body: { name: 'short-lived', scopes: ['read'] } }), 201);
    expect(created.token).toMatch(/^kcp_/);
    expect((await h.request('GET', '/v1/me', { token: created.token })).status).toBe(200);
    const revoked = await expectJson(await h.request('DELETE', `/v1/tokens/${created.id}`), 200);
    expect(revoked.revoked_at).not.toBeNull();
    expect((await h.request('GET', '/v1/me', { token: created.token })).status).toBe(401);
  });

  it('an expired token is refused', async () => {
    const created = await expectJson(
      await h.request('POST', `/v1/operators/${h.operatorId}/tokens`, { body: { name: 'expiring', scopes: ['read'], expires_at: new Date(Date.now() + 60_000).toISOString() } }),
      201,
    );
    expect((await h.request('GET', '/v1/me', { token: created.token })).status).toBe(200);
    await sql`UPDATE api_tokens SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour' WHERE id = ${created.id}`.execute(h.ctx.db);
    expect((await h.request('GET', '/v1/me', { token: created.token })).status).toBe(401);
  });

  it('refuses an expiry in the past', async () => {
    const p = await expectJson(await h.request('POST', `/v1/operators/${h.operatorId}/tokens`, { body: { name: 'past', scopes: ['read'], expires_at: '2001-01-01T00:00:00Z' } }), 400);
    expect(p.code).toBe('VALIDATION_FAILED');
  });

  it('a disabled operator\'s tokens stop working; an operator cannot disable itself', async () => {
    const op = await expectJson(await h.request('POST', '/v1/operators', { body: { email: 'Second@Example.test', name: 'Second' } }), 201);
    expect(op.email).toBe('second@example.test');
    const t = await expectJson(await h.request('POST', `/v1/operators/${op.id}/tokens`, { body: { name: 'main', scopes: ['write'] } }), 201);
    expect((await h.request('GET', '/v1/me', { token: t.token })).status).toBe(200);
    await expectJson(await h.request('PATCH', `/v1/operators/${op.id}`, { body: { disabled: true } }), 200);
    expect((await h.request('GET', '/v1/me', { token: t.token })).status).toBe(401);
    expect((await expectJson(await h.request('PATCH', `/v1/operators/${h.operatorId}`, { body: { disabled: true } }), 409)).code).toBe('CONFLICT');
  });

  it('stores only a hash of each token, and never logs a token', async () => {
    const t = await expectJson(await h.request('POST', `/v1/operators/${h.operatorId}/tokens`, { body: { name: 'secret-check', scopes: ['admin'] } }), 201);
    await h.request('GET', '/v1/me', { token: t.token });
    await h.request('GET', '/v1/me', { token: `${t.token}x` });
    const rows = await sql<{ t: string }>`SELECT row_to_json(api_tokens)::text AS t FROM api_tokens`.execute(h.ctx.db);
    expect(rows.rows.map((r) => r.t).join()).not.toContain(t.token.slice(4));
    const logs = h.logText();
    expect(logs).toContain('"path":"/v1/me"');
    expect(logs).not.toContain(t.token.slice(4));
    expect(logs).not.toContain(h.adminToken.slice(4));
  });

  it('/v1/me describes the caller', async () => {
    expect(await expectJson(await h.request('GET', '/v1/me'), 200)).toMatchObject({ kind: 'operator', operator_id: h.operatorId, scopes: ['admin'] });
  });

  it('every log line of a request carries its request id, which the response echoes', async () => {
    const res = await h.request('GET', '/v1/me', { headers: { 'x-request-id': 'trace-abc-123' } });
    expect(res.headers.get('x-request-id')).toBe('trace-abc-123');
    const lines = h.logLines().filter((l) => l.req_id === 'trace-abc-123');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => typeof l.msg === 'string')).toBe(true);
    const generated = await h.request('GET', '/v1/me');
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
