import { describe, expect, it } from 'vitest';
import { authThrottle, type AuthFailureCounts } from './auth-throttle.js';

const limits = { pairLimit: 5, sourceLimit: 20, maxDelayMs: 5000 };

describe('AUTH throttle', () => {
  it.each<[string, AuthFailureCounts, string]>([
    ['no failures', { pair: 0, source: 0, user: 0 }, 'proceed 0'],
    ['a few failures of the username elsewhere', { pair: 0, source: 0, user: 4 }, 'proceed 0'],
    ['the username at the limit from many sources: slowed, not locked', { pair: 1, source: 1, user: 5 }, 'proceed 250'],
    ['two failures past it', { pair: 0, source: 0, user: 7 }, 'proceed 1000'],
    ['far past it: the ceiling', { pair: 0, source: 0, user: 500 }, 'proceed 5000'],
    ['this pair at the limit', { pair: 5, source: 5, user: 5 }, 'locked_out'],
    ['this source at its limit, other usernames', { pair: 0, source: 20, user: 0 }, 'locked_out'],
    ['this source just under its limit', { pair: 4, source: 19, user: 4 }, 'proceed 0'],
  ])('%s', (_n, counts, expected) => {
    const t = authThrottle(counts, limits);
    expect(t.verdict === 'proceed' ? `proceed ${t.delayMs}` : t.verdict).toBe(expected);
  });

  it('never locks a username out by its own count alone', () => {
    for (let user = 0; user < 10_000; user += 97) expect(authThrottle({ pair: 0, source: 0, user }, limits).verdict).toBe('proceed');
  });
});
