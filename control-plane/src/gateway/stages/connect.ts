/**
 * A new connection: a client inside a tenant's bound submission network is that tenant from here on
 * (and sends without AUTH, so the command cap before AUTH does not apply to it); anyone else must
 * authenticate before MAIL. A tenant at its session limit is turned away.
 */
import type { SMTPServerSession } from 'smtp-server';
import { REPLIES } from '../../domain/submission/replies.js';
import { peerAddress, type GatewayDeps } from '../deps.js';
import { refusal } from '../refusal.js';
import type { MarkedSession } from '../session.js';

export async function handleConnect(deps: GatewayDeps, session: SMTPServerSession): Promise<void> {
  const s = deps.sessions.of(session);
  let tenantId: string | null;
  try {
    tenantId = await deps.facts.networkTenant(peerAddress(session.remoteAddress));
  } catch (e) {
    deps.log.error({ err: { message: (e as Error).message } }, 'submission network lookup failed');
    throw refusal(REPLIES.serviceUnavailable);
  }
  if (!tenantId) return;
  if (!deps.sessions.claim(s, tenantId)) throw refusal(REPLIES.tenantSessionsAtConnect);
  s.tenantId = tenantId;
  (session as MarkedSession).boundNetwork = true;
}
