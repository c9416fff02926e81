import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EGRESS_STATES, mayCarryExternalMail, nextEgressState, type EgressEvent, type Port25Egress } from './egress.js';

describe('port-25 egress state', () => {
  const table: [Port25Egress, EgressEvent, Port25Egress][] = [
    ['blocked', { kind: 'limit_requested' }, 'requested'],
    ['requested', { kind: 'limit_granted' }, 'open'],
    ['requested', { kind: 'limit_denied' }, 'blocked'],
    ['open', { kind: 'limit_requested' }, 'open'],
    ['blocked', { kind: 'probe', connected: true }, 'open'],
    ['requested', { kind: 'probe', connected: false }, 'requested'],
    ['blocked', { kind: 'probe', connected: false }, 'blocked'],
    ['open', { kind: 'probe', connected: false }, 'blocked'],
    ['open', { kind: 'limit_denied' }, 'blocked'],
  ];
  it.each(table)('%s + %j → %s', (from, ev, to) => expect(nextEgressState(from, ev)).toBe(to));

  const t = 1_700_000_000_000;
  it.each([
    ['blocked project', { projectEgress: 'blocked' as const, lastProbe: { connected: true, atMs: t } }, 'project_egress_blocked'],
    ['requested project', { projectEgress: 'requested' as const, lastProbe: { connected: true, atMs: t } }, 'project_egress_requested'],
    ['open project, node never probed', { projectEgress: 'open' as const, lastProbe: null }, 'node_not_probed'],
    ['open project, node probe failed', { projectEgress: 'open' as const, lastProbe: { connected: false, atMs: t } }, 'node_probe_failed'],
    ['open project, probe two days old', { projectEgress: 'open' as const, lastProbe: { connected: true, atMs: t - 2 * 86_400_000 } }, 'node_probe_stale'],
    ['open project, fresh good probe', { projectEgress: 'open' as const, lastProbe: { connected: true, atMs: t - 1000 } }, null],
  ])('%s', (_n, facts, reason) => {
    const d = mayCarryExternalMail({ ...facts, nowMs: t });
    expect(d.allowed ? null : d.reason).toBe(reason);
  });

  it('property: external mail is only ever allowed when the project is open and the node proved it', () => {
    fc.assert(
      fc.property(fc.constantFrom(...EGRESS_STATES), fc.option(fc.record({ connected: fc.boolean(), atMs: fc.integer({ min: 0, max: 10 ** 12 }) })), fc.integer({ min: 0, max: 10 ** 12 }), (projectEgress, lastProbe, nowMs) => {
        const d = mayCarryExternalMail({ projectEgress, lastProbe, nowMs });
        if (d.allowed) {
          expect(projectEgress).toBe('open');
          expect(lastProbe?.connected).toBe(true);
        }
      }),
    );
  });

  it('property: a failed probe never leaves the project open; a good one always opens it', () => {
    fc.assert(
      fc.property(fc.constantFrom(...EGRESS_STATES), fc.boolean(), (s, connected) => {
        const next = nextEgressState(s, { kind: 'probe', connected });
        expect(next === 'open').toBe(connected);
      }),
    );
  });
});
