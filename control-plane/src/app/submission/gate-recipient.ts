/**
 * The gate for one recipient: fetch the facts the pure decision needs (suppression and warming
 * membership from PostgreSQL; the external budget from kumod's Redis throttle key, read at the same
 * time when the tenant may send externally) and decide. Lookups of concurrent sessions share round
 * trips (TickBatcher). Redis that is away or slow means "try later", never an accept.
 */
import type { Redis } from 'ioredis';
import type { Db } from '../../adapters/pg/database.js';
import { readExternalBudgets, type BudgetRequest } from '../../adapters/redis/throttle-reader.js';
import { budgetNeeded, decideRecipient, type GateDecision, type GateFacts } from '../../domain/submission/gate.js';
import { recipientFactsBatch, type RecipientFacts, type RecipientKey, type TenantSubmissionFacts } from './submission-facts.js';
import { TickBatcher } from './tick-batcher.js';
import type { RecipientIndex } from './recipient-index.js';

/** Longer than a healthy Redis ever takes, short enough that a client is not kept waiting. */
export const BUDGET_READ_TIMEOUT_MS = 500;

type Budget = GateFacts['externalBudget'];

async function readBudgetsOrNull(redis: Redis, requests: BudgetRequest[]): Promise<Budget[]> {
  const unavailable = requests.map(() => null);
  if (redis.status !== 'ready') return unavailable;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      readExternalBudgets(redis, requests),
      new Promise<null[]>((resolve) => {
        timer = setTimeout(() => resolve(unavailable), BUDGET_READ_TIMEOUT_MS);
      }),
    ]);
  } catch {
    return unavailable;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The external budget as one message sees it: read once, at its first external recipient, then
 * counted down by the recipients it accepts. Nothing is consumed in Redis before kumod delivers, so
 * reading again for the next recipient would only see the same value and forget this message's own.
 */
export interface MessageBudget {
  read: Promise<Budget> | null;
  accepted: number;
}

export const newMessageBudget = (): MessageBudget => ({ read: null, accepted: 0 });

export class RecipientGate {
  private readonly recipients: TickBatcher<RecipientKey, RecipientFacts>;
  private readonly budgets: TickBatcher<BudgetRequest, Budget>;
  private readonly recentBudgets = new Map<string, { at: number; value: Promise<Budget> }>();

  /**
   * `budgetCacheMs`: how long a tenant's budget read serves later messages (CP_SMTP_BUDGET_CACHE_MS).
   * kumod spends the budget only as it delivers, and delays (never refuses) what exceeds it, so a read
   * a few tens of milliseconds old lets at most that many milliseconds of extra mail queue on a node;
   * 0 reads Redis for every message.
   */
  constructor(
    deps: { db: Db; redis: Redis; now: () => Date },
    private readonly budgetCacheMs = 0,
    private readonly index: RecipientIndex | null = null,
  ) {
    this.recipients = new TickBatcher((keys) => recipientFactsBatch(deps.db, keys, deps.now()), (k) => `${k.tenantId} ${k.address.toLowerCase()}`);
    this.budgets = new TickBatcher((reqs) => readBudgetsOrNull(deps.redis, reqs), (r) => `${r.tenantId} ${r.spec}`);
  }

  private readBudget(req: BudgetRequest): Promise<Budget> {
    if (this.budgetCacheMs <= 0) return this.budgets.get(req);
    const key = `${req.tenantId} ${req.spec}`;
    const now = performance.now();
    const hit = this.recentBudgets.get(key);
    if (hit && now - hit.at < this.budgetCacheMs) return hit.value;
    const value = this.budgets.get(req);
    // an unreadable budget is not remembered: the next message asks Redis again
    void value.then((b) => {
      if (b === null) this.recentBudgets.delete(key);
    });
    this.recentBudgets.set(key, { at: now, value });
    if (this.recentBudgets.size > 100_000) this.recentBudgets.delete(this.recentBudgets.keys().next().value!);
    return value;
  }

  /**
   * `warmingLeft` tells how many warming sends the tenant's plan still allows today (null: it cannot be
   * read); it is asked only for a recipient in the warming network (a Redis read the common recipient
   * does not pay for). Without it (the warming agent) no plan applies.
   */
  async decide(tenant: TenantSubmissionFacts, recipient: string, message: MessageBudget = newMessageBudget(), warmingLeft: (() => Promise<number | null>) | null = null): Promise<GateDecision> {
    // the budget matters only for external mail from a tenant that may send it; it is read alongside
    // the recipient lookup rather than after it, and ignored if the recipient turns out not to need it
    const mayNeedBudget = !tenant.trust.locked && tenant.placementHold === null && tenant.externalThrottleSpec !== null;
    if (mayNeedBudget && message.read === null) message.read = this.readBudget({ tenantId: tenant.tenantId, spec: tenant.externalThrottleSpec! });
    const budgetRead = mayNeedBudget ? message.read : null;
    // the in-memory index answers for the common recipient; a "maybe" or a cold index asks the database
    const member = this.index?.isWarmingMember(recipient) ?? null;
    const r: RecipientFacts =
      member !== null && !this.index!.maybeSuppressed(tenant.tenantId, recipient)
        ? { suppression: null, warmingMember: member }
        : await this.recipients.get({ tenantId: tenant.tenantId, address: recipient });
    const facts: Omit<GateFacts, 'externalBudget'> = {
      recipient,
      suppression: r.suppression,
      warmingMember: r.warmingMember,
      warmingRemainingToday: r.warmingMember && warmingLeft ? await warmingLeft() : 'unlimited',
      trust: tenant.trust,
      placementHold: tenant.placementHold,
    };
    if (!budgetNeeded(facts)) return decideRecipient(facts);
    const read = budgetRead ? await budgetRead : null;
    const externalBudget = read ? { remaining: read.remaining - message.accepted, nextInSeconds: read.remaining - message.accepted > 0 ? 0 : Math.max(read.nextInSeconds, 1) } : null;
    const d = decideRecipient({ ...facts, externalBudget });
    if (d.accept) message.accepted++;
    return d;
  }
}
