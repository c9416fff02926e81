import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContext, type AppContext } from '../../src/context.js';
import { createLogger } from '../../src/adapters/logger.js';
import { authenticateBearer, bootstrapFirstOperator } from '../../src/app/api-tokens.js';
import { allocateRedisDb, createTestDatabase, testConfig, type TestDatabase } from '../support/harness.js';

let db: TestDatabase;
let ctx: AppContext;
beforeAll(async () => {
  db = await createTestDatabase();
  ctx = await createContext(testConfig({ DATABASE_URL: db.url, REDIS_URL: await allocateRedisDb() }), { log: createLogger('silent') });
});
afterAll(async () => {
  await ctx?.close();
  await db?.drop();
});

describe('first-start bootstrap', () => {
  it('creates an admin operator once and writes its token to a private file', async () => {
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'kcp-')), 'admin-token');
    expect(await bootstrapFirstOperator(ctx, file)).toBe(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const token = (await readFile(file, 'utf8')).trim();
    const actor = await authenticateBearer(ctx, token);
    expect(actor).toMatchObject({ kind: 'operator', scopes: ['admin'] });
    expect(await bootstrapFirstOperator(ctx, `${file}.2`)).toBeNull();
  });
});
