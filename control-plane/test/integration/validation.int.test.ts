import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectJson, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ CP_HTTP_BODY_LIMIT_BYTES: '4096' });
});
afterAll(async () => h?.close());

describe('request validation', () => {
  it('rejects unknown fields, naming them', async () => {
    const p = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'ok', display_name: 'Ok', is_admin: true } }), 400);
    expect(p).toMatchObject({ code: 'VALIDATION_FAILED', status: 400 });
    expect(JSON.stringify(p.errors)).toContain('is_admin');
  });

  it('lists every invalid field at once', async () => {
    const p = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'Bad Slug!', display_name: '' } }), 400);
    expect(p.errors.map((e: { path: string }) => e.path).sort()).toEqual(['json.display_name', 'json.slug']);
  });

  it.each([
    ['a quote', "acme'"],
    ['a closing long bracket', 'acme]]'],
    ['a newline', 'acme\nrm'],
    ['a NUL byte', 'acme\u0000'],
    ['a queue-name separator', 'acme@x'],
    ['64 characters', 'a'.repeat(64)],
  ])('refuses a tenant slug with %s', async (_n, slug) => {
    expect((await h.request('POST', '/v1/tenants', { body: { slug, display_name: 'X' } })).status).toBe(400);
  });

  it.each([
    ['quotes', 'exa"mple.com'],
    ['a long-bracket close', 'a]].example.com'],
    ['a newline', 'example.com\nX-Injected: 1'],
    ['no dot', 'localhost'],
    ['an empty label', 'a..example.com'],
  ])('refuses a sending domain with %s', async (_n, domain) => {
    const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: `dom-${Math.random().toString(36).slice(2, 8)}`, display_name: 'D' } }), 201);
    expect((await h.request('POST', `/v1/tenants/${t.id}/domains`, { body: { domain } })).status).toBe(400);
  });

  it('400 problem for a body that is not JSON', async () => {
    const p = await expectJson(await h.request('POST', '/v1/tenants', { body: '{"slug": ' }), 400);
    expect(p.code).toBe('VALIDATION_FAILED');
  });

  it('413 problem for a body over the limit', async () => {
    const p = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'big', display_name: 'x'.repeat(5000) } }), 413);
    expect(p.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('400 for a path id that is not a uuid, and for a forged cursor', async () => {
    expect((await expectJson(await h.request('GET', '/v1/tenants/not-a-uuid'), 400)).errors[0].path).toBe('param.tenant_id');
    expect((await expectJson(await h.request('GET', '/v1/tenants?cursor=Zm9v'), 400)).code).toBe('VALIDATION_FAILED');
    expect((await h.request('GET', '/v1/tenants?limit=500')).status).toBe(400);
  });

  it('404 problem for an unknown route', async () => {
    expect(await expectJson(await h.request('GET', '/v1/nope'), 404)).toMatchObject({ code: 'NOT_FOUND' });
  });
});
