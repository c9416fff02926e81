import { createHash } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMigrations, migrate, type Migration } from '../../src/adapters/pg/migrator.js';
import { createTestDatabase, type TestDatabase } from '../support/harness.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ empty: true });
});
afterAll(async () => db?.drop());

const m = (version: string, sql: string): Migration => ({ version, name: `test_${version}`, sql, sha256: createHash('sha256').update(sql).digest('hex') });

describe('migration runner', () => {
  it('applies each migration once, even when replicas start together', async () => {
    const list = await loadMigrations();
    const reports = await Promise.all([migrate(db.ownerUrl, list), migrate(db.ownerUrl, list), migrate(db.ownerUrl, list)]);
    const applied = reports.flatMap((r) => r.applied);
    expect(applied.sort()).toEqual(list.map((x) => x.version).sort());
    const again = await migrate(db.ownerUrl, list);
    expect(again).toEqual({ applied: [], alreadyApplied: list.map((x) => x.version) });
  });

  it('refuses to run when an applied migration has changed', async () => {
    const list = await loadMigrations();
    const edited = list.map((x, i) => (i === 0 ? { ...x, sha256: 'f'.repeat(64) } : x));
    await expect(migrate(db.ownerUrl, edited)).rejects.toThrow(/was changed after it was applied/);
  });

  it('lets the application\'s role start on a current schema, and never apply a migration', async () => {
    const list = await loadMigrations();
    expect(await migrate(db.url, list)).toEqual({ applied: [], alreadyApplied: list.map((x) => x.version) });
    await expect(migrate(db.url, [...list, m('9997', 'CREATE TABLE sneaky (id int)')])).rejects.toThrow(/9997_test_9997 failed: permission denied/);
  });

  it('rolls a failing migration back whole and records nothing for it', async () => {
    const list = await loadMigrations();
    const broken = [...list, m('9998', 'CREATE TABLE half_done (id int); SELECT no_such_function();')];
    await expect(migrate(db.ownerUrl, broken)).rejects.toThrow(/9998_test_9998 failed/);
    const c = new pg.Client({ connectionString: db.ownerUrl });
    await c.connect();
    const t = await c.query(`SELECT to_regclass('half_done') AS t`);
    const v = await c.query(`SELECT 1 FROM schema_migrations WHERE version = '9998'`);
    await c.end();
    expect(t.rows[0].t).toBeNull();
    expect(v.rowCount).toBe(0);
  });
});
