/**
 * IP warm-up: per mailbox provider, a daily cap that starts small and grows by a factor a day (about
 * x1.4 by default, after the public ESP ramps), up to a ceiling. An IP moves to the next day only when
 * it actually sent most of the day's volume and its bounce and complaint rates were clean; a day that
 * was not earned is repeated. An IP that has been idle for too long starts over, because receivers
 * forget. Pure.
 */
import type { Settings } from '../settings/settings.js';
import { MAILBOX_PROVIDERS, type MailboxProvider } from './naming.js';

export type WarmupSettings = Settings['ip_warmup'];

export type ProviderCaps = Record<MailboxProvider, number>;

export function capsForDay(day: number, s: WarmupSettings): ProviderCaps {
  const out = {} as ProviderCaps;
  for (const p of MAILBOX_PROVIDERS) out[p] = Math.min(s.max_per_day[p], Math.round(s.start_per_day[p] * s.growth_factor ** day));
  return out;
}

/** The first day on which every provider's cap has reached its ceiling: the ramp is complete. */
export function rampLength(s: WarmupSettings): number {
  let day = 0;
  while (day < 365 && MAILBOX_PROVIDERS.some((p) => capsForDay(day, s)[p] < s.max_per_day[p])) day++;
  return day;
}

/**
 * Caps as KumoMTA throttle specs, the form the policy renderer emits as source_selection_rate. The
 * burst is an hour's share of the day (KumoMTA's docs warn that a bare daily rate lets a warming IP
 * spend its whole day at the first opportunity; a burst of one would space sends evenly but would
 * also spread them through the night, when mailboxes are idle).
 */
export function capsAsThrottles(caps: ProviderCaps): Record<MailboxProvider, string> {
  const out = {} as Record<MailboxProvider, string>;
  for (const p of MAILBOX_PROVIDERS) {
    const perDay = Math.max(1, caps[p]);
    out[p] = `${perDay}/d,max_burst=${Math.max(1, Math.ceil(perDay / 24))}`;
  }
  return out;
}

export interface DayTotals {
  sent: ProviderCaps;
  hardBounces: number;
  complaints: number;
}

export interface WarmupInputs {
  state: 'warming' | 'active' | 'quarantined' | 'retired';
  day: number;
  stateChangedAt: Date;
  lastSentAt: Date | null;
  /** what the IP did on the day that just ended */
  yesterday: DayTotals;
  now: Date;
}

export type WarmupAction =
  | { kind: 'advance'; toDay: number; reason: string }
  | { kind: 'hold'; reason: string }
  | { kind: 'complete'; reason: string }
  | { kind: 'rewarm'; reason: string }
  | { kind: 'rested'; reason: string }
  | { kind: 'none'; reason: string };

export function decideWarmup(i: WarmupInputs, s: WarmupSettings): WarmupAction {
  const dayMs = 86_400_000;
  if (i.state === 'retired') return { kind: 'none', reason: 'retired' };
  if (i.state === 'quarantined') {
    const rested = i.now.getTime() - i.stateChangedAt.getTime() >= s.rest_days * dayMs;
    return rested
      ? { kind: 'rested', reason: `rested ${s.rest_days} days after quarantine: starts warming again from day 0` }
      : { kind: 'none', reason: `resting until ${new Date(i.stateChangedAt.getTime() + s.rest_days * dayMs).toISOString()}` };
  }
  const idleSince = i.lastSentAt ?? i.stateChangedAt;
  if (i.state === 'active' && i.now.getTime() - idleSince.getTime() >= s.idle_rewarm_days * dayMs) {
    return { kind: 'rewarm', reason: `idle for ${s.idle_rewarm_days} days or more: receivers have forgotten it, warming again from day 0` };
  }
  if (i.state !== 'warming') return { kind: 'none', reason: 'active' };

  const caps = capsForDay(i.day, s);
  const capTotal = MAILBOX_PROVIDERS.reduce((n, p) => n + caps[p], 0);
  const sentTotal = MAILBOX_PROVIDERS.reduce((n, p) => n + Math.min(i.yesterday.sent[p], caps[p]), 0);
  const fillPct = capTotal > 0 ? (sentTotal / capTotal) * 100 : 0;
  const allSent = MAILBOX_PROVIDERS.reduce((n, p) => n + i.yesterday.sent[p], 0);
  const bouncePct = allSent > 0 ? (i.yesterday.hardBounces / allSent) * 100 : 0;
  const complaintPct = allSent > 0 ? (i.yesterday.complaints / allSent) * 100 : 0;
  const stats = `sent ${sentTotal} of ${capTotal} (${fillPct.toFixed(1)}%), bounces ${bouncePct.toFixed(2)}%, complaints ${complaintPct.toFixed(3)}%`;

  if (bouncePct > s.clean_bounce_pct || complaintPct > s.clean_complaint_pct) {
    return { kind: 'hold', reason: `day ${i.day} repeats: not clean (${stats}; limits ${s.clean_bounce_pct}% / ${s.clean_complaint_pct}%)` };
  }
  if (fillPct < s.advance_min_fill_pct) {
    return { kind: 'hold', reason: `day ${i.day} repeats: the cap was not reached (${stats}; needs ${s.advance_min_fill_pct}%)` };
  }
  const next = i.day + 1;
  if (next >= rampLength(s)) return { kind: 'complete', reason: `ramp complete after day ${i.day} (${stats}): the IP becomes active` };
  return { kind: 'advance', toDay: next, reason: `day ${i.day} earned (${stats}): day ${next} caps apply` };
}
