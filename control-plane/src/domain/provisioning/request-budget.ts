/**
 * The client-side request budget for one provider project.
 *
 * Hetzner Cloud gives each project 3,600 requests per hour, refilled continuously at one per second,
 * and states the budget on every response:
 *   RateLimit-Limit      the bucket's size
 *   RateLimit-Remaining  what is left after this request
 *   RateLimit-Reset      UNIX time (seconds) at which the bucket will be full again
 * Running into the limit costs a 429 `rate_limit_exceeded` and, worse, starves every other process
 * using the same project (API replicas, the worker). So the client keeps its own estimate of the
 * bucket, waits before sending when the estimate says it is empty, and reconciles the estimate with
 * the headers on every answer.
 *
 * This is a token bucket whose balance may go negative: every request reserves one token *when it is
 * scheduled*, so concurrent callers queue up behind each other with increasing waits instead of all
 * waking at once. Pure: callers pass `nowMs` and do the sleeping.
 */

export interface RequestBudget {
  /** bucket size (requests) */
  limit: number;
  /** the documented refill (requests per second); the observed refill is never assumed faster */
  nominalRefillPerSec: number;
  /** the refill rate in use: nominal, or slower when the headers imply it */
  refillPerSec: number;
  /** the balance at `atMs`; negative when reservations are queued */
  tokens: number;
  atMs: number;
  /** no request before this (the provider said so with Retry-After), epoch ms */
  notBeforeMs: number;
}

/** Hetzner Cloud's documented budget. */
export const HETZNER_BUDGET = { limit: 3600, refillPerSec: 1 } as const;

export function createBudget(opts: { limit?: number; refillPerSec?: number; nowMs: number }): RequestBudget {
  const limit = opts.limit ?? HETZNER_BUDGET.limit;
  const rate = opts.refillPerSec ?? HETZNER_BUDGET.refillPerSec;
  if (!(limit > 0) || !(rate > 0)) throw new RangeError('a request budget needs a positive limit and refill rate');
  return { limit, nominalRefillPerSec: rate, refillPerSec: rate, tokens: limit, atMs: opts.nowMs, notBeforeMs: 0 };
}

/** The balance at `nowMs` (refilled since the last change, capped at the limit). */
export function tokensAt(b: RequestBudget, nowMs: number): number {
  const elapsedSec = Math.max(0, nowMs - b.atMs) / 1000;
  return Math.min(b.limit, b.tokens + elapsedSec * b.refillPerSec);
}

/** How long to wait, from `nowMs`, until one more request fits (0 when one fits now). Does not reserve. */
export function waitBeforeNextMs(b: RequestBudget, nowMs: number): number {
  const after = tokensAt(b, nowMs) - 1;
  const forTokens = after >= 0 ? 0 : Math.ceil((-after / b.refillPerSec) * 1000);
  return Math.max(forTokens, b.notBeforeMs - nowMs, 0);
}

/**
 * Reserve one request. The caller sleeps `waitMs`, then sends. Reserving before sleeping is what keeps
 * concurrent callers from overrunning the budget together.
 *
 * @example
 * let b = createBudget({ limit: 2, refillPerSec: 1, nowMs: 0 });
 * ({ budget: b } = reserveRequest(b, 0)); // waitMs 0
 * ({ budget: b } = reserveRequest(b, 0)); // waitMs 0
 * reserveRequest(b, 0).waitMs;            // 1000: the third waits for the refill
 */
export function reserveRequest(b: RequestBudget, nowMs: number): { budget: RequestBudget; waitMs: number } {
  const waitMs = waitBeforeNextMs(b, nowMs);
  return { budget: { ...b, tokens: tokensAt(b, nowMs) - 1, atMs: nowMs }, waitMs };
}

/** The budget headers of one response, parsed (absent or unparsable headers are undefined). */
export interface RateLimitHeaders {
  limit?: number;
  remaining?: number;
  /** UNIX seconds at which the bucket is full again */
  resetEpochSec?: number;
}

/** Parse `RateLimit-*` headers from a lower-cased header map; garbage is ignored rather than trusted. */
export function parseRateLimitHeaders(h: Record<string, string | string[] | undefined>): RateLimitHeaders {
  const num = (name: string): number | undefined => {
    const raw = h[name];
    const v = Number(Array.isArray(raw) ? raw[0] : raw);
    return raw !== undefined && Number.isFinite(v) && v >= 0 ? v : undefined;
  };
  const out: RateLimitHeaders = {};
  const limit = num('ratelimit-limit');
  const remaining = num('ratelimit-remaining');
  const reset = num('ratelimit-reset');
  if (limit !== undefined && limit > 0) out.limit = limit;
  if (remaining !== undefined) out.remaining = remaining;
  if (reset !== undefined) out.resetEpochSec = reset;
  return out;
}

/**
 * Reconcile with what the provider said. The provider's `remaining` only ever lowers our estimate:
 * requests we reserved may still be in flight (the provider has not counted them yet), and other
 * processes share the project (the provider has counted theirs, we had not). The reset time tells the
 * refill rate actually in force: `(limit - remaining)` tokens come back by `reset`.
 */
export function observeHeaders(b: RequestBudget, h: RateLimitHeaders, nowMs: number): RequestBudget {
  const limit = h.limit ?? b.limit;
  let rate = b.nominalRefillPerSec;
  if (h.remaining !== undefined && h.resetEpochSec !== undefined && h.remaining < limit) {
    // Reset is rounded up to a whole second, so the bucket is really full up to a second earlier; take
    // the faster end of that range (the nominal rate still caps it) rather than crawl on tiny budgets.
    const untilFullSec = (h.resetEpochSec * 1000 - nowMs) / 1000 - 1;
    if (untilFullSec > 0) rate = Math.min(rate, (limit - h.remaining) / untilFullSec);
  }
  const estimate = Math.min(tokensAt({ ...b, limit }, nowMs), limit);
  const tokens = h.remaining === undefined ? estimate : Math.min(estimate, h.remaining);
  return { ...b, limit, refillPerSec: rate, tokens, atMs: nowMs };
}

/**
 * The provider refused with 429: the bucket is empty whatever we thought. `RateLimit-Reset` (when the
 * bucket is full) gives the refill rate, hence when the next request fits: for Hetzner's 3,600/hour
 * that is one second, not the full hour until the reset itself. A `Retry-After`, when sent, is a floor.
 */
export function observeRateLimited(b: RequestBudget, h: RateLimitHeaders, nowMs: number, retryAfterMs?: number): RequestBudget {
  const seen = observeHeaders(b, { ...h, remaining: 0 }, nowMs);
  return {
    ...seen,
    tokens: Math.min(seen.tokens, 0),
    notBeforeMs: Math.max(b.notBeforeMs, retryAfterMs !== undefined ? nowMs + retryAfterMs : 0),
  };
}
