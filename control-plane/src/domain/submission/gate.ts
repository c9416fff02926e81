/**
 * The per-recipient gate of the submission gateway, as a pure function of the facts the adapters
 * fetched (suppression, warming-network membership, trust state, the tenant's external budget read
 * from kumod's throttle keys). Every refusal carries the SMTP code, the enhanced status code and a
 * reason a sender can act on. When a fact could not be fetched (Redis down), the answer is "try
 * later", never an accept.
 */
export type Lane = 'external' | 'warming';

export interface GateFacts {
  recipient: string;
  suppression: { pattern: string; scope: 'tenant' | 'global'; reason: string } | null;
  /** the recipient is a mailbox of the internal warming network */
  warmingMember: boolean;
  /** warming sends the tenant may still make today under its schedule; null when it has none */
  warmingRemainingToday: number | null;
  trust: { locked: boolean; /** null: not scored yet */ score: number | null; lockBelow: number; unlockAt: number; rehabilitation: string | null };
  /** why the tenant's placement keeps it off external IPs (rehabilitation or quarantine tier), or null */
  placementHold: string | null;
  /** null: the budget could not be read (Redis unreachable); undefined: not read (see budgetNeeded) */
  externalBudget?: { remaining: number; nextInSeconds: number } | null;
}

export type GateDecision =
  | { accept: true; lane: Lane }
  | { accept: false; code: 550 | 452 | 451; enhanced: string; message: string; reason: 'suppressed' | 'locked' | 'budget' | 'warming_schedule' | 'unavailable' };

const refuse = (code: 550 | 452 | 451, enhanced: string, reason: Exclude<GateDecision, { accept: true }>['reason'], message: string): GateDecision => ({
  accept: false,
  code,
  enhanced,
  reason,
  message,
});

/**
 * Whether the decision depends on the external budget, so the adapter reads Redis only then: a
 * suppressed, warming or locked recipient is decided without it.
 */
export function budgetNeeded(f: Omit<GateFacts, 'externalBudget'>): boolean {
  return !f.suppression && !f.warmingMember && !f.trust.locked && f.placementHold === null;
}

export function decideRecipient(f: GateFacts): GateDecision {
  if (f.suppression) {
    return refuse(550, '5.1.1', 'suppressed', `${f.recipient} is on the ${f.suppression.scope} suppression list (${f.suppression.pattern}: ${f.suppression.reason})`);
  }
  if (f.warmingMember) {
    if (f.warmingRemainingToday !== null && f.warmingRemainingToday <= 0) {
      return refuse(452, '4.7.1', 'warming_schedule', 'today\'s warming schedule is used up: try again tomorrow');
    }
    return { accept: true, lane: 'warming' };
  }
  if (f.trust.locked) {
    const rehab = f.trust.rehabilitation ? ` ${f.trust.rehabilitation}` : '';
    return refuse(550, '5.7.1', 'locked', `external sending is locked: Platform Trust Score ${f.trust.score ?? 'not computed yet'} (locks below ${f.trust.lockBelow}, unlocks at ${f.trust.unlockAt}).${rehab}`);
  }
  if (f.placementHold !== null) {
    return refuse(550, '5.7.1', 'locked', `external sending is paused: ${f.placementHold}`);
  }
  if (f.externalBudget === undefined) throw new Error('decideRecipient: the external budget was needed but not read');
  if (f.externalBudget === null) {
    return refuse(451, '4.3.0', 'unavailable', 'the sending budget cannot be checked right now: try again later');
  }
  if (f.externalBudget.remaining <= 0) {
    return refuse(452, '4.7.1', 'budget', `the external sending budget is used up: it refills in ${Math.ceil(f.externalBudget.nextInSeconds)} seconds`);
  }
  return { accept: true, lane: 'external' };
}

/** The SMTP reply line for a refusal, e.g. `550 5.7.1 external sending is locked: ...`. */
export function smtpReply(d: Exclude<GateDecision, { accept: true }>): string {
  return `${d.code} ${d.enhanced} ${d.message.replace(/[\r\n]+/g, ' ')}`;
}
