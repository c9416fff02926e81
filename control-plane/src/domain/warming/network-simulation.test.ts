/**
 * Sixty days of the warming network, simulated with the real planner and the real trust engine:
 * ~290 mailboxes of 40 tenants (healthy, premium, on listed domains, locked with clean behaviour,
 * locked and still bouncing, brand new) and 12 golden seeds. Deliveries and engagement are drawn
 * from a seeded generator; each day's counts feed a 30-day trust window.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../settings/settings.js';
import { ENGAGEMENT_KEYS } from '../trust/components.js';
import { addCounts, assessTrust, ZERO_COUNTS, type PreviousTrustState, type TrustAssessment, type TrustCounts } from '../trust/trust-score.js';
import { classifyRisk, estimateUnlock, planDay, seededRandom, todaysVolume, type InboxItem, type PlannerMember } from './planner.js';

type Kind = 'healthy' | 'premium' | 'listed' | 'locked-clean' | 'locked-bouncing' | 'new';
interface SimTenant {
  id: string;
  kind: Kind;
  bounceRate: number;
  days: TrustCounts[]; // per simulated day, for the 30-day window
  history: TrustCounts; // before day 0, ages out after 30 days
  previous: PreviousTrustState | null;
  locked: boolean;
  unlockedOn: number | null;
  estimate: { days: number; from: number } | null;
}

const S = DEFAULT_SETTINGS;
const zero = (): TrustCounts => ({ ...ZERO_COUNTS });
const add = addCounts;
const REPORTED = new Set(ENGAGEMENT_KEYS);

function simulate() {
  const rnd = seededRandom('warming-simulation');
  const kinds: Kind[] = [
    ...Array<Kind>(20).fill('healthy'), ...Array<Kind>(6).fill('premium'), ...Array<Kind>(4).fill('listed'),
    ...Array<Kind>(6).fill('locked-clean'), ...Array<Kind>(2).fill('locked-bouncing'), ...Array<Kind>(2).fill('new'),
  ];
  const tenants: SimTenant[] = kinds.map((kind, i) => ({
    id: `t${String(i).padStart(2, '0')}`,
    kind,
    bounceRate: kind === 'locked-bouncing' ? 0.1 : kind === 'listed' ? 0.02 : 0.002,
    days: [],
    // locked tenants come with the record that locked them: 5 bounces in 100 sends
    history: kind.startsWith('locked') ? { ...zero(), sent: 100, delivered: 95, hardBounces: 5, opens: 20, replies: 1 } : { ...zero(), sent: 400, delivered: 399, hardBounces: 1, opens: 240, replies: 60 },
    previous: null,
    locked: false,
    unlockedOn: null,
    estimate: null,
  }));
  const members: (PlannerMember & { tenant: SimTenant | null; listed: boolean })[] = [];
  for (const t of tenants) {
    // locked tenants rehabilitate with a few young mailboxes, so it takes days, not hours
    const locked = t.kind.startsWith('locked');
    const n = locked ? 3 : 6 + Math.floor(rnd() * 3);
    for (let k = 0; k < n; k++) {
      members.push({
        id: `${t.id}-m${k}`, kind: 'peer', address: `m${k}@${t.id}.example`, domain: `${t.id}.example`, tenantId: t.id, weight: 1,
        premium: t.kind === 'premium', risky: false, active: true,
        ramp: { kind: k === 0 && t.kind !== 'new' && !locked ? 'prewarmed' : 'new', day: t.kind === 'new' || locked ? 0 : 20 + k },
        cutPct: 0, paused: false, rehabilitating: false, tenant: t, listed: t.kind === 'listed',
      });
    }
  }
  const providers = ['gmail.com', 'outlook.com', 'yahoo.com'];
  for (let k = 0; k < 12; k++) {
    members.push({
      id: `seed-${k}`, kind: 'golden_seed', address: `seed${k}@${providers[k % 3]}`, domain: providers[k % 3]!, tenantId: null, weight: 2 + (k % 3),
      premium: false, risky: false, active: true, ramp: null, cutPct: 0, paused: false, rehabilitating: false, tenant: null, listed: false,
    });
  }
  const byId = new Map(members.map((m) => [m.id, m]));
  const warmingBounces = new Map<string, { sent: number; bounced: number }[]>();
  const pairsByDay: Set<string>[] = [];
  let inbox: InboxItem[] = [];
  const violations: string[] = [];
  // the tenant's own record before day 0 is its external lane; the simulated days are warming mail
  const trustWindow = (t: SimTenant, day: number) => {
    let warming = zero();
    for (let d = Math.max(0, day - S.trust.window_days + 1); d <= day; d++) if (t.days[d]) warming = add(warming, t.days[d]!);
    return { external: day < S.trust.window_days ? t.history : zero(), warming };
  };
  // how warming mail engages across the network so far: what a locked tenant's clean sends are expected to earn
  const networkEngagement = (day: number) => {
    let all = zero();
    for (const t of tenants) for (let d = 0; d <= day; d++) if (t.days[d]) all = add(all, t.days[d]!);
    return all.delivered >= 100 ? { opens: (100 * all.opens) / all.delivered, replies: (100 * all.replies) / all.delivered } : undefined;
  };
  const judge = (t: SimTenant, day: number, previous: PreviousTrustState | null): TrustAssessment =>
    assessTrust({ lanes: trustWindow(t, day), reported: REPORTED, warmingEngagementPct: networkEngagement(day), authenticated: true, previous, now: new Date(Date.UTC(2026, 0, 1 + day)) }, S.trust);
  const assess = (t: SimTenant, day: number) => {
    const a = judge(t, day, t.previous);
    t.previous = { locked: a.locked, lockKind: a.lock_kind, lockedAt: a.locked_at, lockReason: a.lock_reason, rehabTargetSends: a.rehabilitation?.target_at_lock ?? null };
    return a;
  };
  for (const t of tenants) {
    t.locked = assess(t, -1).locked;
  }

  for (let day = 0; day < 60; day++) {
    const date = new Date(Date.UTC(2026, 0, 1 + day)).toISOString().slice(0, 10);
    // today's facts: risk, degradation, rehabilitation
    for (const m of members) {
      if (m.kind !== 'peer') continue;
      const t = m.tenant!;
      const recent = (warmingBounces.get(m.id) ?? []).slice(-7).reduce((x, y) => ({ sent: x.sent + y.sent, bounced: x.bounced + y.bounced }), { sent: 0, bounced: 0 });
      const last3 = (warmingBounces.get(m.id) ?? []).slice(-3).reduce((x, y) => ({ sent: x.sent + y.sent, bounced: x.bounced + y.bounced }), { sent: 0, bounced: 0 });
      const pct = recent.sent >= 20 ? (100 * recent.bounced) / recent.sent : null;
      const score = t.previous ? judge(t, day - 1, t.previous).score : null;
      m.risky = classifyRisk({ listed: m.listed, isolatedByOperator: false, recentBouncePct: pct, tenantScore: score }, S.warming_network).risky;
      m.premium = t.kind === 'premium' && !m.risky;
      m.cutPct = last3.sent >= 20 && (100 * last3.bounced) / last3.sent > S.warming_network.degrade_bounce_pct ? S.mailbox_warmup.degrade_cut_pct : 0;
      m.rehabilitating = t.locked;
      if (day > 0) m.ramp = { ...m.ramp!, day: m.ramp!.day + 1 };
    }
    const recentPairs = new Set(pairsByDay.slice(-S.warming_network.pair_cooldown_days).flatMap((s) => [...s]));
    const plan = planDay({ day: date, seed: 'sim', members, recentPairs, inbox, ramp: S.mailbox_warmup, network: S.warming_network });

    // the rules, checked on every day's plan
    const perSender = new Map<string, number>();
    for (const s of plan.sends) {
      const a = byId.get(s.senderId)!;
      const b = byId.get(s.recipientId)!;
      perSender.set(a.id, (perSender.get(a.id) ?? 0) + 1);
      if ((a.risky || b.risky) && (b.kind === 'golden_seed' || a.kind === 'golden_seed')) violations.push(`day ${day}: risky ${a.id} -> seed ${b.id}`);
      if ((a.risky || b.risky) && (a.premium || b.premium)) violations.push(`day ${day}: risky with premium ${a.id} -> ${b.id}`);
      if (a.risky !== b.risky) violations.push(`day ${day}: risky and clean mixed ${a.id} -> ${b.id}`);
    }
    for (const [id, n] of perSender) {
      const m = byId.get(id)!;
      if (n > todaysVolume(m, S.mailbox_warmup)) violations.push(`day ${day}: ${id} sent ${n}, over its ramp`);
      if (m.ramp!.day < 14 && n > S.mailbox_warmup.first_two_weeks_cap) violations.push(`day ${day}: ${id} over the two-week cap`);
    }

    // the day's outcomes
    const today = new Map(tenants.map((t) => [t.id, zero()]));
    const nextInbox: InboxItem[] = [];
    pairsByDay.push(new Set(plan.sends.map((s) => `${s.senderId} ${s.recipientId}`)));
    for (const [i, s] of plan.sends.entries()) {
      const a = byId.get(s.senderId)!;
      const b = byId.get(s.recipientId)!;
      const c = today.get(a.tenant!.id)!;
      const wb = warmingBounces.get(a.id) ?? [];
      if (wb.length <= day) wb.push({ sent: 0, bounced: 0 });
      wb[wb.length - 1]!.sent++;
      warmingBounces.set(a.id, wb);
      c.sent++;
      if (rnd() < a.tenant!.bounceRate) {
        c.hardBounces++;
        wb[wb.length - 1]!.bounced++;
        continue;
      }
      c.delivered++;
      const w = b.kind === 'golden_seed' ? b.weight : 1;
      if (rnd() < 0.8) c.opens += w;
      if (b.kind === 'golden_seed' ? rnd() < 0.35 : false) c.replies += w;
      if (b.kind === 'peer') nextInbox.push({ sendRef: `${date}-${i}`, from: a.id, to: b.id });
      // a peer's planned reply to this tenant's earlier message counts as its engagement
      if (s.kind === 'reply') today.get(b.tenant!.id)!.replies += 1;
    }
    inbox = nextInbox;
    for (const t of tenants) {
      t.days[day] = today.get(t.id)!;
      const wasLocked = t.locked;
      const a = assess(t, day);
      if (wasLocked && a.locked && t.estimate === null && a.rehabilitation!.clean_sends_needed !== null) {
        // the first estimate the API shows: the clean sends the unlock rule still wants, at today's planned volume
        const perDay = members.filter((m) => m.tenant === t).reduce((n, m) => n + (perSender.get(m.id) ?? 0), 0);
        const e = estimateUnlock(a.rehabilitation!.clean_sends_needed, perDay, date);
        if (e) t.estimate = { days: e.days, from: day };
      }
      t.locked = a.locked;
      if (wasLocked && !a.locked && t.unlockedOn === null) t.unlockedOn = day;
    }
  }
  return { tenants, members, violations };
}

describe('the warming network over 60 days', () => {
  const { tenants, members, violations } = simulate();

  it('has a few hundred members', () => {
    expect(members.length).toBeGreaterThanOrEqual(250);
  });

  it('respects every ramp and never lets a risky member touch a golden seed or a premium peer', () => {
    expect(violations).toEqual([]);
  });

  it('unlocks locked tenants with clean behaviour on the schedule it estimated', () => {
    const clean = tenants.filter((t) => t.kind === 'locked-clean');
    expect(clean.every((t) => t.estimate !== null)).toBe(true);
    for (const t of clean) {
      expect(t.unlockedOn, `${t.id} never unlocked`).not.toBeNull();
      // the estimate assumes the network's warming engagement; a tenant's own draw varies: a day's slack
      expect(t.unlockedOn!).toBeLessThanOrEqual(t.estimate!.from + t.estimate!.days + 1);
    }
  });

  it('never unlocks a tenant that keeps bouncing', () => {
    for (const t of tenants.filter((x) => x.kind === 'locked-bouncing')) {
      expect(t.locked).toBe(true);
      expect(t.unlockedOn).toBeNull();
    }
  });

  it('keeps healthy tenants unlocked', () => {
    expect(tenants.filter((t) => t.kind === 'healthy' || t.kind === 'premium').every((t) => !t.locked)).toBe(true);
  });
});
