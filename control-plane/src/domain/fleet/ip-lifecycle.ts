/**
 * The lifecycle of a sending IP. Warming IPs ramp up; active ones carry full traffic; quarantined ones
 * rest after reputation damage and come back only by warming again; retired is final (released to the
 * provider). An active IP that idles goes back to warming, because receivers forget an IP's history.
 */
export const IP_STATES = ['warming', 'active', 'quarantined', 'retired'] as const;
export type IpState = (typeof IP_STATES)[number];

const ALLOWED: Record<IpState, readonly IpState[]> = {
  warming: ['active', 'quarantined', 'retired'],
  active: ['warming', 'quarantined', 'retired'],
  quarantined: ['warming', 'retired'],
  retired: [],
};

/** Whether an IP in this state carries mail: active ones at full weight, warming ones within their caps. */
export const carriesMail = (state: IpState): boolean => state === 'active' || state === 'warming';

export function canTransition(from: IpState, to: IpState): boolean {
  return ALLOWED[from].includes(to);
}

export function allowedTransitions(from: IpState): readonly IpState[] {
  return ALLOWED[from];
}
