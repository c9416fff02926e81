/**
 * Failed bearer-token authentications (operator, tenant and node tokens) counted per client in Redis
 * (adapters/redis/keys.ts: apiAuthFailureKey), judged by domain/access/token-auth-throttle.ts.
 *
 * The counter is read beside the token lookup, not before it, so a request with a good token waits
 * for the slower of the two reads, never for both in turn; nothing is written for it. A client past
 * the limit gets 429 whatever its token. A counter that cannot be read (Redis away) is 503, never
 * "no failures": an attacker who can make Redis slow must not get unmetered guesses.
 */
import type { AppContext } from '../context.js';
import { apiAuthFailureKey } from '../adapters/redis/keys.js';
import { appErrorFromRedis } from '../adapters/redis/redis.js';
import { tokenAuthVerdict, type TokenAuthFailures } from '../domain/access/token-auth-throttle.js';
import { AppError } from '../domain/shared/errors.js';

const unavailable = (cause?: unknown): AppError =>
  new AppError('DEPENDENCY_UNAVAILABLE', 'Redis is unavailable, so token authentication cannot be metered: try again later', cause === undefined ? {} : { cause });

async function readFailures(ctx: AppContext, key: string): Promise<TokenAuthFailures> {
  if (ctx.redis.status !== 'ready') throw unavailable();
  try {
    const [count, pttl] = await Promise.all([ctx.redis.get(key), ctx.redis.pttl(key)]);
    return { count: Number(count ?? 0), remainingMs: pttl >= 0 ? pttl : count === null ? null : -1 };
  } catch (e) {
    throw appErrorFromRedis(e) ?? unavailable(e);
  }
}

/** Counts one failure; the window starts at the first (the expiry is set only on a new key). */
async function countFailure(ctx: AppContext, key: string): Promise<void> {
  try {
    // one transaction: the key is made with its expiry, then counted
    const replies = await ctx.redis.multi().set(key, '0', 'EX', ctx.config.apiAuthThrottle.windowSeconds, 'NX').incr(key).exec();
    const failed = replies?.find(([e]) => e);
    if (!replies || failed) throw failed?.[0] ?? new Error('the failure count was not written');
  } catch (e) {
    throw appErrorFromRedis(e) ?? unavailable(e);
  }
}

export class TooManyAuthFailures extends AppError {
  constructor(readonly retryAfterSeconds: number) {
    super('TOO_MANY_REQUESTS', `too many failed token authentications from this address: try again in ${retryAfterSeconds} s`, {
      context: { retry_after_seconds: retryAfterSeconds },
    });
  }
}

/**
 * Runs `authenticate` (null: the token was refused) under the failure counter of `client`
 * (domain/access/client-key.ts). Throws TooManyAuthFailures past the limit,
 * DEPENDENCY_UNAVAILABLE when the counter cannot be read or written.
 */
export async function meteredTokenAuth<T>(ctx: AppContext, client: string, authenticate: () => Promise<T | null>): Promise<T | null> {
  const key = apiAuthFailureKey(client);
  const failures = readFailures(ctx, key);
  const outcome = authenticate();
  // both settle before either is judged, so neither rejection goes unhandled
  const [f, o] = await Promise.allSettled([failures, outcome]);
  if (f.status === 'rejected') throw f.reason;
  const verdict = tokenAuthVerdict(f.value, ctx.config.apiAuthThrottle);
  if (verdict.verdict === 'throttled') throw new TooManyAuthFailures(verdict.retryAfterSeconds);
  if (o.status === 'rejected') throw o.reason;
  if (o.value === null) await countFailure(ctx, key);
  return o.value;
}
