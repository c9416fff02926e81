/**
 * AUTH PLAIN or LOGIN: the authenticator decides (lockouts, slow-down, scrypt); the session becomes
 * its tenant's, or the warming agent's, whose tenant each message's sender names.
 */
import type { SMTPServerSession } from 'smtp-server';
import { REPLIES } from '../../domain/submission/replies.js';
import { peerAddress, type GatewayDeps } from '../deps.js';
import { refusal } from '../refusal.js';

export interface AuthAttempt {
  method: string;
  username?: string | undefined;
  password?: string | null | undefined;
}

/** The smtp-server `user` of the session on success; a Refusal otherwise. */
export async function handleAuth(deps: GatewayDeps, a: AuthAttempt, session: SMTPServerSession): Promise<{ user: string }> {
  const s = deps.sessions.of(session);
  let r: Awaited<ReturnType<typeof deps.auth.authenticate>>;
  try {
    r = await deps.auth.authenticate(a.username ?? '', a.password ?? '', peerAddress(session.remoteAddress));
  } catch (e) {
    deps.log.error({ err: { message: (e as Error).message } }, 'authentication failed with an error');
    throw refusal(REPLIES.authUnavailable);
  }
  deps.observer.auth(r.ok ? 'ok' : r.reason);
  if (!r.ok) {
    // never the username or password: the IP and the reason are what an operator acts on
    deps.log.info({ session: session.id, ip: session.remoteAddress, reason: r.reason }, 'authentication refused');
    throw refusal(r);
  }
  if (r.warmingAgent) {
    s.warmingAgent = true;
    return { user: r.username };
  }
  if (!deps.sessions.claim(s, r.tenantId)) throw refusal(REPLIES.tenantSessionsAtAuth);
  s.tenantId = r.tenantId;
  s.credentialId = r.credentialId;
  deps.log.debug({ session: session.id, tenant: r.tenantId, credential: r.credentialId }, 'authenticated');
  return { user: r.tenantId };
}
