import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { budgetNeeded, decideRecipient, smtpReply, type GateFacts } from './gate.js';

const base: GateFacts = {
  recipient: 'someone@gmail.com',
  suppression: null,
  warmingMember: false,
  warmingRemainingToday: 'unlimited',
  trust: { locked: false, score: 82, lockBelow: 70, unlockAt: 75, rehabilitation: null },
  placementHold: null,
  externalBudget: { remaining: 10, nextInSeconds: 0 },
};

describe('the recipient gate', () => {
  it.each<[string, Partial<GateFacts>, string]>([
    ['an ordinary external recipient within budget', {}, 'accept external'],
    ['a suppressed recipient', { suppression: { pattern: '*@gmail.com', scope: 'tenant', reason: 'manual' } }, '550 5.1.1'],
    ['a suppressed recipient, even in the warming network', { suppression: { pattern: 'x@y', scope: 'global', reason: 'complaint' }, warmingMember: true }, '550 5.1.1'],
    ['a warming-network mailbox, even for a locked tenant', { warmingMember: true, trust: { ...base.trust, locked: true, score: 20 } }, 'accept warming'],
    ['a warming-network mailbox past today\'s schedule', { warmingMember: true, warmingRemainingToday: 0 }, '452 4.7.1'],
    ['a warming-network mailbox within today\'s schedule', { warmingMember: true, warmingRemainingToday: 1 }, 'accept warming'],
    ['a warming-network mailbox when the schedule cannot be read (Redis away)', { warmingMember: true, warmingRemainingToday: null }, '451 4.3.0'],
    ['the same for a locked tenant', { warmingMember: true, warmingRemainingToday: null, trust: { ...base.trust, locked: true } }, '451 4.3.0'],
    ['a locked tenant, external', { trust: { locked: true, score: 42.5, lockBelow: 70, unlockAt: 75, rehabilitation: 'Send 400 clean warming messages.' } }, '550 5.7.1'],
    ['an exhausted budget', { externalBudget: { remaining: 0, nextInSeconds: 12.2 } }, '452 4.7.1'],
    ['Redis unreachable', { externalBudget: null }, '451 4.3.0'],
    ['Redis unreachable but the tenant is locked anyway', { externalBudget: null, trust: { ...base.trust, locked: true } }, '550 5.7.1'],
    ['a tenant held in the quarantine pool', { placementHold: 'the tenant is quarantined until 2026-11-23' }, '550 5.7.1'],
    ['a tenant held in quarantine, to a warming mailbox', { placementHold: 'quarantined', warmingMember: true }, 'accept warming'],
  ])('%s', (_n, over, expected) => {
    const d = decideRecipient({ ...base, ...over });
    expect(d.accept ? `accept ${d.lane}` : smtpReply(d).slice(0, 9)).toBe(expected);
  });

  it('says what a locked tenant must do, and when a budget refills', () => {
    const locked = decideRecipient({ ...base, trust: { locked: true, score: 42.5, lockBelow: 70, unlockAt: 75, rehabilitation: 'Send 400 clean warming messages.' } });
    expect(!locked.accept && smtpReply(locked)).toBe('550 5.7.1 external sending is locked: Platform Trust Score 42.5 (locks below 70, unlocks at 75). Send 400 clean warming messages.');
    const budget = decideRecipient({ ...base, externalBudget: { remaining: 0, nextInSeconds: 12.2 } });
    expect(!budget.accept && budget.text).toContain('refills in 13 seconds');
  });

  it('property: never accepts a suppressed recipient, nor external mail without a readable budget, nor warming mail without a readable schedule', () => {
    const warmLeftArb = fc.oneof(fc.constant(null), fc.constant('unlimited' as const), fc.integer({ min: 0, max: 3 }));
    fc.assert(fc.property(fc.boolean(), fc.boolean(), fc.boolean(), fc.option(fc.integer({ min: -5, max: 5 })), warmLeftArb, (suppressed, member, locked, remaining, warmLeft) => {
      const d = decideRecipient({
        ...base,
        suppression: suppressed ? { pattern: 'a@b', scope: 'tenant', reason: 'hard_bounce' } : null,
        warmingMember: member,
        warmingRemainingToday: warmLeft,
        trust: { ...base.trust, locked },
        externalBudget: remaining === null ? null : { remaining, nextInSeconds: 1 },
      });
      if (suppressed) expect(d.accept).toBe(false);
      if (d.accept && d.lane === 'warming') expect(warmLeft === 'unlimited' || (warmLeft !== null && warmLeft > 0)).toBe(true);
      if (d.accept && d.lane === 'external') {
        expect(locked).toBe(false);
        expect(remaining).not.toBeNull();
        expect(remaining!).toBeGreaterThan(0);
      }
    }));
  });

  it('reads the budget only when the decision depends on it, and refuses to guess when it was not read', () => {
    fc.assert(fc.property(fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean(), (suppressed, member, locked, held) => {
      const f: GateFacts = {
        ...base,
        suppression: suppressed ? { pattern: 'a@b', scope: 'tenant', reason: 'hard_bounce' } : null,
        warmingMember: member,
        trust: { ...base.trust, locked },
        placementHold: held ? 'quarantined' : null,
      };
      const { externalBudget: _unused, ...withoutBudget } = f;
      if (budgetNeeded(withoutBudget)) {
        expect(() => decideRecipient(withoutBudget)).toThrow(/not read/);
        expect(decideRecipient({ ...withoutBudget, externalBudget: { remaining: 0, nextInSeconds: 1 } }).accept).toBe(false);
        expect(decideRecipient({ ...withoutBudget, externalBudget: { remaining: 1, nextInSeconds: 0 } }).accept).toBe(true);
      } else {
        // the same answer whatever the budget would have said
        const a = decideRecipient(withoutBudget);
        expect(decideRecipient({ ...withoutBudget, externalBudget: null })).toEqual(a);
        expect(decideRecipient({ ...withoutBudget, externalBudget: { remaining: 5, nextInSeconds: 0 } })).toEqual(a);
      }
    }));
  });

  it('keeps reply lines on one line whatever the message', () => {
    const d = decideRecipient({ ...base, suppression: { pattern: 'x@y', scope: 'tenant', reason: 'evil\r\n250 OK' } });
    expect(!d.accept && smtpReply(d)).not.toMatch(/[\r\n]/);
  });
});
