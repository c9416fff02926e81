/**
 * SMTP AUTH for tenants: the username's scrypt hash, compared in constant time, behind Redis failure
 * counters per (username, client IP), per client IP and per username (domain/submission/auth-throttle.ts
 * says what they mean: the first two lock out, the last only slows the username down). Every failure
 * reads the same whether or not the user exists, and an unknown user costs the same scrypt work and
 * the same wait as a known one. Counters that cannot be read mean "try later", never "no failures".
 *
 * scrypt is deliberately slow (tens of milliseconds), which a client opening a connection per message
 * would pay every time; a successful check is remembered for CP_SMTP_FACTS_TTL_MS under a keyed hash
 * of username and password (never the password), with the tenant it names. A change notification for
 * that tenant (a revocation, a new password, a suspension) forgets it at once; the TTL bounds the rest.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Db } from '../../adapters/pg/database.js';
import { hashPassword, verifyPassword } from '../../adapters/crypto/password-hash.js';
import { WARMING_AGENT_USER, warmingAgentPassword } from '../../adapters/crypto/warming-tag.js';
import type { GateFactChange } from '../../adapters/pg/change-feed.js';
import { authFailureKeys } from '../../adapters/redis/keys.js';
import { clientKey } from '../../domain/access/client-key.js';
import { authThrottle } from '../../domain/submission/auth-throttle.js';
import { REPLIES, type GatewayReply } from '../../domain/submission/replies.js';

export type AuthOutcome =
  | { ok: true; tenantId: string; credentialId: string; username: string; warmingAgent?: false }
  | { ok: true; warmingAgent: true; username: string }
  | ({ ok: false; reason: 'invalid' | 'locked_out' | 'unavailable' } & GatewayReply);

export interface AuthSettings {
  /** failures of one username from one client IP before that pair is locked out */
  failureLimit: number;
  /** failures from one client IP before it is locked out */
  sourceFailureLimit: number;
  lockoutSeconds: number;
  /** the longest a slowed-down username waits before its attempt is checked */
  maxDelayMs: number;
  rememberMs: number;
}

const INVALID: AuthOutcome = { ok: false, reason: 'invalid', ...REPLIES.authInvalid };
const LOCKED: AuthOutcome = { ok: false, reason: 'locked_out', ...REPLIES.authLockedOut };
const UNAVAILABLE: AuthOutcome = { ok: false, reason: 'unavailable', ...REPLIES.authUnavailable };

export class SubmissionAuthenticator {
  private readonly rememberKey = randomBytes(32);
  /** `at`: when the check that found it started; the outcome carries the tenant it belongs to */
  private readonly remembered = new Map<string, { at: number; outcome: Extract<AuthOutcome, { ok: true; warmingAgent?: false }> }>();
  /** moved by every forget: a check that started before one may answer, but is not remembered */
  private generation = 0;
  private dummyHash: Promise<string> | null = null;

  constructor(
    private readonly db: Db,
    private readonly redis: Redis,
    private readonly settings: AuthSettings,
    /** the pseudonym key, from which the warming agent's password is derived */
    private readonly agentKey: Buffer | null = null,
  ) {}

  /** Forget remembered checks of the tenant a change notification names (all of them for "all"). */
  forget(change: GateFactChange): void {
    if (change.scope !== 'tenant' && change.scope !== 'all') return;
    this.generation++;
    if (change.scope === 'all') return this.remembered.clear();
    for (const [memo, entry] of this.remembered) if (entry.outcome.tenantId === change.tenant) this.remembered.delete(memo);
  }

  async authenticate(username: string, password: string, ip: string): Promise<AuthOutcome> {
    // counted per client (an IPv6 host by its /64, as the API counts it), never per address alone
    const keys = authFailureKeys(clientKey(ip), username);
    let counts: (string | null)[];
    try {
      if (this.redis.status !== 'ready') return UNAVAILABLE;
      counts = await this.redis.mget(keys.pair, keys.source, keys.user);
    } catch {
      return UNAVAILABLE;
    }
    const [pair, source, user] = counts.map((c) => Number(c ?? 0)) as [number, number, number];
    const throttle = authThrottle({ pair, source, user }, { pairLimit: this.settings.failureLimit, sourceLimit: this.settings.sourceFailureLimit, maxDelayMs: this.settings.maxDelayMs });
    if (throttle.verdict === 'locked_out') return LOCKED;

    // a check remembered from the last few seconds needed the right password: no reason to wait
    const memo = createHmac('sha256', this.rememberKey).update(username).update('\0').update(password).digest('base64');
    const hit = this.remembered.get(memo);
    const startedAt = performance.now();
    if (hit && startedAt - hit.at < this.settings.rememberMs) return hit.outcome;
    if (throttle.delayMs > 0) await sleep(throttle.delayMs);

    if (username === WARMING_AGENT_USER && this.agentKey) {
      // the platform's own warming sender: it may write only to warming-network members, as any of them
      const want = Buffer.from(warmingAgentPassword(this.agentKey));
      const got = Buffer.from(password);
      if (want.length === got.length && timingSafeEqual(want, got)) return { ok: true, warmingAgent: true, username };
      await this.countFailure(keys);
      return INVALID;
    }
    const generation = this.generation;

    const row = /^[A-Za-z0-9._@+-]{3,128}$/.test(username)
      ? await this.db
          .selectFrom('smtp_credentials as c')
          .innerJoin('tenants as t', 't.id', 'c.tenant_id')
          .select(['c.id', 'c.tenant_id', 'c.username', 'c.password_hash', 't.status'])
          .where('c.username', '=', username)
          .where('c.revoked_at', 'is', null)
          .executeTakeFirst()
      : undefined;
    // the same work for a user that does not exist, so timing says nothing about who does
    this.dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
    const good = await verifyPassword(password, row?.password_hash ?? (await this.dummyHash));
    if (!row || !good || row.status !== 'active') {
      await this.countFailure(keys);
      return INVALID;
    }
    const outcome = { ok: true as const, warmingAgent: false as const, tenantId: row.tenant_id, credentialId: row.id, username: row.username };
    if (this.settings.rememberMs > 0 && generation === this.generation) {
      this.remembered.set(memo, { at: startedAt, outcome });
      if (this.remembered.size > 10_000) this.remembered.delete(this.remembered.keys().next().value!);
    }
    // the pair starts afresh; the username's own count runs out by itself, so that a tenant's own
    // successes do not reset the slow-down an attacker elsewhere earned
    await this.redis.del(keys.pair).catch(() => undefined);
    // last_used_at is for operators ("is this credential still in use?"): once a minute is plenty
    await this.db
      .updateTable('smtp_credentials')
      .set({ last_used_at: new Date() })
      .where('id', '=', row.id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', new Date(Date.now() - 60_000))]))
      .execute();
    return outcome;
  }

  private async countFailure(keys: ReturnType<typeof authFailureKeys>): Promise<void> {
    let m = this.redis.multi();
    for (const key of [keys.pair, keys.source, keys.user]) m = m.incr(key).expire(key, this.settings.lockoutSeconds);
    await m.exec().catch(() => undefined);
  }
}
