import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EGRESS_STATES, mayCarryExternalMail, nextEgressState, PROBE_OUTCOMES, probeVerdict, type EgressEvent, type Port25Egress, type ProbeOutcome, type ProbeVerdict } from './egress.js';

describe('port-25 egress state', () => {
  const table: [Port25Egress, EgressEvent, Port25Egress][] = [
    ['blocked', { kind: 'limit_requested' }, 'requested'],
    ['requested', { kind: 'limit_granted' }, 'open'],
    ['requested', { kind: 'limit_denied' }, 'blocked'],
    ['open', { kind: 'limit_requested' }, 'open'],
    ['blocked', { kind: 'probe', connected: true }, 'open'],
    ['requested', { kind: 'probe', connected: false }, 'requested'],
    ['blocked', { kind: 'probe', connected: false }, 'blocked'],
    // one node's failed probe stops that node, not the project
    ['open', { kind: 'probe', connected: false }, 'open'],
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

  it('property: a good probe always opens the project; a failed one never changes it', () => {
    fc.assert(
      fc.property(fc.constantFrom(...EGRESS_STATES), fc.boolean(), (s, connected) => {
        const next = nextEgressState(s, { kind: 'probe', connected });
        expect(next).toBe(connected ? 'open' : s);
      }),
    );
  });

  it('property: only limit_denied closes an open project', () => {
    const events: EgressEvent[] = [{ kind: 'limit_requested' }, { kind: 'limit_granted' }, { kind: 'limit_denied' }, { kind: 'probe', connected: true }, { kind: 'probe', connected: false }];
    fc.assert(
      fc.property(fc.constantFrom(...events), (ev) => {
        expect(nextEgressState('open', ev) !== 'open').toBe(ev.kind === 'limit_denied');
      }),
    );
  });
});

describe('a probe\'s verdict', () => {
  const table: [ProbeOutcome[], ProbeVerdict][] = [
    [['greeted'], 'connected'],
    [['timed_out', 'timed_out', 'greeted'], 'connected'],
    // a handshake without an SMTP reply is no evidence either way
    [['connected'], 'inconclusive'],
    [['connected', 'no_address'], 'inconclusive'],
    [['refused', 'connected'], 'blocked'],
    [['timed_out', 'timed_out', 'timed_out'], 'blocked'],
    [['unreachable'], 'blocked'],
    [['refused', 'no_address'], 'blocked'],
    [['no_address', 'no_address'], 'inconclusive'],
    [['error'], 'inconclusive'],
    [['no_address', 'error'], 'inconclusive'],
    [[], 'inconclusive'],
  ];
  it.each(table)('%j → %s', (outcomes, verdict) => expect(probeVerdict(outcomes)).toBe(verdict));

  it('property: the order of attempts never matters, and one SMTP reply is enough', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...PROBE_OUTCOMES), { maxLength: 8 }), (outcomes) => {
        const v = probeVerdict(outcomes);
        expect(probeVerdict([...outcomes].reverse())).toBe(v);
        expect(v === 'connected').toBe(outcomes.includes('greeted'));
      }),
    );
  });
});
