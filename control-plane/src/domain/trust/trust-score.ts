/**
 * The Platform Trust Score T_s in [0, 100] and what follows from it: the external-sending lock with
 * hysteresis, and the rehabilitation a locked tenant must do. Pure.
 *
 *   T_s = base (50 with SPF, DKIM and DMARC verified, else 0)
 *       + 1.5 per 1% replies + 0.2 per 1% opens
 *       - 10 per 1% bounces  - 100 per 0.1% complaints          (weights are operator settings)
 *
 * The score is the formula on the observed rates. Noise is handled in the lock decision, not by
 * bending the score: below the minimum sample the lock state does not move at all; above it a tenant
 * is locked only when even the benefit-of-the-doubt score (bad rates at the low end of their Wilson
 * interval, good rates at the high end) is below the line, and unlocked only when its score reaches
 * the higher unlock threshold. A handful of unlucky sends cannot lock a tenant; the gap between the
 * two thresholds keeps it from flapping.
 */
import type { Settings } from '../settings/settings.js';

export type TrustSettings = Settings['trust'];

/** Window totals for one tenant (both lanes; the lanes are also reported apart). */
export interface TrustCounts {
  /** messages with a final outcome: delivered, bounced or expired */
  sent: number;
  delivered: number;
  hardBounces: number;
  softBounces: number;
  complaints: number;
  opens: number;
  clicks: number;
  replies: number;
}

export const ZERO_COUNTS: TrustCounts = { sent: 0, delivered: 0, hardBounces: 0, softBounces: 0, complaints: 0, opens: 0, clicks: 0, replies: 0 };

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
  numerator: number;
  denominator: number;
}

/** insufficient_sample: the lock state does not move; wilson_interval: locks use the optimistic bound */
export type Basis = 'wilson_interval' | 'insufficient_sample';

export interface TrustAssessment {
  score: number;
  /** the score with every rate at the tenant's best (optimistic) and worst (pessimistic) plausible value */
  score_bounds: { optimistic: number; pessimistic: number };
  contributions: { base: number; replies: number; opens: number; bounces: number; complaints: number };
  rates: { bounce: RateEstimate; complaint: RateEstimate; open: RateEstimate; reply: RateEstimate };
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

export interface Rehabilitation {
  /** clean sends still needed to bring both rates to target at the current counts */
  clean_sends_needed: number;
  bounce: { current_pct: number; target_pct: number; clean_sends_needed: number };
  complaint: { current_pct: number; target_pct: number; clean_sends_needed: number };
  score_needed: number;
  target_at_lock: number | null;
  instructions: string;
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

function estimate(k: number, n: number, confidence: number): RateEstimate {
  const kk = Math.min(k, n);
  const raw = n > 0 ? kk / n : 0;
  const { low, high } = n > 0 ? wilsonInterval(kk, n, confidence) : { low: 0, high: 0 };
  return { raw_pct: round(raw * 100), wilson_low_pct: round(low * 100), wilson_high_pct: round(high * 100), numerator: k, denominator: n };
}

/** The formula itself, on percentages. The worked examples (5% bounces = -50, 0.3% complaints = 0) hold here. */
export function scoreFromRates(
  rates: { replyPct: number; openPct: number; bouncePct: number; complaintPct: number },
  authenticated: boolean,
  w: TrustSettings,
): { score: number; contributions: TrustAssessment['contributions'] } {
  const contributions = {
    base: authenticated ? w.base_authenticated : 0,
    replies: round(w.reply_points_per_pct * rates.replyPct),
    opens: round(w.open_points_per_pct * rates.openPct),
    bounces: round(-w.bounce_points_per_pct * rates.bouncePct),
    complaints: round(-w.complaint_points_per_tenth_pct * (rates.complaintPct / 0.1)),
  };
  const raw = contributions.base + contributions.replies + contributions.opens + contributions.bounces + contributions.complaints;
  return { score: round(Math.min(100, Math.max(0, raw)), 2), contributions };
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

export function assessTrust(
  input: { counts: TrustCounts; authenticated: boolean; previous: PreviousTrustState | null; now: Date },
  w: TrustSettings,
): TrustAssessment {
  const { counts: c, authenticated, previous } = input;
  const sends = c.sent;
  const rates = {
    bounce: estimate(c.hardBounces, sends, w.confidence),
    complaint: estimate(c.complaints, sends, w.confidence),
    open: estimate(c.opens, c.delivered, w.confidence),
    reply: estimate(c.replies, c.delivered, w.confidence),
  };
  const sufficient = sends >= w.min_sample;
  const { score, contributions } = scoreFromRates(
    { replyPct: rates.reply.raw_pct, openPct: rates.open.raw_pct, bouncePct: rates.bounce.raw_pct, complaintPct: rates.complaint.raw_pct },
    authenticated,
    w,
  );
  const optimistic = scoreFromRates(
    { replyPct: rates.reply.wilson_high_pct, openPct: rates.open.wilson_high_pct, bouncePct: rates.bounce.wilson_low_pct, complaintPct: rates.complaint.wilson_low_pct },
    authenticated,
    w,
  ).score;
  const pessimistic = scoreFromRates(
    { replyPct: rates.reply.wilson_low_pct, openPct: rates.open.wilson_low_pct, bouncePct: rates.bounce.wilson_high_pct, complaintPct: rates.complaint.wilson_high_pct },
    authenticated,
    w,
  ).score;

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

  let rehabilitation: Rehabilitation | null = null;
  if (locked) {
    const b = cleanSendsNeeded(c.hardBounces, sends, w.bounce_target_pct);
    const k = cleanSendsNeeded(c.complaints, sends, w.complaint_target_pct);
    const needed = Math.max(b, k);
    const targetAtLock = lockChanged ? needed : (previous?.rehabTargetSends ?? needed);
    const parts: string[] = [];
    if (!authenticated) parts.push('verify SPF, DKIM and DMARC for the sending domain');
    if (needed > 0) {
      const why = [
        b > 0 ? `bounces from ${rates.bounce.raw_pct}% to ${w.bounce_target_pct}%` : null,
        k > 0 ? `complaints from ${rates.complaint.raw_pct}% to ${w.complaint_target_pct}%` : null,
      ].filter(Boolean);
      parts.push(`send ${needed} clean warming messages (no bounces, no complaints) to bring ${why.join(' and ')}`);
    }
    parts.push(`external sending unlocks when the Platform Trust Score reaches ${w.unlock_at_or_above} (now ${score})`);
    rehabilitation = {
      clean_sends_needed: needed,
      bounce: { current_pct: rates.bounce.raw_pct, target_pct: w.bounce_target_pct, clean_sends_needed: b },
      complaint: { current_pct: rates.complaint.raw_pct, target_pct: w.complaint_target_pct, clean_sends_needed: k },
      score_needed: w.unlock_at_or_above,
      target_at_lock: targetAtLock,
      instructions: `${parts.join('; ')}.`.replace(/^./, (ch) => ch.toUpperCase()),
    };
  }

  return {
    score,
    score_bounds: { optimistic, pessimistic },
    contributions,
    rates,
    sample: { sends, delivered: c.delivered, min_sample: w.min_sample, sufficient },
    basis: sufficient ? 'wilson_interval' : 'insufficient_sample',
    authenticated,
    locked,
    lock_kind: kind,
    lock_changed: lockChanged,
    lock_reason: reason,
    locked_at: lockedAt,
    thresholds: { lock_below: w.lock_below, unlock_at_or_above: w.unlock_at_or_above },
    rehabilitation,
  };
}
