import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findSuppression } from '../../src/app/suppressions.js';
import { parseCsv } from '../../src/domain/suppression/csv.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
let tenant: string;
let other: string;
beforeAll(async () => {
  h = await startHarness();
  tenant = (await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'supp', display_name: 'S' } }), 201)).id;
  other = (await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'supp-other', display_name: 'O' } }), 201)).id;
});
afterAll(async () => h?.close());

const base = () => `/v1/tenants/${tenant}/suppressions`;

describe('suppression lists', () => {
  it('add addresses and whole domains; the gateway lookup honours both, and the global list', async () => {
    const a = await expectJson(await h.request('POST', base(), { body: { pattern: ' Someone@Example.COM ', note: 'asked to stop' } }), 201);
    expect(a).toMatchObject({ pattern: 'someone@example.com', reason: 'manual', scope: 'tenant', tenant_id: tenant });
    const d = await expectJson(await h.request('POST', base(), { body: { pattern: '@competitor.example', reason: 'manual' } }), 201);
    expect(d.pattern).toBe('*@competitor.example');
    expect((await expectJson(await h.request('POST', base(), { body: { pattern: 'someone@example.com' } }), 409)).code).toBe('CONFLICT');
    expect((await expectJson(await h.request('POST', base(), { body: { pattern: 'not an address' } }), 400)).code).toBe('VALIDATION_FAILED');
    expect((await h.request('POST', base(), { body: { pattern: 'x@y.example', extra: 1 } })).status).toBe(400);
    await expectJson(await h.request('POST', '/v1/suppressions', { body: { pattern: 'spamtrap@honeypot.example', reason: 'manual' } }), 201);

    const now = new Date();
    expect(await findSuppression(h.ctx.db, tenant, 'SOMEONE@example.com', now)).toMatchObject({ pattern: 'someone@example.com' });
    expect(await findSuppression(h.ctx.db, tenant, 'anyone@competitor.example', now)).toMatchObject({ pattern: '*@competitor.example' });
    expect(await findSuppression(h.ctx.db, tenant, 'spamtrap@honeypot.example', now)).toMatchObject({ scope: 'global' });
    expect(await findSuppression(h.ctx.db, tenant, 'fine@example.com', now)).toBeNull();
    // another tenant's list does not apply; the global one does
    expect(await findSuppression(h.ctx.db, other, 'someone@example.com', now)).toBeNull();
    expect(await findSuppression(h.ctx.db, other, 'spamtrap@honeypot.example', now)).not.toBeNull();
  });

  it('an entry with an expiry stops applying after it', async () => {
    const e = await expectJson(await h.request('POST', base(), { body: { pattern: 'later@example.com', expires_at: new Date(Date.now() + 3600_000).toISOString() } }), 201);
    expect(await findSuppression(h.ctx.db, tenant, 'later@example.com', new Date())).not.toBeNull();
    expect(await findSuppression(h.ctx.db, tenant, 'later@example.com', new Date(Date.now() + 7200_000))).toBeNull();
    await expectJson(await h.request('DELETE', `${base()}/${e.id}`), 204);
    await expectJson(await h.request('DELETE', `${base()}/${e.id}`), 404);
  });

  it('imports CSV, reporting bad lines by number, and skips duplicates', async () => {
    const csv = 'pattern,reason,note\r\nbulk1@example.com,unsubscribe,"said ""no"" twice"\nbulk2@example.com\n"not valid",manual\nbulk1@example.com,manual\nbulk3@example.com,teleported\n*@blocked.example,manual,whole domain\n';
    const r = await expectJson(await h.request('POST', `${base()}/import`, { body: csv, headers: { 'content-type': 'text/csv' } }), 200);
    expect(r).toMatchObject({ imported: 3, duplicates: 0 });
    expect(r.errors).toEqual([
      { line: 4, reason: expect.stringContaining('not an address') },
      { line: 6, reason: expect.stringContaining('unknown reason') },
    ]);
    const again = await expectJson(await h.request('POST', `${base()}/import`, { body: csv, headers: { 'content-type': 'text/csv' } }), 200);
    expect(again).toMatchObject({ imported: 0, duplicates: 3 });
    const audit = await expectJson(await h.request('GET', `/v1/audit-log?action=suppression.import&tenant_id=${tenant}`), 200);
    expect(audit.items).toHaveLength(2);
  });

  it('exports CSV that round-trips and cannot run as a spreadsheet formula', async () => {
    await expectJson(await h.request('POST', base(), { body: { pattern: 'formula@example.com', note: '=HYPERLINK("http://evil.example","click")' } }), 201);
    const res = await h.request('GET', `${base()}/export`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/csv');
    const rows = parseCsv(await res.text());
    expect(rows[0]).toEqual(['pattern', 'reason', 'note', 'created_at', 'expires_at']);
    const f = rows.find((r) => r[0] === 'formula@example.com')!;
    expect(f[2]).toBe(`'=HYPERLINK("http://evil.example","click")`);
    const q = rows.find((r) => r[0] === 'bulk1@example.com')!;
    expect(q.slice(1, 3)).toEqual(['unsubscribe', 'said "no" twice']);
  });

  it('lists with paging and filters; isolation by tenant', async () => {
    const p1 = await expectJson(await h.request('GET', `${base()}?limit=2`), 200);
    expect(p1.items).toHaveLength(2);
    const p2 = await expectJson(await h.request('GET', `${base()}?limit=2&cursor=${p1.next_cursor}`), 200);
    expect(p2.items[0].id).not.toBe(p1.items[1].id);
    const filtered = await expectJson(await h.request('GET', `${base()}?contains=bulk&reason=import`), 200);
    expect(filtered.items.map((s: { pattern: string }) => s.pattern)).toEqual(['bulk2@example.com']);
    const others = await expectJson(await h.request('GET', `/v1/tenants/${other}/suppressions`), 200);
    expect(others.items).toEqual([]);
    // a suppression id of another scope is not found here
    const globalEntry = (await expectJson(await h.request('GET', '/v1/suppressions'), 200)).items[0];
    expect((await h.request('DELETE', `${base()}/${globalEntry.id}`)).status).toBe(404);
  });

  it('tenant tokens read and export their list but cannot change it or the global one', async () => {
    const token = (await expectJson(await h.request('POST', `/v1/tenants/${tenant}/tokens`, { body: { name: 'ro' } }), 201)).token;
    expect((await h.request('GET', base(), { token })).status).toBe(200);
    expect((await h.request('GET', `${base()}/export`, { token })).status).toBe(200);
    expect((await h.request('POST', base(), { token, body: { pattern: 'x@y.example' } })).status).toBe(403);
    expect((await h.request('GET', '/v1/suppressions', { token })).status).toBe(403);
    const write = await h.tokenWith(['write']);
    expect((await h.request('POST', '/v1/suppressions', { token: write, body: { pattern: 'x@y.example' } })).status).toBe(403);
  });
});
