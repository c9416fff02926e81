/** The connection is gone: its tenant slot is freed and an open relay transaction reset or dropped. */
import type { SMTPServerSession } from 'smtp-server';
import type { GatewayDeps } from '../deps.js';
import { abandon } from '../session.js';

export function handleClose(deps: GatewayDeps, session: SMTPServerSession): void {
  const s = deps.sessions.drop(session);
  if (s) void abandon(s);
}
