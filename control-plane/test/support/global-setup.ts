/**
 * Once per test run: a template database migrated to the current schema. Each test file then clones it
 * (CREATE DATABASE … TEMPLATE), which takes milliseconds and gives every file its own database, so
 * files run in parallel without seeing each other's rows. The roles come first (db-roles.ts): the
 * template is migrated by kcp_owner, as production is, and the app's contexts connect as kcp_app.
 */
import type { TestProject } from 'vitest/node';
import pg from 'pg';
import { loadMigrations, migrate } from '../../src/adapters/pg/migrator.js';
import { adminDatabaseUrl, ensureDbRoles, OWNER_ROLE, roleUrl } from './db-roles.js';

export default async function setup(project: TestProject): Promise<void> {
  const url = adminDatabaseUrl();
  if (!url) {
    project.provide('templateDb', '');
    return;
  }
  const migrations = await loadMigrations();
  const { createHash } = await import('node:crypto');
  const digest = createHash('sha256').update(migrations.map((m) => m.sha256).join(',')).digest('hex').slice(0, 12);
  const name = `kcp_tpl_${digest}`;
  await ensureDbRoles(url);
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) {
      const building = `${name}_building_${process.pid}`;
      await admin.query(`CREATE DATABASE ${building} OWNER ${OWNER_ROLE}`);
      await migrate(roleUrl(url, OWNER_ROLE, building), migrations);
      await admin.query(`ALTER DATABASE ${building} RENAME TO ${name}`).catch(async () => {
        // another run built it meanwhile
        await admin.query(`DROP DATABASE IF EXISTS ${building}`);
      });
    }
  } finally {
    await admin.end();
  }
  project.provide('templateDb', name);
}

declare module 'vitest' {
  export interface ProvidedContext {
    templateDb: string;
  }
}
