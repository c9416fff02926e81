import { describe, expect, it } from 'vitest';
import { externalThrottleName, parseThrottleSpec, throttleRedisKey } from './throttles.js';

describe('throttle specs and their Redis keys', () => {
  it.each([
    ['5000/h', { limit: 5000, periodSeconds: 3600, maxBurst: 5000 }],
    ['local:100/m', { limit: 100, periodSeconds: 60, maxBurst: 100 }],
    ['1_000/d,max_burst=1', { limit: 1000, periodSeconds: 86400, maxBurst: 1 }],
    ['20/30min', { limit: 20, periodSeconds: 1800, maxBurst: 20 }],
    ['5/hours', null],
    ['0/h', null],
    ['ten/h', null],
  ])('%s', (spec, parsed) => expect(parseThrottleSpec(spec)).toEqual(parsed));

  it('rebuilds the key kumod writes for make_throttle(name, spec)', () => {
    const t = '11111111-1111-4111-8111-111111111111';
    expect(throttleRedisKey(externalThrottleName(t), '5000/h')).toBe(`lua-user-throttle-kcp-ext-${t}:5000:5000:3600`);
    expect(() => throttleRedisKey('x', 'nonsense')).toThrow();
  });
});
