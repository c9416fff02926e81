import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../settings/settings.js';
import { classifyRisk, estimateUnlock, mayPair, planDay, rampVolume, todaysVolume, type PlannerMember } from './planner.js';

const ramp = DEFAULT_SETTINGS.mailbox_warmup;
const network = DEFAULT_SETTINGS.warming_network;

const peer = (id: string, domain: string, over: Partial<PlannerMember> = {}): PlannerMember => ({
  id, kind: 'peer', address: `${id}@${domain}`, domain, tenantId: `t-${domain}`, weight: 1, premium: false, risky: false, active: true,
  ramp: { kind: 'new', day: 0 }, cutPct: 0, paused: false, rehabilitating: false, ...over,
});
const seed = (id: string, weight = 3): PlannerMember => ({
  id, kind: 'golden_seed', address: `${id}@gmail.com`, domain: 'gmail.com', tenantId: null, weight, premium: false, risky: false, active: true,
  ramp: null, cutPct: 0, paused: false, rehabilitating: false,
});

describe('ramps', () => {
  it.each<[string, 'new' | 'prewarmed', number, number]>([
    ['a new mailbox starts at 25', 'new', 0, 25],
    ['and adds 2 a day', 'new', 5, 35],
    ['but stays at or under 50 for two weeks', 'new', 13, 50],
    ['then climbs to the maximum', 'new', 60, 145],
    ['never past it', 'new', 500, 200],
    ['a pre-warmed import starts at 5', 'prewarmed', 0, 5],
  ])('%s', (_n, kind, day, expected) => {
    expect(rampVolume({ kind, day }, ramp)).toBe(expected);
  });

  it('cuts a degraded mailbox by the configured share and stops a paused one', () => {
    expect(todaysVolume(peer('a', 'x.example', { cutPct: 40 }), ramp)).toBe(15);
    expect(todaysVolume(peer('a', 'x.example', { paused: true }), ramp)).toBe(0);
    expect(todaysVolume(seed('s'), ramp)).toBe(0);
  });
});

describe('risk', () => {
  it.each<[string, Parameters<typeof classifyRisk>[0], boolean]>([
    ['clean', { listed: false, isolatedByOperator: false, recentBouncePct: 0.5, tenantScore: 80 }, false],
    ['listed domain', { listed: true, isolatedByOperator: false, recentBouncePct: 0, tenantScore: 90 }, true],
    ['bouncing', { listed: false, isolatedByOperator: false, recentBouncePct: 4, tenantScore: 90 }, true],
    ['low score', { listed: false, isolatedByOperator: false, recentBouncePct: null, tenantScore: 40 }, true],
    ['isolated by an operator', { listed: false, isolatedByOperator: true, recentBouncePct: null, tenantScore: null }, true],
  ])('%s', (_n, facts, risky) => {
    expect(classifyRisk(facts, network).risky).toBe(risky);
  });

  it('the hard pairing rules', () => {
    const risky = peer('r', 'r.example', { risky: true });
    expect(mayPair(risky, seed('s'))).toBe(false);
    expect(mayPair(peer('a', 'a.example'), risky)).toBe(false);
    expect(mayPair(risky, peer('r2', 'r2.example', { risky: true }))).toBe(true);
    expect(mayPair(peer('a', 'same.example'), peer('b', 'same.example'))).toBe(false);
  });
});

const memberArb = fc.record({
  kind: fc.constantFrom('peer', 'peer', 'peer', 'golden_seed') as fc.Arbitrary<'peer' | 'golden_seed'>,
  domain: fc.constantFrom('a.example', 'b.example', 'c.example', 'd.example', 'e.example', 'f.example'),
  risky: fc.boolean(),
  premium: fc.boolean(),
  day: fc.integer({ min: 0, max: 40 }),
  prewarmed: fc.boolean(),
  cut: fc.constantFrom(0, 0, 40),
  paused: fc.boolean(),
  rehab: fc.boolean(),
  weight: fc.integer({ min: 1, max: 5 }),
});

describe('planDay (properties)', () => {
  it('keeps every rule, whatever the network looks like', () => {
    fc.assert(
      fc.property(fc.array(memberArb, { minLength: 2, maxLength: 40 }), fc.string({ maxLength: 8 }), (specs, seedText) => {
        const members = specs.map((m, i): PlannerMember =>
          m.kind === 'golden_seed'
            ? { ...seed(`s${i}`, m.weight) }
            : peer(`p${i}`, m.domain, { risky: m.risky, premium: m.premium && !m.risky, ramp: { kind: m.prewarmed ? 'prewarmed' : 'new', day: m.day }, cutPct: m.cut, paused: m.paused && i % 5 === 0, rehabilitating: m.rehab }),
        );
        const byId = new Map(members.map((m) => [m.id, m]));
        const recent = new Set(members.length > 3 ? [`${members[0]!.id} ${members[1]!.id}`] : []);
        const inbox = members.length > 2 ? [{ sendRef: 'x1', from: members[0]!.id, to: members[1]!.id }] : [];
        const plan = planDay({ day: '2026-11-22', seed: seedText, members, recentPairs: recent, inbox, ramp, network });
        const perSender = new Map<string, number>();
        const pairs = new Set<string>();
        const seedIn = new Map<string, number>();
        for (const s of plan.sends) {
          const a = byId.get(s.senderId)!;
          const b = byId.get(s.recipientId)!;
          expect(a.kind).toBe('peer');
          // contagion control
          if (a.risky || b.risky) {
            expect(a.risky && b.risky).toBe(true);
            expect(b.kind).toBe('peer');
            expect(a.premium || b.premium).toBe(false);
          }
          expect(a.domain).not.toBe(b.domain);
          expect(pairs.has(`${a.id} ${b.id}`)).toBe(false);
          pairs.add(`${a.id} ${b.id}`);
          perSender.set(a.id, (perSender.get(a.id) ?? 0) + 1);
          if (b.kind === 'golden_seed') seedIn.set(b.id, (seedIn.get(b.id) ?? 0) + 1);
          // inside the window
          const hour = new Date(s.at).getUTCHours();
          expect(hour).toBeGreaterThanOrEqual(network.window_start_hour);
          expect(hour).toBeLessThan(network.window_end_hour);
        }
        for (const [id, n] of perSender) expect(n).toBeLessThanOrEqual(todaysVolume(byId.get(id)!, ramp));
        for (const [, n] of seedIn) expect(n).toBeLessThanOrEqual(network.seed_daily_capacity);
        // never in bursts: a sender's consecutive sends are at least a fifth of its slot apart
        const windowMs = (network.window_end_hour - network.window_start_hour) * 3_600_000;
        for (const [id, n] of perSender) {
          const times = plan.sends.filter((s) => s.senderId === id).map((s) => Date.parse(s.at)).sort((x, y) => x - y);
          for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual((windowMs / n) * 0.2 - 1000);
        }
        // deterministic
        expect(planDay({ day: '2026-11-22', seed: seedText, members: [...members].reverse(), recentPairs: recent, inbox, ramp, network })).toEqual(plan);
      }),
      { numRuns: 150 },
    );
  });

  it('spends golden seeds on rehabilitating mailboxes first', () => {
    const members = [seed('s1'), seed('s2'), seed('s3'), peer('young', 'a.example', { ramp: { kind: 'new', day: 1 } }), peer('rehab', 'b.example', { rehabilitating: true, ramp: { kind: 'new', day: 30 } }), peer('old', 'c.example', { ramp: { kind: 'new', day: 30 } })];
    const plan = planDay({ day: '2026-11-22', seed: 'x', members, recentPairs: new Set(), inbox: [], ramp, network: { ...network, seed_daily_capacity: 1, seed_share_pct: 100 } });
    // one message per seed (a pair is used once a day), and all three seeds went to the rehabilitating mailbox
    const toSeed = plan.sends.filter((s) => s.recipientId.startsWith('s')).map((s) => s.senderId);
    expect(toSeed).toEqual(['rehab', 'rehab', 'rehab']);
  });

  it('avoids pairs from the cool-down period while others remain', () => {
    const members = [peer('a', 'a.example', { ramp: { kind: 'prewarmed', day: 0 } }), peer('b', 'b.example', { ramp: null }), peer('c', 'c.example', { ramp: null })];
    const plan = planDay({ day: '2026-11-22', seed: 'x', members, recentPairs: new Set(['a b']), inbox: [], ramp, network: { ...network, seed_share_pct: 0 } });
    // c first (fresh); b, in cool-down, only once nothing else remains; then nobody is left
    const ordered = plan.sends.filter((s) => s.senderId === 'a');
    expect(ordered.map((s) => s.recipientId).sort()).toEqual(['b', 'c']);
    expect(plan.unmet.a).toBe(3);
    const first = planDay({ day: '2026-11-22', seed: 'x', members, recentPairs: new Set(['a b']), inbox: [], ramp: { ...ramp, prewarmed_start_per_day: 1 }, network: { ...network, seed_share_pct: 0 } });
    expect(first.sends.map((s) => s.recipientId)).toEqual(['c']);
  });
});

describe('unlock estimate', () => {
  it.each<[number, number, string | null]>([
    [400, 175, '2026-11-25'],
    [0, 0, '2026-11-22'],
    [10, 0, null],
  ])('%d sends at %d a day', (remaining, perDay, date) => {
    expect(estimateUnlock(remaining, perDay, '2026-11-22')?.date ?? null).toBe(date);
  });
});
