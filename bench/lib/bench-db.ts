/** A database of a benchmark's own on the private PostgreSQL, migrated, dropped afterwards. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../control-plane/src/adapters/pg/migrator.js';

export interface BenchDatabase {
  url: string;
  drop(): Promise<void>;
}

export async function createBenchDatabase(): Promise<BenchDatabase> {
  const baseUrl = process.env.DATABASE_URL;
  if (!baseUrl || !process.env.REDIS_URL) throw new Error('run through `npm run bench`, which starts PostgreSQL and Redis');
  const name = `kcp_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(baseUrl);
  u.pathname = `/${name}`;
  await migrate(u.toString());
  return {
    url: u.toString(),
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
    REDIS_URL: process.env.REDIS_URL!,
    CP_MASTER_KEYS: `b1:${Buffer.alloc(32, 9).toString('base64')}`,
    CP_PSEUDONYM_KEY: 'bench-pseudonym-key-0123456789abcdef',
    CP_POLICY_SIGNING_KEY: Buffer.alloc(32, 3).toString('base64'),
    CP_LOG_LEVEL: 'silent',
    CP_ROLES: 'api,worker',
  };
}
