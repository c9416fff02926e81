/**
 * The budget reader against a real Redis holding keys written the way kumod writes them: a Lua script
 * doing kumod's GCRA step (TIME as now, TAT = max(stored, now), allowed iff now >= TAT + I - B*I,
 * then SET key TAT EX) under the key make_throttle(name, spec) produces.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readExternalBudget } from '../../src/adapters/redis/throttle-reader.js';
import { allocateRedisDb } from '../support/harness.js';

// kumod's algorithm, written for this test (not kumod's code): one GCRA step, like t:throttle()
const GCRA_STEP = `
local limit, period, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local interval = period / limit
local now = tonumber(redis.call('TIME')[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
tat = math.max(tat, now)
local new_tat = tat + interval
if now - (new_tat - burst * interval) >= 0 then
  redis.call('SET', KEYS[1], new_tat, 'EX', math.ceil(new_tat - now))
  return 1
end
return 0`;

let redis: Redis;
beforeAll(async () => {
  redis = new Redis(await allocateRedisDb());
});
afterAll(async () => {
  redis?.disconnect();
});

describe('external budget from kumod\'s throttle keys', () => {
  it('an untouched tenant has its whole burst', async () => {
    const b = await readExternalBudget(redis, '11111111-1111-4111-8111-111111111111', '5000/h');
    expect(b).toMatchObject({ key: 'lua-user-throttle-kcp-ext-11111111-1111-4111-8111-111111111111:5000:5000:3600', remaining: 5000, capacity: 5000 });
  });

  it('sees what kumod consumed, reserves nothing, and agrees with kumod on the last message', async () => {
    const tenant = '22222222-2222-4222-8222-222222222222';
    const spec = '10/h,max_burst=5';
    const key = 'lua-user-throttle-kcp-ext-22222222-2222-4222-8222-222222222222:10:5:3600';
    for (let i = 0; i < 3; i++) expect(await redis.eval(GCRA_STEP, 1, key, 10, 3600, 5)).toBe(1);
    const b = await readExternalBudget(redis, tenant, spec);
    expect(b.key).toBe(key);
    expect(b.remaining).toBe(2);
    // reading twice does not consume
    expect((await readExternalBudget(redis, tenant, spec)).remaining).toBe(2);
    for (let i = 0; i < 2; i++) expect(await redis.eval(GCRA_STEP, 1, key, 10, 3600, 5)).toBe(1);
    const empty = await readExternalBudget(redis, tenant, spec);
    expect(empty.remaining).toBe(0);
    expect(empty.nextInSeconds).toBeGreaterThan(300);
    expect(empty.nextInSeconds).toBeLessThanOrEqual(360);
    expect(await redis.eval(GCRA_STEP, 1, key, 10, 3600, 5)).toBe(0);
    // the key expires when the bucket has drained, as kumod sets it
    expect(await redis.ttl(key)).toBeGreaterThan(1700);
  });

  it("reads the clock as kumod's script does, in whole seconds: it never sees a token kumod would not give", async () => {
    const tenant = '44444444-4444-4444-8444-444444444444';
    const key = 'lua-user-throttle-kcp-ext-44444444-4444-4444-8444-444444444444:1:1:3600';
    // late in a second, a bucket whose one token frees half way through this second: kumod's script
    // (now = TIME[1]) still refuses it; a clock with microseconds would say it is there
    const lateInASecond = async (): Promise<number> => {
      for (;;) {
        const [s, us] = (await redis.time()) as unknown as [string, string];
        if (Number(us) >= 600_000 && Number(us) < 850_000) return Number(s);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    // the read must happen within that same second; a turn of the second during it is tried again
    for (let attempt = 0; ; attempt++) {
      const secs = await lateInASecond();
      await redis.set(key, `${secs}.5`, 'EX', 3600);
      const b = await readExternalBudget(redis, tenant, '1/h,max_burst=1');
      const [after] = (await redis.time()) as unknown as [string];
      if (Number(after) === secs) {
        expect(b.remaining).toBe(0);
        expect(await redis.eval(GCRA_STEP, 1, key, 1, 3600, 1)).toBe(0);
        break;
      }
      expect(attempt, 'five reads in a row crossed a second').toBeLessThan(5);
    }
  });

  it("reads redis-cell's nanosecond format too", async () => {
    const tenant = '33333333-3333-4333-8333-333333333333';
    const [secs] = (await redis.time()) as unknown as [string | number, string | number];
    const key = 'lua-user-throttle-kcp-ext-33333333-3333-4333-8333-333333333333:3600:3600:3600';
    // 100 tokens in use: TAT 100 s ahead, stored as integer nanoseconds
    await redis.set(key, String((BigInt(secs) + 100n) * 1_000_000_000n));
    const b = await readExternalBudget(redis, tenant, '3600/h');
    expect(b.capacity).toBe(3601);
    expect(b.remaining).toBeGreaterThanOrEqual(3500);
    expect(b.remaining).toBeLessThanOrEqual(3502);
  });
});
