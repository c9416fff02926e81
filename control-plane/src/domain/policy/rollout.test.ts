import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../settings/settings.js';
import {
  chooseCanaries,
  decideRollout,
  judgeCanary,
  nextPending,
  NO_RECORDS,
  urgentReasons,
  type ActiveRollout,
  type DirtyNode,
  type RecordCounts,
  type RolloutFacts,
  type SafetyDigest,
} from './rollout.js';

const S = DEFAULT_SETTINGS.policy_rollout;
const T0 = new Date('2026-12-01T12:00:00Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const n1: DirtyNode = { nodeId: 'n1', name: 'fsn1-a', canary: false };
const n2: DirtyNode = { nodeId: 'n2', name: 'fsn1-b', canary: true };
const n3: DirtyNode = { nodeId: 'n3', name: 'hel1-a', canary: false };

const digest = (d: Partial<SafetyDigest>): SafetyDigest => ({ held: [], carrying: ['ip-1', 'ip-2'], tenants: ['t1', 't2'], ...d });

describe('urgent changes', () => {
  it.each<[string, SafetyDigest | null, SafetyDigest, number]>([
    ['a tenant newly held back', digest({}), digest({ held: ['t1'] }), 1],
    ['a tenant gone (suspended)', digest({}), digest({ tenants: ['t2'] }), 1],
    ['a source that stops carrying mail', digest({}), digest({ carrying: ['ip-1'] }), 1],
    ['both at once', digest({}), digest({ held: ['t2'], carrying: [] }), 3],
    ['a tenant released', digest({ held: ['t1'] }), digest({}), 0],
    ['a held tenant that goes away', digest({ held: ['t1'] }), digest({ tenants: ['t2'] }), 0],
    ['a new tenant, held from the start', digest({}), digest({ tenants: ['t1', 't2', 't3'], held: ['t3'] }), 0],
    ['a new source', digest({}), digest({ carrying: ['ip-1', 'ip-2', 'ip-3'] }), 0],
    ['a node with no digest before (nothing to compare)', null, digest({ held: ['t1'] }), 0],
  ])('%s', (_n, before, after, count) => {
    const reasons = urgentReasons('fsn1-a', before, after);
    expect(reasons).toHaveLength(count);
    for (const r of reasons) expect(r).toMatch(/^fsn1-a: /);
  });
});

const counts = (c: Partial<RecordCounts>): RecordCounts => ({ ...NO_RECORDS, ...c });

describe('judging the canaries', () => {
  it.each<[string, RecordCounts, RecordCounts, string, RegExp | null]>([
    ['steady', counts({ delivered: 950, bounced: 10, deferred: 40 }), counts({ delivered: 95, bounced: 1, deferred: 4 }), 'healthy', null],
    ['hard bounces up 5 points', counts({ delivered: 990, bounced: 10 }), counts({ delivered: 94, bounced: 6 }), 'degraded', /hard-bounce rate 6% against a baseline of 1%/],
    ['deferrals up 20 points', counts({ delivered: 1000 }), counts({ delivered: 80, deferred: 20 }), 'degraded', /deferral rate 20%/],
    ['the node refusing mail it used to take', counts({ delivered: 1000 }), counts({ delivered: 90, errors: 10 }), 'degraded', /error rate 10%/],
    ['a quiet baseline counts as zero: within the allowances', counts({ delivered: 3, bounced: 3 }), counts({ delivered: 99, bounced: 1 }), 'healthy', null],
    ['a quiet baseline counts as zero: beyond them', counts({ delivered: 3 }), counts({ delivered: 95, bounced: 5 }), 'degraded', /baseline of 0%/],
    ['too few records to judge', counts({ delivered: 1000 }), counts({ delivered: 10, bounced: 10 }), 'not_enough_records', /20 delivery records from the canaries, 50 needed/],
  ])('%s', (_n, baseline, soak, verdict, finding) => {
    const v = judgeCanary({ baseline, soak }, S);
    expect(v.verdict).toBe(verdict);
    if (finding) expect(v.findings.join('\n')).toMatch(finding);
    else expect(v.findings).toEqual([]);
  });

  it('more deliveries in the soak never turn a healthy canary into a degraded one', () => {
    const c = fc.record({ delivered: fc.nat(5000), bounced: fc.nat(500), deferred: fc.nat(500), expired: fc.nat(50), errors: fc.nat(50) });
    fc.assert(
      fc.property(c, c, fc.nat(5000), (baseline, soak, more) => {
        const before = judgeCanary({ baseline, soak }, S);
        const after = judgeCanary({ baseline, soak: { ...soak, delivered: soak.delivered + more } }, S);
        return !(before.verdict === 'healthy' && after.verdict === 'degraded');
      }),
    );
  });
});

describe('choosing canaries', () => {
  it('takes nodes marked canary first, then the others by name', () => {
    expect(chooseCanaries([n3, n1, n2], 2).map((n) => n.nodeId)).toEqual(['n2', 'n1']);
    expect(chooseCanaries([n3, n1], 1).map((n) => n.nodeId)).toEqual(['n1']);
    expect(chooseCanaries([n1], 3).map((n) => n.nodeId)).toEqual(['n1']);
  });
});

const facts = (over: Partial<RolloutFacts> & { now: Date }): RolloutFacts => ({
  settings: S,
  autopilot: { paused: false, skippedSha: null, pending: null },
  render: { sha: A, dirty: [n1, n2, n3], bootstrap: [], urgent: [] },
  active: null,
  health: null,
  ...over,
});

const rollout = (over: Partial<ActiveRollout>): ActiveRollout => ({
  id: '7',
  state: 'canary',
  urgent: false,
  renderSha: A,
  createdAt: at(0),
  canaryAppliedAt: null,
  promotedAt: null,
  nodes: [
    { nodeId: 'n2', name: 'fsn1-b', canary: true, applied: false, installError: null },
    { nodeId: 'n1', name: 'fsn1-a', canary: false, applied: false, installError: null },
  ],
  ...over,
});

describe('the autopilot, step by step', () => {
  it('a first change is tracked, waits out the debounce, then goes to the canary', () => {
    const first = decideRollout(facts({ now: at(0) }));
    expect(first).toEqual({ kind: 'track', pending: { sha: A, since: at(0), changedAt: at(0) }, why: 'waiting for the change to settle' });
    const pending = { sha: A, since: at(0), changedAt: at(0) };
    expect(decideRollout(facts({ now: at(10), autopilot: { paused: false, skippedSha: null, pending } })).kind).toBe('wait');
    const start = decideRollout(facts({ now: at(30), autopilot: { paused: false, skippedSha: null, pending } }));
    expect(start).toMatchObject({ kind: 'start', urgent: false, supersede: null });
    if (start.kind === 'start') {
      expect(start.canaries.map((c) => c.nodeId)).toEqual(['n2']);
      expect(start.nodes).toHaveLength(3);
    }
  });

  it('a change that keeps changing restarts the debounce, but not beyond the longest delay', () => {
    const pending = { sha: B, since: at(0), changedAt: at(25) };
    const moved = decideRollout(facts({ now: at(40), autopilot: { paused: false, skippedSha: null, pending } }));
    expect(moved).toEqual({ kind: 'track', pending: { sha: A, since: at(0), changedAt: at(40) }, why: 'waiting for the change to settle' });
    const overdue = decideRollout(facts({ now: at(300), autopilot: { paused: false, skippedSha: null, pending: { sha: A, since: at(0), changedAt: at(295) } } }));
    expect(overdue).toMatchObject({ kind: 'start', reasons: ['pending for 300 s'] });
  });

  it('an urgent change goes to every node it changes within its delay, with no canary', () => {
    const urgent = { sha: A, dirty: [n1, n2], bootstrap: [], urgent: ['fsn1-a: tenant t1 is held back from external sending'] };
    expect(decideRollout(facts({ now: at(0), render: urgent })).kind).toBe('track');
    const pending = { sha: A, since: at(0), changedAt: at(0) };
    const step = decideRollout(facts({ now: at(5), render: urgent, autopilot: { paused: false, skippedSha: null, pending } }));
    expect(step).toMatchObject({ kind: 'start', urgent: true, canaries: [], supersede: null });
    // with a delay of 0 the first tick that sees it starts it
    expect(decideRollout(facts({ now: at(0), render: urgent, settings: { ...S, urgent_delay_seconds: 0 } })).kind).toBe('start');
  });

  it('an urgent change never waits longer than an ordinary one, and never goes through the canaries', () => {
    const urgent = { sha: A, dirty: [n1, n2], bootstrap: [], urgent: ['fsn1-a: tenant t1 is held back from external sending'] };
    const settings = { ...S, debounce_seconds: 2, urgent_delay_seconds: 5 };
    const pending = { sha: A, since: at(0), changedAt: at(0) };
    expect(decideRollout(facts({ now: at(1), render: urgent, settings, autopilot: { paused: false, skippedSha: null, pending } })).kind).toBe('wait');
    expect(decideRollout(facts({ now: at(2), render: urgent, settings, autopilot: { paused: false, skippedSha: null, pending } }))).toMatchObject({ kind: 'start', urgent: true, canaries: [] });
  });

  it('property: a change with an urgent part, once it starts, starts urgent and on every node it changes', () => {
    const node = fc.record({ nodeId: fc.constantFrom('n1', 'n2', 'n3'), name: fc.constantFrom('a', 'b', 'c'), canary: fc.boolean() });
    fc.assert(
      fc.property(fc.array(node, { minLength: 1, maxLength: 3 }), fc.nat(400), fc.nat(400), fc.nat(60), fc.nat(60), (dirty, since, changed, debounce, delay) => {
        const pending = { sha: A, since: at(0), changedAt: at(Math.min(since, changed)) };
        const settings = { ...S, debounce_seconds: debounce, urgent_delay_seconds: delay };
        const step = decideRollout(facts({ now: at(since + changed), settings, render: { sha: A, dirty, bootstrap: [], urgent: ['a: tenant t is held back'] }, autopilot: { paused: false, skippedSha: null, pending } }));
        if (step.kind !== 'start') return true;
        return step.urgent && step.canaries.length === 0 && step.nodes.length === dirty.length;
      }),
    );
  });

  it('a canary that refused the module is rolled back even when an urgent change arrives: the urgent one never carries it', () => {
    const render = { sha: B, dirty: [n1, n2], bootstrap: [], urgent: ['fsn1-a: tenant t1 is held back from external sending'] };
    const refused = rollout({ nodes: [{ nodeId: 'n2', name: 'fsn1-b', canary: true, applied: false, installError: 'module does not validate' }, { nodeId: 'n1', name: 'fsn1-a', canary: false, applied: false, installError: null }] });
    const step = decideRollout(facts({ now: at(60), render, active: refused, autopilot: { paused: false, skippedSha: null, pending: { sha: B, since: at(0), changedAt: at(0) } } }));
    expect(step.kind).toBe('rollback');
  });

  it('an urgent change overtakes an urgent rollout still waiting for a node that is down', () => {
    const render = { sha: B, dirty: [n1, n2], bootstrap: [], urgent: ['fsn1-a: tenant t2 is held back from external sending'] };
    const stuck = rollout({ urgent: true, state: 'promoting', promotedAt: at(0), nodes: [{ nodeId: 'n1', name: 'fsn1-a', canary: false, applied: true, installError: null }, { nodeId: 'n2', name: 'fsn1-b', canary: false, applied: false, installError: null }] });
    const step = decideRollout(facts({ now: at(90), render, active: stuck, autopilot: { paused: false, skippedSha: null, pending: { sha: B, since: at(80), changedAt: at(80) } } }));
    expect(step).toMatchObject({ kind: 'start', urgent: true, supersede: '7' });
  });

  it('an urgent change overtakes a rollout in progress', () => {
    const render = { sha: B, dirty: [n1, n2], bootstrap: [], urgent: ['fsn1-a: source ip-1 no longer carries mail'] };
    const soaking = rollout({ state: 'soaking', canaryAppliedAt: at(20), nodes: [{ nodeId: 'n2', name: 'fsn1-b', canary: true, applied: true, installError: null }, { nodeId: 'n1', name: 'fsn1-a', canary: false, applied: false, installError: null }] });
    const step = decideRollout(facts({ now: at(100), render, active: soaking, autopilot: { paused: false, skippedSha: null, pending: { sha: B, since: at(90), changedAt: at(90) } } }));
    expect(step).toMatchObject({ kind: 'start', urgent: true, supersede: '7' });
  });

  it('a newer, ordinary change waits for the rollout in progress, its debounce tracked', () => {
    const render = { sha: B, dirty: [n1, n2], bootstrap: [], urgent: [] };
    const step = decideRollout(facts({ now: at(100), render, active: rollout({}) }));
    expect(step).toEqual({ kind: 'track', pending: { sha: B, since: at(100), changedAt: at(100) }, why: 'waiting for the canaries to apply the new version' });
  });

  it.each<[string, Partial<ActiveRollout>, Partial<RolloutFacts>, string, RegExp | null]>([
    ['canary not applied yet', {}, { now: at(60) }, 'wait', /waiting for the canaries/],
    ['canary applied', { nodes: [{ nodeId: 'n2', name: 'fsn1-b', canary: true, applied: true, installError: null }] }, { now: at(60) }, 'canary_applied', null],
    ['canary refused the module', { nodes: [{ nodeId: 'n2', name: 'fsn1-b', canary: true, applied: false, installError: 'signature does not verify' }] }, { now: at(20) }, 'rollback', /fsn1-b refused the new version: signature/],
    ['canary did not apply in time', {}, { now: at(300) }, 'rollback', /did not report running the new version within 300 s/],
    ['soaking, healthy, soak not over', { state: 'soaking', canaryAppliedAt: at(10), nodes: [{ nodeId: 'n2', name: 'fsn1-b', canary: true, applied: true, installError: null }] }, { now: at(300), health: { baseline: counts({ delivered: 1000 }), soak: counts({ delivered: 100 }) } }, 'wait', /soaking: 310 s left/],
    ['soaking, degraded before the soak is over', { state: 'soaking', canaryAppliedAt: at(10), nodes: [{ nodeId: 'n2', name: 'fsn1-b', canary: true, applied: true, installError: null }] }, { now: at(60), health: { baseline: counts({ delivered: 1000 }), soak: counts({ delivered: 80, bounced: 20 }) } }, 'rollback', /the canaries degraded: hard-bounce/],
    ['soaking, the canary fell back', { state: 'soaking', canaryAppliedAt: at(10), nodes: [{ nodeId: 'n2', name: 'fsn1-b', canary: true, applied: false, installError: null }] }, { now: at(60) }, 'rollback', /stopped running the new version/],
    ['soaked and healthy', { state: 'soaking', canaryAppliedAt: at(10), nodes: [{ nodeId: 'n2', name: 'fsn1-b', canary: true, applied: true, installError: null }] }, { now: at(610), health: { baseline: counts({ delivered: 1000 }), soak: counts({ delivered: 100 }) } }, 'promote', /stayed healthy for 600 s/],
    ['soaked with too little traffic to judge', { state: 'soaking', canaryAppliedAt: at(10), nodes: [{ nodeId: 'n2', name: 'fsn1-b', canary: true, applied: true, installError: null }] }, { now: at(610), health: { baseline: NO_RECORDS, soak: counts({ delivered: 3 }) } }, 'promote', /without enough traffic to judge/],
    ['soaked, but paused', { state: 'soaking', canaryAppliedAt: at(10), nodes: [{ nodeId: 'n2', name: 'fsn1-b', canary: true, applied: true, installError: null }] }, { now: at(610), autopilot: { paused: true, skippedSha: null, pending: null } }, 'wait', /paused/],
    ['promoting, all applied', { state: 'promoting', promotedAt: at(600), nodes: [{ nodeId: 'n2', name: 'fsn1-b', canary: true, applied: true, installError: null }, { nodeId: 'n1', name: 'fsn1-a', canary: false, applied: true, installError: null }] }, { now: at(610) }, 'finish', /every node/],
    ['promoting, one late past the timeout', { state: 'promoting', promotedAt: at(600), nodes: [{ nodeId: 'n2', name: 'fsn1-b', canary: true, applied: true, installError: null }, { nodeId: 'n1', name: 'fsn1-a', canary: false, applied: false, installError: null }] }, { now: at(900) }, 'finish', /1 node\(s\) did not report .*: fsn1-a/],
  ])('%s', (_n, r, f, kind, why) => {
    const step = decideRollout(facts({ render: { sha: A, dirty: [n1], bootstrap: [], urgent: [] }, active: rollout(r), ...f } as RolloutFacts));
    expect(step.kind).toBe(kind);
    if (why) expect(JSON.stringify(step)).toMatch(why);
  });

  it('paused: the change is tracked but never started; skipped: nothing happens until the state changes', () => {
    const paused = { paused: true, skippedSha: null, pending: { sha: A, since: at(0), changedAt: at(0) } };
    expect(decideRollout(facts({ now: at(1000), autopilot: paused }))).toEqual({ kind: 'idle', why: 'the autopilot is paused' });
    expect(decideRollout(facts({ now: at(1000), autopilot: { paused: false, skippedSha: A, pending: null } }))).toMatchObject({ kind: 'idle', why: expect.stringContaining('skipped') });
    expect(decideRollout(facts({ now: at(1000), autopilot: { paused: false, skippedSha: B, pending: null } })).kind).toBe('track');
  });

  it('a fleet that runs what it should clears what was pending', () => {
    const clean = { sha: A, dirty: [], bootstrap: [], urgent: [] };
    expect(decideRollout(facts({ now: at(5), render: clean, autopilot: { paused: false, skippedSha: null, pending: { sha: B, since: at(0), changedAt: at(0) } } }))).toMatchObject({ kind: 'track', pending: null });
    expect(decideRollout(facts({ now: at(5), render: clean })).kind).toBe('idle');
  });

  it('property: whatever the facts, an ordinary change is never published without a canary, and nothing starts while paused', () => {
    const node = fc.record({ nodeId: fc.constantFrom('n1', 'n2', 'n3'), name: fc.constantFrom('a', 'b', 'c'), canary: fc.boolean() });
    fc.assert(
      fc.property(fc.array(node, { minLength: 1, maxLength: 3 }), fc.boolean(), fc.nat(1000), fc.nat(1000), (dirty, paused, since, changed) => {
        const pending = { sha: A, since: at(0), changedAt: at(Math.min(since, changed)) };
        const step = decideRollout(facts({ now: at(since + changed), render: { sha: A, dirty, bootstrap: [], urgent: [] }, autopilot: { paused, skippedSha: null, pending } }));
        if (step.kind !== 'start') return true;
        return !paused && !step.urgent && step.canaries.length >= 1;
      }),
    );
  });

  it('nextPending keeps the first moment the fleet differed', () => {
    const p = nextPending(at(10), { sha: B, since: at(0), changedAt: at(5) }, A);
    expect(p).toEqual({ sha: A, since: at(0), changedAt: at(10) });
    expect(nextPending(at(10), p, null)).toBeNull();
  });
});
