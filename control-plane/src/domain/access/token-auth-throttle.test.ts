import { describe, expect, it } from 'vitest';
import { clientKey } from './client-key.js';
import { tokenAuthVerdict } from './token-auth-throttle.js';

const limits = { failureLimit: 3, windowSeconds: 60 };

describe('tokenAuthVerdict', () => {
  it.each([
    [{ count: 0, remainingMs: null }, { verdict: 'proceed' }],
    [{ count: 2, remainingMs: 1000 }, { verdict: 'proceed' }],
    [{ count: 3, remainingMs: 4200 }, { verdict: 'throttled', retryAfterSeconds: 5 }],
    [{ count: 9, remainingMs: 10 }, { verdict: 'throttled', retryAfterSeconds: 1 }],
    // a counter that lost its expiry still ends after a window
    [{ count: 3, remainingMs: -1 }, { verdict: 'throttled', retryAfterSeconds: 60 }],
  ] as const)('%j -> %j', (f, want) => {
    expect(tokenAuthVerdict(f, limits)).toEqual(want);
  });
});

describe('clientKey', () => {
  it.each([
    ['203.0.113.7', 'ip:203.0.113.7'],
    ['::ffff:203.0.113.7', 'ip:203.0.113.7'],
    ['::1', 'ip6:0:0:0:0::/64'],
    ['2001:db8:0:1::42', 'ip6:2001:db8:0:1::/64'],
    ['2001:0db8:0000:0001:ffff:1:2:3', 'ip6:2001:db8:0:1::/64'],
    ['2001:db8::', 'ip6:2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'ip6:fe80:0:0:0::/64'],
    [undefined, 'unknown'],
    ['', 'unknown'],
  ])('%s -> %s', (a, want) => {
    expect(clientKey(a)).toBe(want);
  });
});
