/**
 * Test harness: real PostgreSQL (a database per test file, cloned from the migrated template) and real
 * Redis (a logical database per test file), a context built by the same createContext as production,
 * and the HTTP app called in-process. Logs are captured so tests can assert what was (not) logged.
 * The app connects as kcp_app, as in production (db-roles.ts): row-level security holds for every
 * test, so the suite proves that nothing the application does needs to bypass it.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.js';
import { createContext, type AppContext, type ContextOverrides } from '../../src/context.js';
import { createLogger } from '../../src/adapters/logger.js';
import { newApp, type App } from '../../src/http/app.js';
import { createOperator, createOperatorToken } from '../../src/app/api-tokens.js';
import { systemCaller } from '../../src/app/actor.js';
import type { TokenScope } from '../../src/adapters/pg/tables.js';
import { adminDatabaseUrl, APP_ROLE, OWNER_ROLE, roleUrl } from './db-roles.js';

/** `databaseUrl` administers the cluster (creates and drops databases); the app never uses it. */
export function requireServices(): { databaseUrl: string; redisUrl: string } {
  const databaseUrl = adminDatabaseUrl();
  const redisUrl = process.env.REDIS_URL;
  if (!databaseUrl || !redisUrl) {
    throw new Error('integration tests need DATABASE_URL and REDIS_URL: run them through `bash scripts/test.sh`, which starts both');
  }
  return { databaseUrl, redisUrl };
}

export interface TestDatabase {
  /** as the application connects: kcp_app, no scope of its own (the app's pool sets one) */
  url: string;
  /** as the schema's owner, kcp_owner: migrations and DDL */
  ownerUrl: string;
  /** as the cluster's superuser, which row-level security does not hold */
  adminUrl: string;
  name: string;
  drop(): Promise<void>;
}

/** A fresh database owned by kcp_owner: cloned from the migrated template, or empty with `{ empty: true }`. */
export async function createTestDatabase(opts: { empty?: boolean } = {}): Promise<TestDatabase> {
  const { databaseUrl } = requireServices();
  const template = inject('templateDb');
  const name = `kcp_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(opts.empty ? `CREATE DATABASE ${name} OWNER ${OWNER_ROLE}` : `CREATE DATABASE ${name} TEMPLATE ${template} OWNER ${OWNER_ROLE}`);
        break;
      } catch (e) {
        // two files cloning the template at the same instant: PostgreSQL refuses the second; try again
        if (attempt >= 20 || !/being accessed by other users/.test((e as Error).message)) throw e;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
  } finally {
    await admin.end();
  }
  const adminUrl = new URL(databaseUrl);
  adminUrl.pathname = `/${name}`;
  return {
    url: roleUrl(databaseUrl, APP_ROLE, name),
    ownerUrl: roleUrl(databaseUrl, OWNER_ROLE, name),
    adminUrl: adminUrl.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A Redis logical database of this file's own, flushed. */
export async function allocateRedisDb(): Promise<string> {
  const { redisUrl } = requireServices();
  const r = new Redis(redisUrl, { lazyConnect: true });
  await r.connect();
  const n = await r.incr('kcp:test:next-db');
  await r.quit();
  const u = new URL(redisUrl);
  u.pathname = `/${1 + (n % 250)}`;
  const url = u.toString();
  const mine = new Redis(url, { lazyConnect: true });
  await mine.connect();
  await mine.flushdb();
  await mine.quit();
  return url;
}

export const TEST_MASTER_KEY = `t1:${Buffer.alloc(32, 7).toString('base64')}`;
export const TEST_POLICY_SEED = Buffer.alloc(32, 11).toString('base64');

export function testConfig(env: Record<string, string>): Config {
  const result = loadConfig({
    CP_MASTER_KEYS: TEST_MASTER_KEY,
    CP_PSEUDONYM_KEY: 'test-pseudonym-key-0123456789abcdef',
    CP_POLICY_SIGNING_KEY: TEST_POLICY_SEED,
    CP_LOG_LEVEL: 'info',
    CP_DKIM_RSA_BITS: '1024',
    CP_HTTP_PORT: '0',
    CP_ROLES: 'api,worker',
    ...env,
  });
  if (!result.ok) throw new Error(`test config invalid: ${result.error.join('; ')}`);
  return result.value;
}

export interface Harness {
  ctx: AppContext;
  app: App;
  db: TestDatabase;
  /** every log line written so far, parsed */
  logLines(): Record<string, unknown>[];
  logText(): string;
  adminToken: string;
  operatorId: string;
  tokenWith(scopes: TokenScope[]): Promise<string>;
  request(method: string, path: string, opts?: { token?: string | null; body?: unknown; headers?: Record<string, string> }): Promise<Response>;
  close(): Promise<void>;
}

export async function startHarness(env: Record<string, string> = {}, opts: { now?: () => Date; overrides?: ContextOverrides } = {}): Promise<Harness> {
  const db = await createTestDatabase();
  const redisUrl = await allocateRedisDb();
  const config = testConfig({ DATABASE_URL: db.url, REDIS_URL: redisUrl, ...env });
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const ctx = await createContext(config, { ...opts.overrides, log: createLogger(config.logLevel, sink), ...(opts.now ? { now: opts.now } : {}) });
  const app = newApp(ctx);
  const caller = systemCaller('test');
  const op = await createOperator(ctx, caller, { email: `admin-${randomBytes(3).toString('hex')}@example.test`, name: 'Test admin' });
  const admin = await createOperatorToken(ctx, caller, op.id, { name: 'test-admin', scopes: ['admin'] });
  return {
    ctx,
    app,
    db,
    logLines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    logText: () => lines.join('\n'),
    adminToken: admin.token,
    operatorId: op.id,
    async tokenWith(scopes) {
      return (await createOperatorToken(ctx, caller, op.id, { name: `test-${scopes.join('-')}`, scopes })).token;
    },
    request(method, path, opts = {}) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      const token = opts.token === undefined ? admin.token : opts.token;
      if (token) headers.authorization = `Bearer ${token}`;
      let body: string | undefined;
      if (opts.body !== undefined) {
        headers['content-type'] ??= 'application/json';
        body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      }
      return Promise.resolve(app.request(path, { method, headers, body }));
    },
    async close() {
      await ctx.close();
      await db.drop();
    },
  };
}

/** Parse a JSON response, failing with the body when the status is not the expected one. */
export async function expectJson<T = Record<string, any>>(res: Response, status: number): Promise<T> {
  const text = await res.text();
  if (res.status !== status) throw new Error(`expected HTTP ${status}, got ${res.status}: ${text}`);
  return (text === '' ? null : JSON.parse(text)) as T;
}
