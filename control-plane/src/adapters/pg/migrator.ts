/**
 * Forward-only SQL migrations from control-plane/migrations/NNNN_name.sql, each applied once in its own
 * transaction and recorded with its SHA-256. A session advisory lock serialises replicas that start
 * together. An applied migration whose file later changed is refused: history is append-only, and
 * schema.sql (the canonical DDL) is kept equal to the migrations' result by a test. Migrations run as
 * the schema's owner (CP_MIGRATION_DATABASE_URL), never as the application's role.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { projectRoot } from '../../project-root.js';
import { sessionOptions } from './scope.js';

const LOCK_KEY = 0x6b637030; // 'kcp0'

export interface Migration {
  version: string;
  name: string;
  sql: string;
  sha256: string;
}

export interface MigrationReport {
  applied: string[];
  alreadyApplied: string[];
}

export async function loadMigrations(dir = path.join(projectRoot(), 'control-plane', 'migrations')): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => {
      const sql = await readFile(path.join(dir, file), 'utf8');
      return {
        version: file.slice(0, 4),
        name: file.slice(5, -4),
        sql,
        sha256: createHash('sha256').update(sql).digest('hex'),
      };
    }),
  );
}

export async function migrate(databaseUrl: string, migrations?: Migration[]): Promise<MigrationReport> {
  const list = migrations ?? (await loadMigrations());
  // a migration that moves data moves every tenant's: the platform scope (row-level security, 0011)
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'kumo-control-plane-migrate', options: sessionOptions('platform') });
  await client.connect();
  const report: MigrationReport = { applied: [], alreadyApplied: [] };
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    // looked for first: a role that may not create tables (the application's, kcp_app) still finds a
    // current schema current, and fails only on a migration it would have to apply
    const { rows: found } = await client.query<{ exists: boolean }>(`SELECT to_regclass('schema_migrations') IS NOT NULL AS exists`);
    if (!found[0]!.exists) await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    text PRIMARY KEY,
      name       text NOT NULL,
      sha256     text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ version: string; sha256: string }>('SELECT version, sha256 FROM schema_migrations');
    const done = new Map(rows.map((r) => [r.version, r.sha256]));
    for (const m of list) {
      const prior = done.get(m.version);
      if (prior !== undefined) {
        if (prior !== m.sha256) {
          throw new Error(`migration ${m.version}_${m.name} was changed after it was applied; add a new migration instead`);
        }
        report.alreadyApplied.push(m.version);
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)', [m.version, m.name, m.sha256]);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${m.version}_${m.name} failed: ${(e as Error).message}`, { cause: e });
      }
      report.applied.push(m.version);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {});
    await client.end();
  }
  return report;
}
