/**
 * schema.sql is the canonical DDL and the migrations are how databases get there: a fresh database
 * built by each route must have the same catalog, object for object.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/adapters/pg/migrator.js';
import { projectRoot } from '../../src/project-root.js';
import { createTestDatabase, type TestDatabase } from '../support/harness.js';

const CATALOG_QUERIES: Record<string, string> = {
  columns: `SELECT table_name, column_name, data_type, udt_name, domain_name, is_nullable, column_default, is_identity, identity_generation
              FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
             ORDER BY table_name, column_name`,
  constraints: `SELECT c.conrelid::regclass::text AS rel, c.conname, c.contype, pg_get_constraintdef(c.oid) AS def
                  FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
                 WHERE n.nspname = 'public' AND c.conrelid::regclass::text <> 'schema_migrations'
                 ORDER BY rel, conname`,
  indexes: `SELECT tablename, indexname, indexdef FROM pg_indexes
             WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY tablename, indexname`,
  enums: `SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text AS labels
            FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE n.nspname = 'public' GROUP BY t.typname ORDER BY t.typname`,
  domains: `SELECT t.typname, format_type(t.typbasetype, t.typtypmod) AS base, pg_get_constraintdef(c.oid) AS def
              FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_constraint c ON c.contypid = t.oid
             WHERE n.nspname = 'public' AND t.typtype = 'd' ORDER BY t.typname, def`,
  functions: `SELECT p.proname, pg_get_functiondef(p.oid) AS def FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = 'public' ORDER BY p.proname`,
  triggers: `SELECT tgrelid::regclass::text AS rel, tgname, pg_get_triggerdef(t.oid) AS def FROM pg_trigger t
              WHERE NOT tgisinternal ORDER BY rel, tgname`,
  row_security: `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'schema_migrations' ORDER BY c.relname`,
  policies: `SELECT tablename, policyname, permissive, roles::text, cmd, qual, with_check FROM pg_policies
              WHERE schemaname = 'public' ORDER BY tablename, policyname`,
  grants: `SELECT table_name, grantee, privilege_type FROM information_schema.role_table_grants
            WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
              AND grantee NOT IN (SELECT tableowner FROM pg_tables WHERE schemaname = 'public')
            ORDER BY table_name, grantee, privilege_type`,
};

async function catalog(url: string): Promise<Record<string, unknown[]>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const out: Record<string, unknown[]> = {};
    for (const [name, q] of Object.entries(CATALOG_QUERIES)) out[name] = (await c.query(q)).rows;
    return out;
  } finally {
    await c.end();
  }
}

let fromSchema: TestDatabase;
let fromMigrations: TestDatabase;
beforeAll(async () => {
  [fromSchema, fromMigrations] = await Promise.all([createTestDatabase({ empty: true }), createTestDatabase({ empty: true })]);
});
afterAll(async () => {
  await Promise.all([fromSchema?.drop(), fromMigrations?.drop()]);
});

describe('schema.sql and the migrations', () => {
  it('produce identical catalogs', async () => {
    const ddl = await readFile(path.join(projectRoot(), 'schema.sql'), 'utf8');
    // as production: the schema's owner builds it
    const c = new pg.Client({ connectionString: fromSchema.ownerUrl });
    await c.connect();
    await c.query(ddl);
    await c.end();
    const report = await migrate(fromMigrations.ownerUrl);
    expect(report.applied.length).toBeGreaterThan(0);

    const a = await catalog(fromSchema.ownerUrl);
    const b = await catalog(fromMigrations.ownerUrl);
    for (const name of Object.keys(CATALOG_QUERIES)) {
      expect(b[name], `${name} differ between schema.sql and the migrations`).toEqual(a[name]);
    }
    // the comparison is not vacuous
    expect(a.columns!.length).toBeGreaterThan(100);
    expect(a.constraints!.length).toBeGreaterThan(50);
    // audit_log's two, three per table whose changes the gateway is told of (0008), and provider_projects' two (0014: only its egress state is told)
    expect(a.triggers!.length).toBe(2 + 14 * 3 + 2);
    // every tenant table's two policies (0011), and the app's privileges on every table
    expect(a.policies!.length).toBe(17 * 2);
    expect(a.grants!.length).toBe(28 * 4 + 2);
  });
});
