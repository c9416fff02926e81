import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IpState } from '../fleet/ip-lifecycle.js';
import { mayCancelIntent, mayDeleteServer, mayForgetNode, planNodeRetirement, QUEUE_REPORT_MAX_AGE_MS, type IntentStatus, type NodeIpFacts } from './lifecycle.js';

const ip = (id: string, state: IpState, fip: string | null = null): NodeIpFacts => ({ id, address: `192.0.2.${id}`, state, providerFloatingIpId: fip });

describe('planNodeRetirement', () => {
  it.each<[string, NodeIpFacts[], string[] | null]>([
    ['no IPs', [], []],
    ['one retired, hand-registered', [ip('1', 'retired')], []],
    ['retired bought and hand-registered', [ip('1', 'retired', '11'), ip('2', 'retired')], ['11']],
    ['a warming IP', [ip('1', 'warming', '11')], null],
    ['an active IP among retired ones', [ip('1', 'retired', '11'), ip('2', 'active')], null],
    ['a quarantined IP', [ip('1', 'quarantined')], null],
  ])('%s', (_name, ips, released) => {
    const plan = planNodeRetirement(ips);
    if (released === null) {
      expect(plan.ok).toBe(false);
      if (!plan.ok) expect(plan.error.holding.map((h) => h.id)).toEqual(ips.filter((i) => i.state !== 'retired').map((i) => i.id));
    } else {
      expect(plan.ok).toBe(true);
      if (plan.ok) {
        expect(plan.value.release.map((r) => r.floatingIpId)).toEqual(released);
        expect(plan.value.removeRows).toEqual(ips.map((i) => i.id));
      }
    }
  });

  it('names each IP it refuses for, with its state and address', () => {
    const plan = planNodeRetirement([ip('1', 'retired', '11'), ip('2', 'active'), ip('3', 'warming', '13')]);
    expect(plan).toEqual({ ok: false, error: { holding: [{ id: '2', address: '192.0.2.2', state: 'active' }, { id: '3', address: '192.0.2.3', state: 'warming' }] } });
  });
});

describe('mayForgetNode', () => {
  it('forgets a hand-registered node', () => expect(mayForgetNode({ providerServerId: null })).toEqual({ ok: true, value: true }));
  it('keeps a bought one, naming its server', () => expect(mayForgetNode({ providerServerId: '42' })).toEqual({ ok: false, error: { providerServerId: '42' } }));
});

describe('mayCancelIntent', () => {
  it.each<[IntentStatus, boolean]>([
    ['pending', true],
    ['done', false],
    // again: a second sweep finds what a run racing the first one bought
    ['cancelled', true],
  ])('%s → %s', (status, allowed) => expect(mayCancelIntent(status).ok).toBe(allowed));
});

describe('mayDeleteServer', () => {
  const now = 1_800_000_000_000;
  it.each([
    ['drained, said a moment ago', { count: 0, atMs: now - 3000 }, false, null],
    ['holds three messages', { count: 3, atMs: now - 3000 }, false, 'holds_messages'],
    ['never said (an older runtime, or never pulled)', null, false, 'not_reported'],
    ['said so too long ago', { count: 0, atMs: now - QUEUE_REPORT_MAX_AGE_MS - 1 }, false, 'report_stale'],
    ['forced, holding mail', { count: 3, atMs: now }, true, null],
    ['forced, never said', null, true, null],
  ] as const)('%s', (_n, queued, force, refusal) => {
    const r = mayDeleteServer({ queued, nowMs: now, force });
    expect(r.ok ? null : r.error.reason).toBe(refusal);
  });

  it('property: without force, a server is deleted only on a recent report of an empty queue', () => {
    fc.assert(
      fc.property(fc.option(fc.record({ count: fc.nat(1000), atMs: fc.integer({ min: now - 10 * QUEUE_REPORT_MAX_AGE_MS, max: now }) })), (queued) => {
        if (mayDeleteServer({ queued, nowMs: now, force: false }).ok) {
          expect(queued!.count).toBe(0);
          expect(now - queued!.atMs).toBeLessThanOrEqual(QUEUE_REPORT_MAX_AGE_MS);
        }
      }),
    );
  });
});
