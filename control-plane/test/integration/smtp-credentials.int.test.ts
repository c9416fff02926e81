import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../src/adapters/crypto/password-hash.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
let tenant: Record<string, any>;
beforeAll(async () => {
  h = await startHarness();
  tenant = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'creds', display_name: 'Creds' } }), 201);
});
afterAll(async () => h?.close());

describe('SMTP credentials', () => {
  it('shows the password once, stores only a scrypt hash that verifies it', async () => {
    const res = await h.request('POST', `/v1/tenants/${tenant.id}/smtp-credentials`, { body: { description: 'app servers' } });
    expect(res.headers.get('cache-control')).toBe('no-store');
    const c = await expectJson(res, 201);
    expect(c.username).toMatch(/^creds-[0-9a-z]{8}$/);
    expect(c.password).toMatch(/^[0-9A-Za-z]{32}$/);
    const row = await h.ctx.db.selectFrom('smtp_credentials').select('password_hash').where('id', '=', c.id).executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^scrypt\$ln=15,r=8,p=1\$/);
    expect(await verifyPassword(c.password, row.password_hash)).toBe(true);
    expect(await verifyPassword(`${c.password}x`, row.password_hash)).toBe(false);

    const list = await expectJson(await h.request('GET', `/v1/tenants/${tenant.id}/smtp-credentials`), 200);
    expect(list.items).toHaveLength(1);
    expect(JSON.stringify(list)).not.toContain(c.password);
    expect(list.items[0]).not.toHaveProperty('password');
    expect(h.logText()).not.toContain(c.password);
    const audit = await expectJson(await h.request('GET', `/v1/audit-log?target_id=${c.id}`), 200);
    expect(JSON.stringify(audit)).not.toContain(c.password);
  });

  it('accepts a chosen username, unique across tenants (409)', async () => {
    await expectJson(await h.request('POST', `/v1/tenants/${tenant.id}/smtp-credentials`, { body: { username: 'app@creds.example' } }), 201);
    expect((await expectJson(await h.request('POST', `/v1/tenants/${tenant.id}/smtp-credentials`, { body: { username: 'app@creds.example' } }), 409)).code).toBe('CONFLICT');
    expect((await h.request('POST', `/v1/tenants/${tenant.id}/smtp-credentials`, { body: { username: 'a b' } })).status).toBe(400);
  });

  it('revokes, idempotently keeping the first revocation time', async () => {
    const c = await expectJson(await h.request('POST', `/v1/tenants/${tenant.id}/smtp-credentials`, { body: {} }), 201);
    const first = await expectJson(await h.request('DELETE', `/v1/tenants/${tenant.id}/smtp-credentials/${c.id}`), 200);
    const second = await expectJson(await h.request('DELETE', `/v1/tenants/${tenant.id}/smtp-credentials/${c.id}`), 200);
    expect(first.revoked_at).not.toBeNull();
    expect(second.revoked_at).toBe(first.revoked_at);
  });
});
