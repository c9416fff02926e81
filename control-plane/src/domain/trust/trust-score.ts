/**
 * The Platform Trust Score T_s in [0, 100] and what follows from it: the external-sending lock with
 * hysteresis, and the rehabilitation a locked tenant must do. Pure.
 *
 *   T_s = base (50 with SPF, DKIM and DMARC verified, else 0)
 *       + 1.5 per 1% replies + 0.2 per 1% opens
 *       - 10 per 1% bounces  - 100 per 0.1% complaints          (one row each in components.ts)
 *
 * Missing engagement is not zero engagement. A tenant declares which engagement it reports (opens,
 * replies); for a term it does not report, its external mail is taken to engage at the term's prior
 * (an operator setting), while its warming-lane engagement, which the platform measures itself,
 * counts as observed. A clean tenant that reports nothing therefore scores base + the priors' points.
 *
 * The score is the formula on these rates. Noise is handled in the lock decision, not by bending the
 * score: below the minimum sample the lock state does not move at all; above it a tenant is locked
 * only when even the benefit-of-the-doubt score (bad rates at the low end of their Wilson interval,
 * good rates at the high end) is below the line, and unlocked only when its score reaches the higher
 * unlock threshold. A handful of unlucky sends cannot lock a tenant; the gap between the two
 * thresholds keeps it from flapping.
 *
 * A locked tenant is told the clean warming sends that unlock it under that very rule (at the
 * engagement it has now), and how many bring each penalty back to its target on the way: 5 bounces in
 * 100 sends take 400 clean sends to get back to 1%.
 */
import type { Settings } from '../settings/settings.js';
import { TRUST_COMPONENTS, ZERO_COUNTS, type ComponentKey, type EngagementKey, type PenaltyKey, type TrustComponent, type TrustCounts } from './components.js';

export { ZERO_COUNTS, type TrustCounts } from './components.js';

export type TrustSettings = Settings['trust'];

/** Why a tenant is locked: its domain is not authenticated, or its score is too low. */
export type LockKind = 'authentication' | 'score';

export interface PreviousTrustState {
  locked: boolean;
  lockKind: LockKind | null;
  lockedAt: Date | null;
  lockReason: string | null;
  /** clean warming sends the tenant was told to send when it was locked */
  rehabTargetSends: number | null;
}

export interface RateEstimate {
  /** k / n, as a percentage: what the score uses */
  raw_pct: number;
  /** the Wilson interval at the configured confidence, as percentages */
  wilson_low_pct: number;
  wilson_high_pct: number;
  /** k: observed, plus what the prior stands for where the tenant does not report the term */
  numerator: number;
  denominator: number;
  /** `observed`, or `prior`: the external lane's part of the numerator is the prior's */
  source: 'observed' | 'prior';
  /** the part of the numerator that the prior stands for (0 when observed) */
  imputed: number;
}

/** insufficient_sample: the lock state does not move; wilson_interval: locks use the optimistic bound */
export type Basis = 'wilson_interval' | 'insufficient_sample';

export type Contributions = Record<'base' | ComponentKey, number>;

export interface TrustAssessment {
  score: number;
  /** the score with every rate at the tenant's best (optimistic) and worst (pessimistic) plausible value */
  score_bounds: { optimistic: number; pessimistic: number };
  contributions: Contributions;
  rates: Record<ComponentKey, RateEstimate>;
  /** the window's counts, both lanes: sent = delivered + bounced messages + expired */
  counts: TrustCounts;
  sample: { sends: number; delivered: number; min_sample: number; sufficient: boolean };
  basis: Basis;
  authenticated: boolean;
  locked: boolean;
  lock_kind: LockKind | null;
  /** the tenant became locked, unlocked, or locked for another reason */
  lock_changed: boolean;
  lock_reason: string | null;
  locked_at: Date | null;
  thresholds: { lock_below: number; unlock_at_or_above: number };
  rehabilitation: Rehabilitation | null;
}

export interface Milestone {
  current_pct: number;
  target_pct: number;
  /** clean sends that bring this rate to its target */
  clean_sends_needed: number;
}

export interface Rehabilitation {
  /**
   * Clean warming sends (delivered, no bounce, no complaint) still needed to unlock under the lock rule,
   * at the engagement warming mail earns (or, without that, at the tenant's own); null when clean sends
   * alone cannot unlock it.
   */
  clean_sends_needed: number | null;
  /**
   * The engagement (percent of delivered, per term) `clean_sends_needed` counts on from the new sends;
   * a term missing engages at the tenant's own rate now. Sends that engage less need more of them.
   */
  assumed_engagement_pct: Partial<Record<EngagementKey, number>>;
  /** engagement points the tenant must add (beyond what it has) when clean sends alone cannot unlock it */
  engagement_points_needed: number;
  /** per penalty: its rate now, its target, and the clean sends that bring it there */
  milestones: Record<PenaltyKey, Milestone>;
  score_needed: number;
  target_at_lock: number | null;
  instructions: string;
}

export interface TrustInput {
  lanes: { external: TrustCounts; warming: TrustCounts };
  /** the engagement terms the tenant reports for its external mail; the others take their prior there */
  reported: ReadonlySet<EngagementKey>;
  /**
   * How warming mail engages (percent per term, e.g. the network's warming lane over the window): what
   * a locked tenant's clean warming sends are expected to earn. Terms left out: the tenant's own rates.
   */
  warmingEngagementPct?: Partial<Record<EngagementKey, number>>;
  authenticated: boolean;
  previous: PreviousTrustState | null;
  now: Date;
}

/** Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError('p must be in (0, 1)');
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - low) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/** Wilson score interval for k successes in n trials at a two-sided confidence level. */
export function wilsonInterval(k: number, n: number, confidence: number): { low: number; high: number } {
  if (n <= 0) return { low: 0, high: 1 };
  const p = Math.min(1, Math.max(0, k / n));
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

const round = (x: number, places = 4): number => {
  const f = 10 ** places;
  return Math.round(x * f) / f;
};

const settingOf = (w: TrustSettings, name: string): number => (w as unknown as Record<string, number>)[name]!;

/**
 * A rate with its Wilson interval. With a prior, `observed` is the measured part (the warming lane):
 * what the prior stands for is an assumption, not a sample, so only the observed part is uncertain.
 */
function estimate(k: number, n: number, confidence: number, prior: { imputed: number; observed: { k: number; n: number } } | null = null): RateEstimate {
  const kk = Math.min(k, n);
  const raw = n > 0 ? kk / n : 0;
  let { low, high } = n > 0 ? wilsonInterval(kk, n, confidence) : { low: 0, high: 0 };
  if (prior && n > 0) {
    const o = prior.observed;
    const band = o.n > 0 ? wilsonInterval(Math.min(o.k, o.n), o.n, confidence) : { low: 0, high: 0 };
    low = (o.n * band.low + prior.imputed) / n;
    high = (o.n * band.high + prior.imputed) / n;
  }
  return {
    raw_pct: round(raw * 100),
    wilson_low_pct: round(low * 100),
    wilson_high_pct: round(high * 100),
    numerator: round(k),
    denominator: n,
    source: prior ? 'prior' : 'observed',
    imputed: round(prior?.imputed ?? 0),
  };
}

/** Counts of both lanes added. */
export function addCounts(a: TrustCounts, b: TrustCounts): TrustCounts {
  const out = { ...ZERO_COUNTS };
  for (const k of Object.keys(out) as (keyof TrustCounts)[]) out[k] = a[k] + b[k];
  return out;
}

/** Each term's rate: observed on both lanes, or, for engagement the tenant does not report, the prior on the external lane. */
export function componentRates(input: Pick<TrustInput, 'lanes' | 'reported'>, w: TrustSettings): Record<ComponentKey, RateEstimate> {
  const { external: ext, warming: warm } = input.lanes;
  const out = {} as Record<ComponentKey, RateEstimate>;
  for (const c of TRUST_COMPONENTS as readonly TrustComponent[]) {
    const n = ext[c.denominator] + warm[c.denominator];
    const unreported = c.prior !== undefined && !input.reported.has(c.key as EngagementKey);
    if (unreported) {
      const imputed = (settingOf(w, c.prior!.setting) / 100) * ext[c.denominator];
      out[c.key as ComponentKey] = estimate(warm[c.count] + imputed, n, w.confidence, { imputed, observed: { k: warm[c.count], n: warm[c.denominator] } });
    } else {
      out[c.key as ComponentKey] = estimate(ext[c.count] + warm[c.count], n, w.confidence);
    }
  }
  return out;
}

/** The formula itself, on percentages per term. The worked examples (5% bounces = -50, 0.3% complaints = 0) hold here. */
export function scoreFromRates(ratesPct: Record<ComponentKey, number>, authenticated: boolean, w: TrustSettings): { score: number; raw: number; contributions: Contributions } {
  const contributions = { base: authenticated ? w.base_authenticated : 0 } as Contributions;
  let raw = contributions.base;
  for (const c of TRUST_COMPONENTS as readonly TrustComponent[]) {
    const points = round((c.direction * settingOf(w, c.weight.setting) * ratesPct[c.key as ComponentKey]) / c.weight.perPct);
    contributions[c.key as ComponentKey] = points;
    raw += points;
  }
  return { score: round(Math.min(100, Math.max(0, raw)), 2), raw, contributions };
}

/**
 * Clean sends needed so that `bad / (sends + x) <= target`: x = ceil(bad / target - sends), at least 0.
 * Integer arithmetic on thousandths of a percent, so 5 bounces in 100 at 1% is exactly 400.
 */
export function cleanSendsNeeded(bad: number, sends: number, targetPct: number): number {
  const t = Math.round(targetPct * 1000); // target in thousandths of a percent
  if (t <= 0) return bad > 0 ? Number.POSITIVE_INFINITY : 0;
  const x = Math.ceil((bad * 100_000 - t * sends) / t);
  return Math.max(0, x);
}

type Pick3 = (r: RateEstimate) => number;
const ratesBy = (rates: Record<ComponentKey, RateEstimate>, pick: (c: TrustComponent) => Pick3): Record<ComponentKey, number> =>
  Object.fromEntries((TRUST_COMPONENTS as readonly TrustComponent[]).map((c) => [c.key, pick(c)(rates[c.key as ComponentKey])])) as Record<ComponentKey, number>;

/**
 * The score after x more clean warming sends: the penalties' counts stay while their denominators grow
 * by x; each engagement term's new sends engage at `expected` (percent), or at the tenant's rate now.
 */
function scoreAfterCleanSends(rates: Record<ComponentKey, RateEstimate>, expected: Partial<Record<EngagementKey, number>>, x: number, authenticated: boolean, w: TrustSettings): { score: number; raw: number } {
  // the same rounding as the rates the score is computed from, so "unlocks after x" agrees with assessTrust
  const pct = ratesBy(rates, (c) => (r) => {
    if (c.direction < 0) return estimate(r.numerator, r.denominator + x, w.confidence).raw_pct;
    const e = expected[c.key as EngagementKey];
    return e === undefined ? r.raw_pct : estimate(r.numerator + (e / 100) * x, r.denominator + x, w.confidence).raw_pct;
  });
  return scoreFromRates(pct, authenticated, w);
}

/** What each engagement term is worth, for the instructions: "replies 1.5 points per 1%, opens 0.2 points per 1%". */
const engagementWorth = (w: TrustSettings): string =>
  (TRUST_COMPONENTS as readonly TrustComponent[])
    .filter((c) => c.direction > 0)
    .map((c) => `${c.key} ${settingOf(w, c.weight.setting)} points per ${c.weight.perPct}%`)
    .join(', ');

/**
 * What clean warming sends are expected to earn, per engagement term: how warming mail engages where
 * that is known; else nothing is assumed beyond the tenant's own rate, or, with no data at all, the prior.
 */
function expectedEngagement(rates: Record<ComponentKey, RateEstimate>, warming: Partial<Record<EngagementKey, number>>, w: TrustSettings): Partial<Record<EngagementKey, number>> {
  const out: Partial<Record<EngagementKey, number>> = {};
  for (const c of TRUST_COMPONENTS as readonly TrustComponent[]) {
    if (!c.prior) continue;
    const k = c.key as EngagementKey;
    const known = warming[k];
    if (known !== undefined) out[k] = known;
    else if (rates[k].denominator === 0) out[k] = settingOf(w, c.prior.setting);
  }
  return out;
}

/** The rehabilitation of a locked tenant, from the unlock rule itself. */
function rehabilitate(
  rates: Record<ComponentKey, RateEstimate>,
  expected: Partial<Record<EngagementKey, number>>,
  c: TrustCounts,
  authenticated: boolean,
  w: TrustSettings,
  score: number,
  previousTarget: number | null,
  lockChanged: boolean,
): Rehabilitation {
  const milestones = {} as Record<PenaltyKey, Milestone>;
  for (const comp of TRUST_COMPONENTS as readonly TrustComponent[]) {
    if (!comp.target) continue;
    const r = rates[comp.key as ComponentKey];
    const target = settingOf(w, comp.target.setting);
    milestones[comp.key as PenaltyKey] = { current_pct: r.raw_pct, target_pct: target, clean_sends_needed: cleanSendsNeeded(r.numerator, r.denominator, target) };
  }
  const U = w.unlock_at_or_above;
  const unlocks = (x: number) => scoreAfterCleanSends(rates, expected, x, authenticated, w).score >= U;
  // at the limit every penalty is gone: base + engagement is the best clean sends alone can reach
  const ceiling = scoreAfterCleanSends(rates, expected, 1e15, authenticated, w).raw;
  let needed: number | null;
  let engagementPointsNeeded = 0;
  if (!authenticated) {
    needed = null;
  } else if (unlocks(0)) {
    needed = 0;
  } else if (ceiling < U || !unlocks(1e12)) {
    needed = null;
    engagementPointsNeeded = round(U - ceiling + 0.01, 2);
  } else {
    // the score rises with every clean send: the first x that reaches the line, by bisection
    let lo = 0;
    let hi = 1;
    while (!unlocks(hi)) hi *= 2;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (unlocks(mid)) hi = mid;
      else lo = mid;
    }
    needed = hi;
  }
  // the lock rule also wants a sufficient sample
  if (needed !== null) needed = Math.max(needed, w.min_sample - c.sent, 0);

  const parts: string[] = [];
  if (!authenticated) parts.push('verify SPF, DKIM and DMARC for the sending domain');
  const engagementNote = (Object.entries(expected) as [EngagementKey, number][]).map(([k, pct]) => `${k} ${round(pct, 2)}%`).join(', ');
  const assumption = engagementNote ? `at the engagement warming mail earns (${engagementNote})` : 'at the engagement you have now';
  const onTheWay = (Object.entries(milestones) as [PenaltyKey, Milestone][])
    .filter(([, m]) => m.clean_sends_needed > 0 && (needed === null || m.clean_sends_needed < needed))
    .map(([k, m]) => `${m.clean_sends_needed} bring ${k} from ${m.current_pct}% to ${m.target_pct}%`);
  if (needed !== null && needed > 0) {
    parts.push(`send ${needed} clean warming messages (no bounces, no complaints), ${assumption}${onTheWay.length ? ` (${onTheWay.join('; ')})` : ''}`);
  } else if (needed === null && authenticated) {
    parts.push(
      `clean sends alone cannot unlock external sending: ${assumption} the score can reach ${round(Math.min(100, ceiling), 2)} at most; engagement must add ${engagementPointsNeeded} more points (${engagementWorth(w)})${onTheWay.length ? `; meanwhile ${onTheWay.join('; ')}` : ''}`,
    );
  }
  parts.push(`external sending unlocks when the Platform Trust Score reaches ${U} (now ${score})`);
  return {
    clean_sends_needed: needed,
    assumed_engagement_pct: Object.fromEntries((Object.entries(expected) as [EngagementKey, number][]).map(([k, pct]) => [k, round(pct, 4)])),
    engagement_points_needed: engagementPointsNeeded,
    milestones,
    score_needed: U,
    target_at_lock: lockChanged ? needed : (previousTarget ?? needed),
    instructions: `${parts.join('; ')}.`.replace(/^./, (ch) => ch.toUpperCase()),
  };
}

export function assessTrust(input: TrustInput, w: TrustSettings): TrustAssessment {
  const { authenticated, previous } = input;
  const c = addCounts(input.lanes.external, input.lanes.warming);
  const sends = c.sent;
  const rates = componentRates(input, w);
  const sufficient = sends >= w.min_sample;
  const { score, contributions } = scoreFromRates(ratesBy(rates, () => (r) => r.raw_pct), authenticated, w);
  const optimistic = scoreFromRates(ratesBy(rates, (k) => (r) => (k.direction > 0 ? r.wilson_high_pct : r.wilson_low_pct)), authenticated, w).score;
  const pessimistic = scoreFromRates(ratesBy(rates, (k) => (r) => (k.direction > 0 ? r.wilson_low_pct : r.wilson_high_pct)), authenticated, w).score;

  // a lock that was only about authentication says nothing about the score: once the domain is
  // verified, the tenant is judged as if it had never been locked
  const wasScoreLocked = (previous?.locked ?? false) && (previous?.lockKind ?? 'score') === 'score';
  let kind: LockKind | null;
  let reason: string | null;
  if (!authenticated) {
    // not a statistic: no sample size makes an unauthenticated domain safe to send from
    kind = 'authentication';
    reason = 'the sending domain is not authenticated: SPF, DKIM and DMARC must all be verified';
  } else if (!sufficient) {
    kind = wasScoreLocked ? 'score' : null;
    reason = wasScoreLocked ? (previous?.lockReason ?? 'locked') : null;
  } else if (wasScoreLocked) {
    kind = score < w.unlock_at_or_above ? 'score' : null;
    reason = kind ? `score ${score} is below the unlock threshold ${w.unlock_at_or_above}` : null;
  } else {
    kind = optimistic < w.lock_below ? 'score' : null;
    reason = kind ? `score ${score} fell below ${w.lock_below} (and so did the benefit-of-the-doubt score ${optimistic})` : null;
  }
  const locked = kind !== null;
  const lockChanged = kind !== ((previous?.locked ?? false) ? (previous?.lockKind ?? 'score') : null);
  const lockedAt = locked ? (lockChanged ? input.now : (previous?.lockedAt ?? input.now)) : null;

  return {
    score,
    score_bounds: { optimistic, pessimistic },
    contributions,
    rates,
    counts: c,
    sample: { sends, delivered: c.delivered, min_sample: w.min_sample, sufficient },
    basis: sufficient ? 'wilson_interval' : 'insufficient_sample',
    authenticated,
    locked,
    lock_kind: kind,
    lock_changed: lockChanged,
    lock_reason: reason,
    locked_at: lockedAt,
    thresholds: { lock_below: w.lock_below, unlock_at_or_above: w.unlock_at_or_above },
    rehabilitation: locked ? rehabilitate(rates, expectedEngagement(rates, input.warmingEngagementPct ?? {}, w), c, authenticated, w, score, previous?.rehabTargetSends ?? null, lockChanged) : null,
  };
}
