/**
 * What recent AUTH failures mean for the next attempt. Locking a username out wherever the attempt
 * comes from would be a lever: anyone who knows a tenant's username could lock its mail out with five
 * wrong passwords. So lockouts are per (username, client IP) pair and per client IP (one source
 * guessing at many usernames), and a username with many failures from anywhere is only slowed down:
 * every attempt for it waits first, the right password included (a wait only on failures would tell
 * an attacker to stop listening early), doubling per failure up to a ceiling. Pure: counts in,
 * verdict out.
 */

/** The first wait once a username reaches the failure limit; doubled by each failure after it. */
export const FIRST_DELAY_MS = 250;

export interface AuthFailureCounts {
  /** failures of this username from this client IP */
  pair: number;
  /** failures from this client IP, any username */
  source: number;
  /** failures of this username from anywhere */
  user: number;
}

export interface AuthThrottleLimits {
  pairLimit: number;
  sourceLimit: number;
  maxDelayMs: number;
}

export type AuthThrottle = { verdict: 'locked_out' } | { verdict: 'proceed'; delayMs: number };

/**
 * @example
 * authThrottle({ pair: 0, source: 0, user: 7 }, { pairLimit: 5, sourceLimit: 20, maxDelayMs: 5000 })
 * // { verdict: 'proceed', delayMs: 1000 }  (250 ms doubled twice: failures 5, 6 and 7)
 */
export function authThrottle(c: AuthFailureCounts, l: AuthThrottleLimits): AuthThrottle {
  if (c.pair >= l.pairLimit || c.source >= l.sourceLimit) return { verdict: 'locked_out' };
  if (c.user < l.pairLimit) return { verdict: 'proceed', delayMs: 0 };
  const doublings = Math.min(c.user - l.pairLimit, 30);
  return { verdict: 'proceed', delayMs: Math.min(l.maxDelayMs, FIRST_DELAY_MS * 2 ** doublings) };
}
