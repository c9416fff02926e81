/**
 * MAIL FROM: a new envelope. The sender must be a plain address on a domain the tenant verified (the
 * warming agent's sender must be a warming peer, whose tenant it then is); SMTPUTF8 is refused, as the
 * relay to kumod does not carry it; BODY is passed on.
 */
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import { newMessageBudget } from '../../app/submission/gate-recipient.js';
import { addressDomain } from '../../domain/submission/addresses.js';
import { REPLIES } from '../../domain/submission/replies.js';
import type { GatewayDeps } from '../deps.js';
import { refusal } from '../refusal.js';
import { abandon, currentFacts } from '../session.js';

export async function handleMailFrom(deps: GatewayDeps, address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
  const s = deps.sessions.of(session);
  await abandon(s);
  if (s.warmingAgent) {
    // the agent writes as a peer of the network: that peer's tenant is the sender
    const member = address.address ? await deps.facts.warmingPeer(address.address) : null;
    if (!member) throw refusal(REPLIES.agentNotFromPeer);
    s.tenantId = member.tenantId;
  }
  const f = await currentFacts(deps.facts, s);
  if (address.address === '') throw refusal(REPLIES.nullSender);
  const domain = addressDomain(address.address);
  if (!domain) throw refusal(REPLIES.senderNotPlain);
  if (!f.verifiedDomains.has(domain)) throw refusal(REPLIES.senderDomainUnverified(domain));
  const args = (address.args || {}) as Record<string, string | boolean>;
  const body = typeof args.BODY === 'string' ? args.BODY.toUpperCase() : null;
  if (args.SMTPUTF8) throw refusal(REPLIES.smtputf8Unsupported);
  s.facts = f;
  s.mailFrom = address.address;
  s.mailParams = body === '8BITMIME' || body === '7BIT' ? `BODY=${body}` : '';
  s.budget = newMessageBudget();
  s.warmingRecipients = 0;
  s.startedAt = performance.now();
}
