/** What a gate-fact notification says; anything it cannot read drops everything rather than nothing. */
import { describe, expect, it } from 'vitest';
import { parseGateFactChange } from '../../src/adapters/pg/change-feed.js';

describe('parseGateFactChange', () => {
  it.each<[string | undefined, unknown]>([
    ['{"scope": "tenant", "tenant": "6F1C2A3B-0000-4000-8000-000000000001"}', { scope: 'tenant', tenant: '6f1c2a3b-0000-4000-8000-000000000001' }],
    ['{"scope": "fleet"}', { scope: 'fleet' }],
    ['{"scope": "networks"}', { scope: 'networks' }],
    ['{"scope": "peers"}', { scope: 'peers' }],
    ['{"scope": "all"}', { scope: 'all' }],
    ['{"scope": "tenant"}', { scope: 'all' }],
    ['{"scope": "tenant", "tenant": "not-a-uuid"}', { scope: 'all' }],
    ['{"scope": "something new"}', { scope: 'all' }],
    ['not json', { scope: 'all' }],
    [undefined, { scope: 'all' }],
  ])('%s', (payload, expected) => {
    expect(parseGateFactChange(payload)).toEqual(expected);
  });
});
