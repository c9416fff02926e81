/**
 * The per-recipient gate of the submission gateway, as a pure function of the facts the adapters
 * fetched (suppression, warming-network membership, trust state, the tenant's external budget read
 * from kumod's throttle keys). Every refusal carries the SMTP code, the enhanced status code and a
 * reason a sender can act on (the wording is in replies.ts). When a fact could not be fetched (Redis
 * down), the answer is "try later", never an accept: a limit that cannot be read is not a limit lifted.
 */
import { formatReply, REPLIES, type GatewayReply } from './replies.js';

export type Lane = 'external' | 'warming';

export interface GateFacts {
  recipient: string;
  suppression: { pattern: string; scope: 'tenant' | 'global'; reason: string } | null;
  /** the recipient is a mailbox of the internal warming network */
  warmingMember: boolean;
  /**
   * warming sends the tenant may still make today under its schedule; 'unlimited' when no schedule
   * applies (the platform's warming agent, whose mail is the schedule); null when it could not be read
   */
  warmingRemainingToday: number | 'unlimited' | null;
  trust: { locked: boolean; /** null: not scored yet */ score: number | null; lockBelow: number; unlockAt: number; rehabilitation: string | null };
  /** why the tenant's placement keeps it off external IPs (rehabilitation or quarantine tier), or null */
  placementHold: string | null;
  /** null: the budget could not be read (Redis unreachable); undefined: not read (see budgetNeeded) */
  externalBudget?: { remaining: number; nextInSeconds: number } | null;
}

export type GateRefusal = GatewayReply & { accept: false; reason: 'suppressed' | 'locked' | 'budget' | 'warming_schedule' | 'unavailable' };
export type GateDecision = { accept: true; lane: Lane } | GateRefusal;

const refuse = (reason: GateRefusal['reason'], r: GatewayReply): GateRefusal => ({ accept: false, reason, ...r });

/**
 * Whether the decision depends on the external budget, so the adapter reads Redis only then: a
 * suppressed, warming or locked recipient is decided without it.
 */
export function budgetNeeded(f: Omit<GateFacts, 'externalBudget'>): boolean {
  return !f.suppression && !f.warmingMember && !f.trust.locked && f.placementHold === null;
}

export function decideRecipient(f: GateFacts): GateDecision {
  if (f.suppression) {
    return refuse('suppressed', REPLIES.suppressed(f.recipient, f.suppression.scope, f.suppression.pattern, f.suppression.reason));
  }
  if (f.warmingMember) {
    if (f.warmingRemainingToday === null) return refuse('unavailable', REPLIES.warmingScheduleUnreadable);
    if (f.warmingRemainingToday !== 'unlimited' && f.warmingRemainingToday <= 0) return refuse('warming_schedule', REPLIES.warmingScheduleUsed);
    return { accept: true, lane: 'warming' };
  }
  if (f.trust.locked) {
    return refuse('locked', REPLIES.trustLocked(String(f.trust.score ?? 'not computed yet'), f.trust.lockBelow, f.trust.unlockAt, f.trust.rehabilitation));
  }
  if (f.placementHold !== null) return refuse('locked', REPLIES.placementHold(f.placementHold));
  if (f.externalBudget === undefined) throw new Error('decideRecipient: the external budget was needed but not read');
  if (f.externalBudget === null) return refuse('unavailable', REPLIES.budgetUnreadable);
  if (f.externalBudget.remaining <= 0) return refuse('budget', REPLIES.budgetUsed(Math.ceil(f.externalBudget.nextInSeconds)));
  return { accept: true, lane: 'external' };
}

/** The SMTP reply line for a refusal, e.g. `550 5.7.1 external sending is locked: ...`. */
export const smtpReply = (d: GateRefusal): string => formatReply(d);
