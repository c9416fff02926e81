import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContext } from '../../src/context.js';
import { createLogger } from '../../src/adapters/logger.js';
import { openDkimPrivateKey } from '../../src/app/sending-domains.js';
import { resealDkimKeysJob } from '../../src/app/jobs/reseal-dkim-keys.js';
import { runJobOnce, type Job } from '../../src/worker/job-runner.js';
import { expectJson, startHarness, TEST_MASTER_KEY, testConfig, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

describe('background jobs', () => {
  it('re-seal DKIM keys under a rotated master key, in batches, without changing them', async () => {
    const t = await expectJson(await h.request('POST', '/v1/tenants', { body: { slug: 'rekey', display_name: 'R' } }), 201);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await expectJson(await h.request('POST', `/v1/tenants/${t.id}/domains`, { body: { domain: `d${i}.rekey.example` } }), 201)).id);
    const before = await Promise.all(ids.map((id) => openDkimPrivateKey(h.ctx, id)));

    const newKey = `t2:${randomBytes(32).toString('base64')}`;
    const rotated = await createContext(
      testConfig({ DATABASE_URL: h.db.url, REDIS_URL: h.ctx.config.redisUrl, CP_MASTER_KEYS: `${newKey},${TEST_MASTER_KEY}` }),
      { log: createLogger('silent') },
    );
    try {
      const job = resealDkimKeysJob(2, 0);
      for (let i = 0; i < 3; i++) expect(await runJobOnce(rotated, job)).toBe('ran');
      const keyIds = await rotated.db.selectFrom('sending_domains').select('dkim_key_id').execute();
      expect(keyIds.every((r) => r.dkim_key_id === 't2')).toBe(true);
      expect(await Promise.all(ids.map((id) => openDkimPrivateKey(rotated, id)))).toEqual(before);
      // the old key is no longer needed: a context with only the new key opens everything
      const onlyNew = await createContext(testConfig({ DATABASE_URL: h.db.url, REDIS_URL: h.ctx.config.redisUrl, CP_MASTER_KEYS: newKey }), { log: createLogger('silent') });
      expect(await openDkimPrivateKey(onlyNew, ids[0]!)).toBe(before[0]);
      await onlyNew.close();
      const audit = await expectJson(await h.request('GET', '/v1/audit-log?action=secrets.reseal'), 200);
      expect(audit.items.reduce((n: number, e: { details: { count: number } }) => n + e.details.count, 0)).toBe(5);
    } finally {
      await rotated.close();
    }
  });

  it('run on one replica at a time: a second runner skips while the first holds the job', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    let runs = 0;
    const slow: Job = {
      name: `slow-${randomBytes(3).toString('hex')}`,
      intervalMs: 0,
      async run() {
        runs++;
        started();
        await gate;
        return { didWork: true };
      },
    };
    const other = await createContext(h.ctx.config, { log: createLogger('silent') });
    try {
      const first = runJobOnce(h.ctx, slow);
      await running;
      expect(await runJobOnce(other, slow)).toBe('skipped_locked');
      release();
      expect(await first).toBe('ran');
      expect(await runJobOnce(other, slow)).toBe('ran');
      expect(runs).toBe(2);
    } finally {
      await other.close();
    }
  });
});
