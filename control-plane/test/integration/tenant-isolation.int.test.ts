/** One tenant's data never appears under another tenant's id, whoever asks. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectJson, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
let a: Record<string, any>;
let b: Record<string, any>;
let bDomain: Record<string, any>;
let bMailbox: Record<string, any>;
let bCredential: Record<string, any>;
let aToken: string;

beforeAll(async () => {
  h = await startHarness();
  a = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'tenant-a', display_name: 'A' } }), 201);
  b = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'tenant-b', display_name: 'B' } }), 201);
  await expectJson(await h.request('POST', `/v1/tenants/${a.id}/domains`, { body: { domain: 'a.example' } }), 201);
  bDomain = await expectJson(await h.request('POST', `/v1/tenants/${b.id}/domains`, { body: { domain: 'b.example' } }), 201);
  bMailbox = await expectJson(await h.request('POST', `/v1/tenants/${b.id}/mailboxes`, { body: { domain_id: bDomain.id, local_part: 'hello' } }), 201);
  bCredential = await expectJson(await h.request('POST', `/v1/tenants/${b.id}/smtp-credentials`, { body: {} }), 201);
  aToken = (await expectJson(await h.request('POST', `/v1/tenants/${a.id}/tokens`, { body: { name: 'dashboard' } }), 201)).token;
});
afterAll(async () => h?.close());

describe('operator access through the wrong tenant id', () => {
  it.each([
    ['GET', () => `/v1/tenants/${a.id}/domains/${bDomain.id}`],
    ['PATCH', () => `/v1/tenants/${a.id}/domains/${bDomain.id}`],
    ['DELETE', () => `/v1/tenants/${a.id}/domains/${bDomain.id}`],
    ['GET', () => `/v1/tenants/${a.id}/mailboxes/${bMailbox.id}`],
    ['DELETE', () => `/v1/tenants/${a.id}/mailboxes/${bMailbox.id}`],
    ['DELETE', () => `/v1/tenants/${a.id}/smtp-credentials/${bCredential.id}`],
  ])('%s %s answers 404 and changes nothing', async (method, path) => {
    const res = await h.request(method, path(), method === 'PATCH' ? { body: { spf_state: 'verified' } } : {});
    expect((await expectJson(res, 404)).code).toBe('NOT_FOUND');
  });

  it('B\'s records are intact after the attempts', async () => {
    const d = await expectJson(await h.request('GET', `/v1/tenants/${b.id}/domains/${bDomain.id}`), 200);
    expect(d.verification.spf).toBe('pending');
    await expectJson(await h.request('GET', `/v1/tenants/${b.id}/mailboxes/${bMailbox.id}`), 200);
    const creds = await expectJson(await h.request('GET', `/v1/tenants/${b.id}/smtp-credentials`), 200);
    expect(creds.items[0].revoked_at).toBeNull();
  });

  it('a mailbox cannot be created on another tenant\'s domain', async () => {
    const p = await expectJson(await h.request('POST', `/v1/tenants/${a.id}/mailboxes`, { body: { domain_id: bDomain.id, local_part: 'sneaky' } }), 404);
    expect(p.code).toBe('NOT_FOUND');
  });

  it('lists under A never contain B\'s rows', async () => {
    for (const res of ['domains', 'mailboxes', 'smtp-credentials']) {
      const page = await expectJson(await h.request('GET', `/v1/tenants/${a.id}/${res}`), 200);
      expect(page.items.every((i: { tenant_id: string }) => i.tenant_id === a.id)).toBe(true);
      expect(JSON.stringify(page)).not.toContain(b.id);
    }
  });
});

describe('tenant-scoped read-only tokens', () => {
  it('read their own tenant', async () => {
    expect((await expectJson(await h.request('GET', `/v1/tenants/${a.id}`, { token: aToken }), 200)).id).toBe(a.id);
    const domains = await expectJson(await h.request('GET', `/v1/tenants/${a.id}/domains`, { token: aToken }), 200);
    expect(domains.items.map((d: { domain: string }) => d.domain)).toEqual(['a.example']);
    expect(await expectJson(await h.request('GET', '/v1/me', { token: aToken }), 200)).toMatchObject({ kind: 'tenant', tenant_id: a.id, scopes: ['read'] });
  });

  it.each([
    ['GET', () => `/v1/tenants/${b.id}`],
    ['GET', () => `/v1/tenants/${b.id}/domains`],
    ['GET', () => `/v1/tenants/${b.id}/domains/${bDomain.id}`],
    ['GET', () => `/v1/tenants/${b.id}/mailboxes`],
    ['GET', () => `/v1/tenants/${b.id}/smtp-credentials`],
    ['GET', () => '/v1/tenants'],
    ['GET', () => '/v1/nodes'],
    ['GET', () => '/v1/audit-log'],
    ['GET', () => '/v1/settings'],
    ['POST', () => `/v1/tenants/${a.id}/domains`],
    ['PATCH', () => `/v1/tenants/${a.id}`],
    ['POST', () => `/v1/tenants/${a.id}/smtp-credentials`],
  ])('cannot %s %s (403)', async (method, path) => {
    const res = await h.request(method, path(), { token: aToken, body: method === 'GET' ? undefined : {} });
    expect((await expectJson(res, 403)).code).toBe('FORBIDDEN');
  });
});
