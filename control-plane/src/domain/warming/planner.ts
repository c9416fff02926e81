/**
 * The warming network's daily plan, as a pure, seeded function: for every mailbox in warm-up or
 * rehabilitation, how many warming messages it sends today, to which partners, at what times.
 *
 * Rules it keeps (property-tested):
 * - volume follows the mailbox's ramp (new or pre-warmed), cut when its metrics degrade, zero while
 *   paused after a complaint;
 * - contagion control: a risky member (listed domain, recent bounces, low score, or isolated by an
 *   operator) only ever exchanges mail with other risky members, never with golden seeds or premium
 *   peers; nobody writes to a mailbox on its own domain, or to the same partner twice in a day, and
 *   pairs used in the cool-down period are avoided while others remain;
 * - golden seeds are few: each takes at most its daily capacity, spent first on mailboxes that
 *   rehabilitate a locked tenant, then on the youngest ramps;
 * - sends are spread over the sending window, never in bursts: a mailbox's sends are at least a fifth
 *   of its slot apart.
 */
import type { Settings } from '../settings/settings.js';

export type MailboxWarmupSettings = Settings['mailbox_warmup'];
export type WarmingNetworkSettings = Settings['warming_network'];

export interface PlannerMember {
  id: string;
  kind: 'peer' | 'golden_seed';
  address: string;
  domain: string;
  tenantId: string | null;
  weight: number;
  /** a peer of a tenant on premium IPs */
  premium: boolean;
  risky: boolean;
  active: boolean;
  /** peers: the ramp and how far along it is (day 0 is the first day) */
  ramp: { kind: 'new' | 'prewarmed'; day: number } | null;
  /** share cut from today's volume because the mailbox's metrics degraded, 0-100 */
  cutPct: number;
  /** paused after a complaint */
  paused: boolean;
  /** its tenant is locked and earns its way back through warming */
  rehabilitating: boolean;
}

export interface InboxItem {
  /** the earlier warming send being answered */
  sendRef: string;
  from: string;
  to: string;
}

export interface PlanInput {
  day: string; // YYYY-MM-DD (UTC)
  seed: string;
  members: readonly PlannerMember[];
  /** "a b" for each sender/recipient pair used within the cool-down period */
  recentPairs: ReadonlySet<string>;
  /** yesterday's delivered peer-to-peer sends, which today's recipients may answer */
  inbox: readonly InboxItem[];
  ramp: MailboxWarmupSettings;
  network: WarmingNetworkSettings;
}

export interface PlannedSend {
  senderId: string;
  recipientId: string;
  at: string;
  kind: 'new' | 'reply';
  replyTo: string | null;
}

export interface DayPlan {
  sends: PlannedSend[];
  /** what each sending member was allowed today */
  volumes: Record<string, number>;
  /** sends that found no permissible partner */
  unmet: Record<string, number>;
  seedLoad: Record<string, number>;
}

/** Messages a mailbox may send on day `day` of its ramp, before any cut. */
export function rampVolume(ramp: { kind: 'new' | 'prewarmed'; day: number }, s: MailboxWarmupSettings): number {
  const start = ramp.kind === 'new' ? s.new_start_per_day : s.prewarmed_start_per_day;
  const v = start + Math.max(0, ramp.day) * s.daily_increment;
  const cap = ramp.day < 14 ? s.first_two_weeks_cap : s.max_per_day;
  return Math.max(0, Math.min(v, cap, s.max_per_day));
}

export function todaysVolume(m: PlannerMember, s: MailboxWarmupSettings): number {
  if (m.kind !== 'peer' || !m.active || m.paused || !m.ramp) return 0;
  return Math.floor((rampVolume(m.ramp, s) * (100 - m.cutPct)) / 100);
}

export interface RiskFacts {
  listed: boolean;
  isolatedByOperator: boolean;
  /** hard bounces per 100 warming sends over the recent window, null without enough sends */
  recentBouncePct: number | null;
  tenantScore: number | null;
}

/** Whether a member must stay in the isolated part of the network, and why. */
export function classifyRisk(f: RiskFacts, n: WarmingNetworkSettings): { risky: boolean; reason: string | null } {
  if (f.isolatedByOperator) return { risky: true, reason: 'isolated by an operator' };
  if (f.listed) return { risky: true, reason: 'its domain is on a blocklist' };
  if (f.recentBouncePct !== null && f.recentBouncePct > n.risky_bounce_pct) return { risky: true, reason: `recent warming bounces at ${f.recentBouncePct}% (over ${n.risky_bounce_pct}%)` };
  if (f.tenantScore !== null && f.tenantScore < n.risky_score_below) return { risky: true, reason: `tenant score ${f.tenantScore} (below ${n.risky_score_below})` };
  return { risky: false, reason: null };
}

/** Whether `a` may write to `b` at all (the hard rules; cool-down and repeats are softer). */
export function mayPair(a: PlannerMember, b: PlannerMember): boolean {
  if (a.id === b.id || a.domain === b.domain || !b.active) return false;
  if (a.risky || b.risky) return a.risky && b.risky && a.kind === 'peer' && b.kind === 'peer';
  return true;
}

/** mulberry32 over a string seed: small, fast, and the same everywhere. */
export function seededRandom(seed: string): () => number {
  let h = 1779033703 ^ seed.length;
  for (let i = 0; i < seed.length; i++) {
    h = Math.imul(h ^ seed.charCodeAt(i), 3432918353);
    h = (h << 13) | (h >>> 19);
  }
  let a = h >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function planDay(input: PlanInput): DayPlan {
  const rnd = seededRandom(`${input.seed}:${input.day}`);
  const members = [...input.members].sort((a, b) => (a.id < b.id ? -1 : 1));
  const byId = new Map(members.map((m) => [m.id, m]));
  const volumes: Record<string, number> = {};
  for (const m of members) {
    const v = todaysVolume(m, input.ramp);
    if (v > 0) volumes[m.id] = v;
  }
  const used = new Set<string>();
  const seedLoad: Record<string, number> = {};
  const unmet: Record<string, number> = {};
  const drafts: Omit<PlannedSend, 'at'>[] = [];
  const remaining: Record<string, number> = { ...volumes };
  const pairKey = (a: string, b: string) => `${a} ${b}`;

  // replies first: answering a thread is the most natural mail there is
  for (const item of [...input.inbox].sort((x, y) => (x.sendRef < y.sendRef ? -1 : 1))) {
    const replier = byId.get(item.to);
    const original = byId.get(item.from);
    if (!replier || !original || (remaining[replier.id] ?? 0) <= 0) continue;
    if (!mayPair(replier, original) || used.has(pairKey(replier.id, original.id))) continue;
    if (rnd() * 100 >= input.network.reply_pct) continue;
    used.add(pairKey(replier.id, original.id));
    remaining[replier.id]!--;
    drafts.push({ senderId: replier.id, recipientId: original.id, kind: 'reply', replyTo: item.sendRef });
  }

  // golden seeds go where they help most: rehabilitation, then the youngest ramps
  const seeds = members.filter((m) => m.kind === 'golden_seed' && m.active);
  const senders = members
    .filter((m) => (remaining[m.id] ?? 0) > 0)
    .sort((a, b) => Number(b.rehabilitating) - Number(a.rehabilitating) || (a.ramp?.day ?? 0) - (b.ramp?.day ?? 0) || (a.id < b.id ? -1 : 1));
  const peersFor = (s: PlannerMember) => members.filter((m) => m.kind === 'peer' && mayPair(s, m));

  const pick = (s: PlannerMember, pool: PlannerMember[], weighted: boolean): PlannerMember | null => {
    const allowed = pool.filter((m) => mayPair(s, m) && !used.has(pairKey(s.id, m.id)));
    const fresh = allowed.filter((m) => !input.recentPairs.has(pairKey(s.id, m.id)));
    const from = fresh.length > 0 ? fresh : allowed;
    if (from.length === 0) return null;
    if (!weighted) return from[Math.floor(rnd() * from.length)]!;
    const total = from.reduce((t, m) => t + m.weight, 0);
    let x = rnd() * total;
    for (const m of from) {
      x -= m.weight;
      if (x <= 0) return m;
    }
    return from[from.length - 1]!;
  };

  for (const s of senders) {
    let n = remaining[s.id]!;
    const peerPool = peersFor(s);
    // a share of a clean sender's volume goes to seeds, as capacity lasts
    if (!s.risky && seeds.length > 0) {
      let seedSends = Math.ceil((n * input.network.seed_share_pct) / 100);
      while (seedSends > 0) {
        const open = seeds.filter((x) => (seedLoad[x.id] ?? 0) < input.network.seed_daily_capacity);
        const seed = pick(s, open, true);
        if (!seed) break;
        used.add(pairKey(s.id, seed.id));
        seedLoad[seed.id] = (seedLoad[seed.id] ?? 0) + 1;
        drafts.push({ senderId: s.id, recipientId: seed.id, kind: 'new', replyTo: null });
        seedSends--;
        n--;
      }
    }
    while (n > 0) {
      const partner = pick(s, peerPool, false);
      if (!partner) {
        unmet[s.id] = n;
        break;
      }
      used.add(pairKey(s.id, partner.id));
      drafts.push({ senderId: s.id, recipientId: partner.id, kind: 'new', replyTo: null });
      n--;
    }
  }

  // times: each sender's sends spread evenly over the window, jittered inside their slots
  const start = Date.parse(`${input.day}T00:00:00Z`) + input.network.window_start_hour * 3_600_000;
  const windowMs = (input.network.window_end_hour - input.network.window_start_hour) * 3_600_000;
  const bySender = new Map<string, Omit<PlannedSend, 'at'>[]>();
  for (const d of drafts) bySender.set(d.senderId, [...(bySender.get(d.senderId) ?? []), d]);
  const sends: PlannedSend[] = [];
  for (const [, list] of [...bySender].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const order = list.map((d) => ({ d, k: rnd() })).sort((a, b) => a.k - b.k);
    const slot = windowMs / order.length;
    order.forEach(({ d }, i) => {
      const at = start + i * slot + rnd() * slot * 0.8;
      sends.push({ ...d, at: new Date(Math.floor(at / 1000) * 1000).toISOString() });
    });
  }
  sends.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.senderId < b.senderId ? -1 : 1));
  return { sends, volumes, unmet, seedLoad };
}

/** Days until `remaining` clean sends are made at `perDay`, and the date that lands on. */
export function estimateUnlock(remaining: number, perDay: number, today: string): { days: number; date: string } | null {
  if (remaining <= 0) return { days: 0, date: today };
  if (perDay <= 0) return null;
  const days = Math.ceil(remaining / perDay);
  return { days, date: new Date(Date.parse(`${today}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10) };
}
