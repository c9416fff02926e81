import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../../src/domain/settings/settings.js';
import { sessionOptions } from '../../src/adapters/pg/scope.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

describe('settings', () => {
  it('start at the documented defaults', async () => {
    expect(await expectJson(await h.request('GET', '/v1/settings'), 200)).toEqual(DEFAULT_SETTINGS);
  });

  it('change one field, validated with the rest of the section, and audited', async () => {
    const s = await expectJson(await h.request('PATCH', '/v1/settings/trust', { body: { lock_below: 65 } }), 200);
    expect(s.trust).toEqual({ ...DEFAULT_SETTINGS.trust, lock_below: 65 });
    expect(s.costs).toEqual(DEFAULT_SETTINGS.costs);
    const audit = await expectJson(await h.request('GET', '/v1/audit-log?target_type=settings&target_id=trust'), 200);
    expect(audit.items[0]).toMatchObject({ action: 'settings.update', actor_id: h.operatorId, details: { before: { lock_below: 70 }, after: { lock_below: 65 } } });
    expect((await expectJson(await h.request('GET', '/v1/settings'), 200)).trust.lock_below).toBe(65);
  });

  it('refuse a change that breaks a cross-field rule, an unknown key, or a wrong type', async () => {
    const p = await expectJson(await h.request('PATCH', '/v1/settings/trust', { body: { unlock_at_or_above: 50 } }), 400);
    expect(p.errors[0]).toMatchObject({ path: 'body.unlock_at_or_above' });
    expect((await h.request('PATCH', '/v1/settings/trust', { body: { typo_field: 1 } })).status).toBe(400);
    expect((await h.request('PATCH', '/v1/settings/costs', { body: { ip_monthly_usd: 'cheap' } })).status).toBe(400);
    expect((await h.request('PATCH', '/v1/settings/placement', { body: { bounce_pause_pct: 12 } })).status).toBe(400);
    expect((await expectJson(await h.request('GET', '/v1/settings'), 200)).trust.unlock_at_or_above).toBe(75);
  });
});

describe('audit log', () => {
  it('is append-only: UPDATE, DELETE and TRUNCATE are refused by the database', async () => {
    await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'audited', display_name: 'A' } }), 201);
    // the application's role may only add to it
    await expect(sql`UPDATE audit_log SET action = 'tenant.forged'`.execute(h.ctx.db)).rejects.toThrow(/permission denied/);
    await expect(sql`DELETE FROM audit_log`.execute(h.ctx.db)).rejects.toThrow(/permission denied/);
    await expect(sql`TRUNCATE audit_log`.execute(h.ctx.db)).rejects.toThrow(/permission denied/);
    // and the table's owner, who has every privilege, is refused by the trigger
    const owner = new pg.Client({ connectionString: h.db.ownerUrl, options: sessionOptions('platform') });
    await owner.connect();
    try {
      await expect(owner.query(`UPDATE audit_log SET action = 'tenant.forged'`)).rejects.toThrow(/append-only/);
      await expect(owner.query('DELETE FROM audit_log')).rejects.toThrow(/append-only/);
      await expect(owner.query('TRUNCATE audit_log')).rejects.toThrow(/append-only/);
    } finally {
      await owner.end();
    }
  });

  it('records nothing for a change that failed', async () => {
    const before = await sql<{ n: string }>`SELECT count(*) AS n FROM audit_log`.execute(h.ctx.db);
    await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'audited', display_name: 'dup' } }), 409);
    await expectJson(await h.request('PATCH', '/v1/settings/trust', { body: { unlock_at_or_above: 1 } }), 400);
    const after = await sql<{ n: string }>`SELECT count(*) AS n FROM audit_log`.execute(h.ctx.db);
    expect(after.rows[0]!.n).toBe(before.rows[0]!.n);
  });

  it('pages newest first and filters by tenant and action', async () => {
    const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'pager', display_name: 'P' } }), 201);
    for (let i = 0; i < 5; i++) await expectJson(await h.request('PATCH', `/v1/tenants/${t.id}`, { body: { display_name: `P${i}` } }), 200);
    const first = await expectJson(await h.request('GET', `/v1/audit-log?tenant_id=${t.id}&action=tenant.update&limit=2`), 200);
    expect(first.items.map((e: { details: any }) => e.details.after.display_name)).toEqual(['P4', 'P3']);
    const second = await expectJson(await h.request('GET', `/v1/audit-log?tenant_id=${t.id}&action=tenant.update&limit=2&cursor=${first.next_cursor}`), 200);
    expect(second.items.map((e: { details: any }) => e.details.after.display_name)).toEqual(['P2', 'P1']);
  });
});
