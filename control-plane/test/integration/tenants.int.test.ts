import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectJson, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

describe('tenants API', () => {
  it('creates, reads, lists, updates and deletes a tenant, auditing every write', async () => {
    const created = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'acme', display_name: 'Acme Ltd' } }), 201);
    expect(created).toMatchObject({ slug: 'acme', display_name: 'Acme Ltd', status: 'active', leaderboard_opt_out: false });
    expect(created.pseudonym).toMatch(/^Sender_\d{6}$/);

    const got = await expectJson(await h.request('GET', `/v1/tenants/${created.id}`), 200);
    expect(got).toEqual(created);

    const updated = await expectJson(await h.request('PATCH', `/v1/tenants/${created.id}`, { body: { display_name: 'Acme Group', status: 'suspended' } }), 200);
    expect(updated).toMatchObject({ display_name: 'Acme Group', status: 'suspended', pseudonym: created.pseudonym });

    await expectJson(await h.request('DELETE', `/v1/tenants/${created.id}`), 204);
    const gone = await expectJson(await h.request('GET', `/v1/tenants/${created.id}`), 404);
    expect(gone).toMatchObject({ code: 'NOT_FOUND', status: 404 });

    const audit = await expectJson(await h.request('GET', `/v1/audit-log?target_type=tenant&target_id=${created.id}`), 200);
    expect(audit.items.map((e: { action: string }) => e.action)).toEqual(['tenant.delete', 'tenant.update', 'tenant.create']);
    const upd = audit.items[1];
    expect(upd.details.before.display_name).toBe('Acme Ltd');
    expect(upd.details.after.display_name).toBe('Acme Group');
    expect(upd.actor_type).toBe('operator');
    expect(upd.actor_id).toBe(h.operatorId);
    expect(upd.request_id).toMatch(/.+/);
  });

  it('answers 409 with a problem document for a duplicate slug', async () => {
    await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'dup', display_name: 'One' } }), 201);
    const res = await h.request('POST', '/v1/tenants', { body: { slug: 'dup', display_name: 'Two' } });
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const p = await expectJson(res, 409);
    expect(p).toMatchObject({ code: 'CONFLICT', status: 409, title: expect.any(String), instance: '/v1/tenants' });
  });

  it('paginates with a cursor over rows created in one instant', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 7; i++) {
      const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: `page-${i}`, display_name: `Page ${i}` } }), 201);
      ids.add(t.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${cursor}` : '';
      const page: { items: { id: string }[]; next_cursor: string | null } = await expectJson(await h.request('GET', `/v1/tenants?limit=3${q}`), 200);
      expect(page.items.length).toBeLessThanOrEqual(3);
      seen.push(...page.items.map((t) => t.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of ids) expect(seen).toContain(id);
  });
});
