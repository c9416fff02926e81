/**
 * The Redis side of reading a tenant's external budget: the exact key kumod writes for the tenant's
 * throttle, its stored TAT and Redis's own clock (never ours: nodes and Redis agree on time, we may
 * not), read in one round trip. Nothing is written, so the read reserves nothing.
 */
import type { Redis } from 'ioredis';
import { budget, parseStoredTat, type Budget } from '../../domain/submission/gcra.js';
import { externalThrottleName, parseThrottleSpec, throttleRedisKey } from '../../domain/policy/throttles.js';

export async function readExternalBudget(redis: Redis, tenantId: string, spec: string): Promise<Budget & { key: string }> {
  const parsed = parseThrottleSpec(spec);
  if (!parsed) throw new RangeError(`not a throttle spec: ${spec}`);
  const key = throttleRedisKey(externalThrottleName(tenantId), spec);
  const results = await redis.multi().time().get(key).exec();
  if (!results) throw new Error('redis transaction aborted');
  const [[timeErr, time], [getErr, value]] = results as [[Error | null, [string | number, string | number]], [Error | null, string | null]];
  if (timeErr) throw timeErr;
  if (getErr) throw getErr;
  const now = Number(time[0]) + Number(time[1]) / 1e6;
  return { key, ...budget(parseStoredTat(value), now, parsed) };
}
