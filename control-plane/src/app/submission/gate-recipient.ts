/**
 * The gate for one recipient: fetch the facts the pure decision needs (suppression and warming
 * membership from PostgreSQL, the external budget from kumod's Redis throttle key only when it
 * matters) and decide. Redis that is away or slow means "try later", never an accept.
 */
import type { Redis } from 'ioredis';
import type { Db } from '../../adapters/pg/database.js';
import { readExternalBudget } from '../../adapters/redis/throttle-reader.js';
import { budgetNeeded, decideRecipient, type GateDecision, type GateFacts } from '../../domain/submission/gate.js';
import { recipientFacts, type TenantSubmissionFacts } from './submission-facts.js';

/** Longer than a healthy Redis ever takes, short enough that a client is not kept waiting. */
export const BUDGET_READ_TIMEOUT_MS = 500;

export async function readBudgetOrNull(redis: Redis, tenantId: string, spec: string): Promise<GateFacts['externalBudget']> {
  if (redis.status !== 'ready') return null;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      readExternalBudget(redis, tenantId, spec),
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), BUDGET_READ_TIMEOUT_MS);
      }),
    ]);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

export async function gateRecipient(deps: { db: Db; redis: Redis; now: () => Date }, tenant: TenantSubmissionFacts, recipient: string): Promise<GateDecision> {
  const r = await recipientFacts(deps.db, tenant.tenantId, recipient, deps.now());
  const facts: Omit<GateFacts, 'externalBudget'> = {
    recipient,
    suppression: r.suppression,
    warmingMember: r.warmingMember,
    // issue 7's scheduler fills this in; until then warming mail is unlimited
    warmingRemainingToday: null,
    trust: tenant.trust,
    placementHold: tenant.placementHold,
  };
  if (!budgetNeeded(facts)) return decideRecipient(facts);
  const externalBudget = tenant.externalThrottleSpec === null ? null : await readBudgetOrNull(deps.redis, tenant.tenantId, tenant.externalThrottleSpec);
  return decideRecipient({ ...facts, externalBudget });
}
