/**
 * RCPT TO: the gate decides the recipient (suppression, warming lane, trust lock, budget, warming
 * plan) on the facts as of now; an accepted recipient is passed to kumod at once, and kumod's answer
 * to it is the client's answer. One message keeps to one lane.
 */
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import { isRelayFailure, RelayTransaction } from '../../adapters/smtp/relay-transaction.js';
import { addressDomain } from '../../domain/submission/addresses.js';
import { REPLIES } from '../../domain/submission/replies.js';
import type { GatewayDeps } from '../deps.js';
import { refusal, relayRefusal } from '../refusal.js';
import { currentFacts } from '../session.js';

export async function handleRcptTo(deps: GatewayDeps, address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
  const s = deps.sessions.of(session);
  if (!s.facts || !s.mailFrom) throw refusal(REPLIES.mailFirst);
  const f = await currentFacts(deps.facts, s);
  s.facts = f;
  if (session.envelope.rcptTo.length >= deps.cfg.maxRecipients) throw refusal(REPLIES.tooManyRecipients(deps.cfg.maxRecipients));
  const rcpt = address.address;
  if (!addressDomain(rcpt)) throw refusal(REPLIES.recipientNotPlain);
  const t0 = performance.now();
  // a tenant's own warming mail counts against its plan for the day; the agent's is the plan
  const warmingLeft = s.warmingAgent
    ? null
    : async () => {
        const left = await deps.warming.remainingToday(f.tenantId, f.warmingPlannedToday);
        return left === null ? null : left - s.warmingRecipients;
      };
  const d = await deps.gate.decide(f, rcpt, s.budget, warmingLeft);
  if (s.warmingAgent && d.accept && d.lane !== 'warming') throw refusal(REPLIES.agentNotToMember);
  deps.observer.gate(d.accept ? (d.lane === 'external' ? 'accepted_external' : 'accepted_warming') : d.reason, (performance.now() - t0) / 1000);
  if (!d.accept) {
    deps.log.info({ session: session.id, tenant: f.tenantId, rcpt_domain: addressDomain(rcpt), reason: d.reason }, 'recipient refused by the gate');
    throw refusal(d);
  }
  if (s.lane && s.lane !== d.lane) throw refusal(REPLIES.laneMix(d.lane, s.lane));
  if (!s.tx) {
    s.lane = d.lane;
    s.tx = new RelayTransaction(deps.pool, f.relayNodes[d.lane], s.mailFrom, s.mailParams);
  }
  const r = await s.tx.addRecipient(rcpt);
  if (r.code !== 250 && r.code !== 251) {
    if (isRelayFailure(r)) deps.observer.relayError('recipient');
    throw relayRefusal(r);
  }
  // counted once kumod has the recipient: a plan is spent by mail that went, not mail that was tried
  if (d.lane === 'warming' && !s.warmingAgent) s.warmingRecipients++;
}
