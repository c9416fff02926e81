import { describe, expect, it } from 'vitest';
import { canTransition, IP_STATES, type IpState, ipCarriesMail } from './ip-lifecycle.js';

describe('IP lifecycle', () => {
  const allowed: [IpState, IpState][] = [
    ['warming', 'active'],
    ['warming', 'quarantined'],
    ['warming', 'retired'],
    ['active', 'warming'],
    ['active', 'quarantined'],
    ['active', 'retired'],
    ['quarantined', 'warming'],
    ['quarantined', 'retired'],
  ];
  const key = (a: string, b: string) => `${a}->${b}`;
  const allowedSet = new Set(allowed.map(([a, b]) => key(a, b)));

  for (const from of IP_STATES) {
    for (const to of IP_STATES) {
      const expected = allowedSet.has(key(from, to));
      it(`${from} -> ${to} is ${expected ? 'allowed' : 'refused'}`, () => {
        expect(canTransition(from, to)).toBe(expected);
      });
    }
  }

  it('never lets a quarantined IP skip warming back to active, and retired is final', () => {
    expect(canTransition('quarantined', 'active')).toBe(false);
    expect(IP_STATES.filter((s) => canTransition('retired', s))).toEqual([]);
  });
});

describe('ipCarriesMail: state, reverse DNS and port-25 egress', () => {
  it('carries mail only when the state does and, for a provisioned IP, FCrDNS and egress hold', () => {
    expect(ipCarriesMail({ state: 'active' })).toBe(true);
    expect(ipCarriesMail({ state: 'warming', readiness: null })).toBe(true);
    expect(ipCarriesMail({ state: 'warming', readiness: { rdnsVerified: true, externalEgress: true } })).toBe(true);
    expect(ipCarriesMail({ state: 'warming', readiness: { rdnsVerified: false, externalEgress: true } })).toBe(false);
    expect(ipCarriesMail({ state: 'active', readiness: { rdnsVerified: true, externalEgress: false } })).toBe(false);
    expect(ipCarriesMail({ state: 'quarantined', readiness: { rdnsVerified: true, externalEgress: true } })).toBe(false);
  });
});
