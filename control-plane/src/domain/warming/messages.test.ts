import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seededRandom } from './planner.js';
import { composeWarming, firstNameOf, parseWarmingMessageId, referencedWarmingIds, spin, warmingMessageId } from './messages.js';

describe('warming messages', () => {
  it('spins nested choices and leaves no braces', () => {
    fc.assert(fc.property(fc.string(), (seed) => {
      const out = spin('{a|{b|c}} and {d|e}', seededRandom(seed));
      expect(out).toMatch(/^(a|b|c) and (d|e)$/);
    }));
  });

  it('varies from one message to the next', () => {
    const rnd = seededRandom('x');
    const texts = new Set(Array.from({ length: 20 }, () => composeWarming({ from: 'jane.doe@a.example', to: 'bob@b.example', parentSubject: null }, rnd).text));
    expect(texts.size).toBeGreaterThan(10);
  });

  it('threads replies under the parent subject', () => {
    const m = composeWarming({ from: 'bob@b.example', to: 'jane.doe@a.example', parentSubject: 'Re: Re: Lunch next week?' }, seededRandom('y'));
    expect(m.subject).toBe('Re: Lunch next week?');
    expect(m.text).toMatch(/^(Hi|Hello|Hey) Jane,|^Jane,/);
    expect(m.text).not.toMatch(/[{}]/);
  });

  it('tags Message-IDs and finds them in references', () => {
    const id = warmingMessageId('0b7f3c1e-1111-4111-8111-123456789abc', '0123456789abcdef', 'a.example');
    expect(parseWarmingMessageId(id)).toEqual({ sendId: '0b7f3c1e-1111-4111-8111-123456789abc', tag: '0123456789abcdef' });
    expect(parseWarmingMessageId('<abc@example.com>')).toBeNull();
    expect(referencedWarmingIds(['<x@y.z> ' + id])).toHaveLength(1);
    expect(firstNameOf('j@x.y')).toBe('J');
  });
});
