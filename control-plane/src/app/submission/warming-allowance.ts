/**
 * A tenant's own mail to warming-network members is held to the plan the network made for it today:
 * the plan's size is a fact from PostgreSQL (warming_sends), what the gateway already took is a
 * counter in Redis shared by every gateway process. A counter that cannot be read is not a counter at
 * zero: the allowance is then unknown (null), and the gate defers the recipient.
 */
import type { Redis } from 'ioredis';
import { warmingAcceptedKey } from '../../adapters/redis/keys.js';
import type { Logger } from '../../adapters/logger.js';

/** Longer than a healthy Redis ever takes, short enough that a client is not kept waiting. */
export const WARMING_READ_TIMEOUT_MS = 500;
/** Kept past the day it counts, so a day that ends mid-session still reads right. */
const KEEP_SECONDS = 2 * 86_400;

export class WarmingAllowance {
  constructor(
    private readonly redis: Redis,
    private readonly now: () => Date,
    private readonly log: Logger,
  ) {}

  private key(tenantId: string): string {
    return warmingAcceptedKey(tenantId, this.now().toISOString().slice(0, 10));
  }

  /** Warming recipients the tenant may still send today, or null when Redis cannot say. */
  async remainingToday(tenantId: string, plannedToday: number): Promise<number | null> {
    if (this.redis.status !== 'ready') return null;
    let timer: NodeJS.Timeout | undefined;
    try {
      const used = await Promise.race([
        this.redis.get(this.key(tenantId)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${WARMING_READ_TIMEOUT_MS} ms`)), WARMING_READ_TIMEOUT_MS);
        }),
      ]);
      const n = Number(used ?? 0);
      return Number.isFinite(n) ? plannedToday - n : null;
    } catch {
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Charge recipients kumod took. A charge that fails is logged: that mail went, unmetered. */
  async charge(tenantId: string, recipients: number): Promise<void> {
    const key = this.key(tenantId);
    await this.redis
      .multi()
      .incrby(key, recipients)
      .expire(key, KEEP_SECONDS)
      .exec()
      .catch((e: Error) => this.log.warn({ tenant: tenantId, recipients, err: { message: e.message } }, 'could not charge warming recipients to the plan'));
  }
}
