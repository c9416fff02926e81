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

/**
 * What besides its state may keep an IP from carrying mail. Set for IPs the control plane provisioned
 * on a cloud provider; null (or absent) for IPs an operator registered by hand, whose DNS and egress
 * are the operator's word.
 */
export interface MailReadiness {
  /** forward-confirmed reverse DNS verified: the PTR name resolves back to the address */
  rdnsVerified: boolean;
  /** the node may reach external MX hosts on port 25 (domain/provisioning/egress.ts mayCarryExternalMail) */
  externalEgress: boolean;
}

/**
 * The one rule the placement engine asks: may this IP carry mail now? Its state must carry mail and,
 * when it was provisioned, its reverse DNS must be forward-confirmed and its node's port-25 egress open.
 * Receivers refuse or junk mail from an IP whose PTR does not resolve back, and a node without egress
 * would accept mail only to defer it for days.
 *
 * @example
 * ipCarriesMail({ state: 'warming', readiness: { rdnsVerified: false, externalEgress: true } }) // → false
 */
export function ipCarriesMail(ip: { state: IpState; readiness?: MailReadiness | null }): boolean {
  if (!carriesMail(ip.state)) return false;
  const r = ip.readiness;
  return r === undefined || r === null || (r.rdnsVerified && r.externalEgress);
}

export function canTransition(from: IpState, to: IpState): boolean {
  return ALLOWED[from].includes(to);
}

export function allowedTransitions(from: IpState): readonly IpState[] {
  return ALLOWED[from];
}
