/**
 * What recent failed bearer-token authentications from one client mean for its next request. Tokens
 * are 256-bit random, so guessing one is hopeless; the limit is there so that nobody may try at
 * volume (load on the token index, noise in the logs, a token leaked in part). Past the limit every
 * token-authenticated request from that client is refused until the window ends, the right token
 * included: refusing only the failures would still answer each guess. Pure: counts in, verdict out.
 */

export interface TokenAuthFailures {
  /** failures counted in the current window */
  count: number;
  /** milliseconds until the window ends (Redis PTTL; null when nothing is counted) */
  remainingMs: number | null;
}

export type TokenAuthVerdict = { verdict: 'proceed' } | { verdict: 'throttled'; retryAfterSeconds: number };

/**
 * @example
 * tokenAuthVerdict({ count: 20, remainingMs: 4200 }, { failureLimit: 20, windowSeconds: 900 })
 * // { verdict: 'throttled', retryAfterSeconds: 5 }
 */
export function tokenAuthVerdict(f: TokenAuthFailures, l: { failureLimit: number; windowSeconds: number }): TokenAuthVerdict {
  if (f.count < l.failureLimit) return { verdict: 'proceed' };
  // a counter without an expiry (it never should be) still lets the client back after one window
  const ms = f.remainingMs !== null && f.remainingMs > 0 ? f.remainingMs : l.windowSeconds * 1000;
  return { verdict: 'throttled', retryAfterSeconds: Math.max(1, Math.ceil(ms / 1000)) };
}
