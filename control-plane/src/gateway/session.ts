/**
 * What the gateway knows about each SMTP session between commands, and the per-tenant session count.
 * One GatewaySession per smtp-server session (by its id), made at connect and dropped at close.
 */
import type { SMTPServerSession } from 'smtp-server';
import type { RelayTransaction } from '../adapters/smtp/relay-transaction.js';
import { newMessageBudget, type MessageBudget } from '../app/submission/gate-recipient.js';
import type { SubmissionFacts, TenantSubmissionFacts } from '../app/submission/submission-facts.js';
import type { Lane } from '../domain/submission/gate.js';
import { REPLIES } from '../domain/submission/replies.js';
import { refusal } from './refusal.js';

export interface GatewaySession {
  tenantId: string | null;
  /** the platform's warming agent: the tenant comes from each message's sender */
  warmingAgent: boolean;
  /** the SMTP credential the session authenticated with (null: a bound network, or the warming agent) */
  credentialId: string | null;
  /** that credential was found revoked: a revocation is for good, so it is not looked up again */
  revoked: boolean;
  /** the tenant counted against its connection limit for this session */
  counted: string | null;
  /** the facts the last command was decided on (read again at every MAIL, RCPT and DATA) */
  facts: TenantSubmissionFacts | null;
  mailFrom: string | null;
  mailParams: string;
  lane: Lane | null;
  tx: RelayTransaction | null;
  budget: MessageBudget;
  /** the tenant's own warming-network recipients in this message, charged to its plan on 250 */
  warmingRecipients: number;
  startedAt: number;
}

/** smtp-server's session with what the gateway marks on it (read by smtp-server-tuning.ts). */
export type MarkedSession = SMTPServerSession & { boundNetwork?: boolean };

const newSession = (): GatewaySession => ({
  tenantId: null, warmingAgent: false, credentialId: null, revoked: false, counted: null, facts: null,
  mailFrom: null, mailParams: '', lane: null, tx: null, budget: newMessageBudget(), warmingRecipients: 0, startedAt: 0,
});

export class SessionRegistry {
  private readonly sessions = new Map<string, GatewaySession>();
  private readonly perTenant = new Map<string, number>();

  constructor(private readonly maxPerTenant: number) {}

  of(session: SMTPServerSession): GatewaySession {
    let s = this.sessions.get(session.id);
    if (!s) {
      s = newSession();
      this.sessions.set(session.id, s);
    }
    return s;
  }

  /** Forget a session that closed; its tenant slot is released. */
  drop(session: SMTPServerSession): GatewaySession | null {
    const s = this.sessions.get(session.id);
    if (!s) return null;
    this.sessions.delete(session.id);
    this.release(s);
    return s;
  }

  /** Count the session against its tenant's limit; false when the tenant is at its limit. */
  claim(s: GatewaySession, tenantId: string): boolean {
    if (s.counted === tenantId) return true;
    if ((this.perTenant.get(tenantId) ?? 0) >= this.maxPerTenant) return false;
    this.release(s);
    this.perTenant.set(tenantId, (this.perTenant.get(tenantId) ?? 0) + 1);
    s.counted = tenantId;
    return true;
  }

  private release(s: GatewaySession): void {
    if (!s.counted) return;
    const n = (this.perTenant.get(s.counted) ?? 1) - 1;
    if (n <= 0) this.perTenant.delete(s.counted);
    else this.perTenant.set(s.counted, n);
    s.counted = null;
  }
}

/**
 * The tenant's facts as of now, and whether the session may still send on them: the tenant is
 * active and the credential it authenticated with is not revoked. Asked at MAIL, RCPT and DATA.
 */
export async function currentFacts(facts: SubmissionFacts, s: GatewaySession): Promise<TenantSubmissionFacts> {
  if (s.revoked) throw refusal(REPLIES.credentialRevoked);
  if (!s.tenantId) throw refusal(REPLIES.authRequired);
  let f = await facts.tenant(s.tenantId);
  // a credential created a moment ago may not be in facts cached just before: ask before refusing
  if (f && s.credentialId && !f.activeCredentialIds.has(s.credentialId)) f = await facts.freshTenant(s.tenantId);
  if (!f || !f.active) throw refusal(REPLIES.tenantSuspended);
  if (s.credentialId && !f.activeCredentialIds.has(s.credentialId)) {
    s.revoked = true;
    throw refusal(REPLIES.credentialRevoked);
  }
  return f;
}

/** The client gave up on the envelope (RSET, a new MAIL, QUIT): the relay transaction goes too. */
export async function abandon(s: GatewaySession): Promise<void> {
  const tx = s.tx;
  s.tx = null;
  s.lane = null;
  if (tx) await tx.abandon();
}
