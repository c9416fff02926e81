/**
 * The Redis side of reading tenants' external budgets: the exact keys kumod writes for their
 * throttles, their stored TATs and Redis's own clock (never ours: nodes and Redis agree on time, we
 * may not), in one round trip however many tenants are asked about. Nothing is written, so a read
 * reserves nothing.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { budget, parseStoredTat, type Budget } from '../../domain/submission/gcra.js';
import { parseThrottleSpec } from '../../domain/policy/throttles.js';
import { externalThrottleName, throttleRedisKey } from './keys.js';

// TIME then GET of each key; a missing key comes back as false (Lua's view of a nil reply)
const READ_SCRIPT = `local t = redis.call('TIME')
local out = { t[1], t[2] }
for i, k in ipairs(KEYS) do out[i + 2] = redis.call('GET', k) end
return out`;
const READ_SHA = createHash('sha1').update(READ_SCRIPT).digest('hex');

export interface BudgetRequest {
  tenantId: string;
  spec: string;
}

export async function readExternalBudgets(redis: Redis, requests: readonly BudgetRequest[]): Promise<(Budget & { key: string })[]> {
  if (requests.length === 0) return [];
  const parsed = requests.map((r) => {
    const spec = parseThrottleSpec(r.spec);
    if (!spec) throw new RangeError(`not a throttle spec: ${r.spec}`);
    return { spec, key: throttleRedisKey(externalThrottleName(r.tenantId), r.spec) };
  });
  // one read-only script: Redis's clock and every key at the same instant, in one small command
  const [secs, micros, ...values] = (await redis.evalsha(READ_SHA, parsed.length, ...parsed.map((p) => p.key)).catch((e: Error) => {
    if (!/NOSCRIPT/.test(e.message)) throw e;
    return redis.eval(READ_SCRIPT, parsed.length, ...parsed.map((p) => p.key));
  })) as [string, string, ...(string | false | null)[]];
  return parsed.map((p, i) => {
    const stored = parseStoredTat(typeof values[i] === 'string' ? (values[i] as string) : null);
    // kumod's own script reads Redis's clock in whole seconds (TIME[1]); redis-cell keeps nanoseconds
    const now = stored?.kind === 'nanoseconds' ? Number(secs) + Number(micros) / 1e6 : Number(secs);
    return { key: p.key, ...budget(stored, now, p.spec) };
  });
}

export async function readExternalBudget(redis: Redis, tenantId: string, spec: string): Promise<Budget & { key: string }> {
  const [b] = await readExternalBudgets(redis, [{ tenantId, spec }]);
  return b!;
}
