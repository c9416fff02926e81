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

/**
 * The client a failure is counted against: an IPv4 address as it is (an IPv4-mapped IPv6 address as
 * its IPv4), an IPv6 address as its /64, written as the first four groups.
 *
 * @example
 * tokenAuthClient('::ffff:203.0.113.7') // 'ip:203.0.113.7'
 * tokenAuthClient('2001:db8:0:1::42')    // 'ip6:2001:db8:0:1::/64'
 */
export function tokenAuthClient(address: string | null | undefined): string {
  if (!address) return 'unknown';
  const a = address.toLowerCase().replace(/%.*$/, '');
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (mapped) return `ip:${mapped[1]}`;
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(a)) return `ip:${a}`;
  if (!a.includes(':')) return 'unknown';
  const [head, tail] = a.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  const first = groups.slice(0, 4).map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? g.replace(/^0+(?=.)/, '') : '0'));
  while (first.length < 4) first.push('0');
  return `ip6:${first.join(':')}::/64`;
}
