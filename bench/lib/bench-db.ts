/**
 * A database of a benchmark's own on the private PostgreSQL, migrated by the schema's owner, dropped
 * afterwards; the benchmark's app connects as kcp_app, so row-level security costs what it costs in
 * production.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../control-plane/src/adapters/pg/migrator.js';
import { adminDatabaseUrl, APP_ROLE, ensureDbRoles, OWNER_ROLE, roleUrl } from '../../control-plane/test/support/db-roles.js';

export interface BenchDatabase {
  /** as the app connects: kcp_app */
  url: string;
  /** as the schema's owner, for DDL of a benchmark's own */
  ownerUrl: string;
  drop(): Promise<void>;
}

export async function createBenchDatabase(): Promise<BenchDatabase> {
  const baseUrl = adminDatabaseUrl();
  if (!baseUrl || !process.env.REDIS_URL) throw new Error('run through `npm run bench`, which starts PostgreSQL and Redis');
  const name = `kcp_bench_${randomBytes(4).toString('hex')}`;
  await ensureDbRoles(baseUrl);
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name} OWNER ${OWNER_ROLE}`);
  await migrate(roleUrl(baseUrl, OWNER_ROLE, name));
  return {
    url: roleUrl(baseUrl, APP_ROLE, name),
    ownerUrl: roleUrl(baseUrl, OWNER_ROLE, name),
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

/** Settings every benchmark shares: fixed bench-only secrets, quiet logs. */
export function benchEnv(databaseUrl: string): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    // migrated already: a benchmark's processes only serve (never the private instance's own database)
    CP_MIGRATION_DATABASE_URL: databaseUrl,
    REDIS_URL: process.env.REDIS_URL!,
    CP_MASTER_KEYS: `b1:${Buffer.alloc(32, 9).toString('base64')}`,
    CP_PSEUDONYM_KEY: 'bench-pseudonym-key-0123456789abcdef',
    CP_POLICY_SIGNING_KEY: Buffer.alloc(32, 3).toString('base64'),
    CP_LOG_LEVEL: 'silent',
    CP_ROLES: 'api,worker',
  };
}
