/**
 * What the gateway holds in memory to spare the database a query per recipient: a Bloom filter of
 * every suppression pattern and the set of active warming-network addresses. A recipient the filter
 * has never seen is certainly not suppressed; a "maybe" goes to PostgreSQL for the real answer (and
 * the suppression it names). New suppressions arrive within a second (read by id); a full reload
 * every ten minutes drops removed ones and catches rows a long transaction committed late.
 *
 * An index whose last good refresh started longer ago than the facts' TTL answers as if it were not
 * loaded, so that every lookup goes to PostgreSQL (and, with PostgreSQL away, fails to "try later")
 * rather than a filter nobody can vouch for accepting recipients.
 */
import type { Db } from '../../adapters/pg/database.js';
import type { Logger } from '../../adapters/logger.js';
import { BloomFilter, suppressionKey } from '../../domain/submission/bloom-filter.js';
import { patternsFor } from '../../domain/suppression/pattern.js';

const REFRESH_MS = 1000;
const FULL_RELOAD_MS = 10 * 60_000;
/** ids below the highest seen that may still commit (concurrent inserts), re-read every second */
const LATE_WINDOW = 1000;
const BATCH = 50_000;

export class RecipientIndex {
  private bloom: BloomFilter | null = null;
  private warming: Set<string> | null = null;
  private lastId = 0n;
  private lastFull = 0;
  /** when the last refresh that succeeded started (monotonic ms) */
  private lastGood = -Infinity;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    /** CP_SMTP_FACTS_TTL_MS: the oldest the index may be and still answer; 0 never answers */
    private readonly ttlMs: number,
    /** monotonic milliseconds */
    private readonly clock: () => number = () => performance.now(),
  ) {}

  get ready(): boolean {
    return this.bloom !== null && this.warming !== null && this.clock() - this.lastGood < this.ttlMs;
  }

  /** Whether `address` might be suppressed for `tenantId` (true when the index is not loaded or too old). */
  maybeSuppressed(tenantId: string, address: string): boolean {
    const bloom = this.ready ? this.bloom : null;
    if (!bloom) return true;
    for (const p of patternsFor(address)) {
      if (bloom.mightContain(suppressionKey(tenantId, p)) || bloom.mightContain(suppressionKey(null, p))) return true;
    }
    return false;
  }

  /** null when not loaded or too old: ask the database. */
  isWarmingMember(address: string): boolean | null {
    return this.ready ? this.warming!.has(address.toLowerCase()) : null;
  }

  async start(): Promise<void> {
    // with no TTL the index never answers, so it is not kept either
    if (this.ttlMs <= 0) return;
    await this.refresh();
    // at least twice per TTL, so that a healthy index never ages out between refreshes
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.refresh().finally(() => (this.running = null));
    }, Math.max(50, Math.min(REFRESH_MS, this.ttlMs / 2)));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** Read what changed (or everything, when due); after an error the index ages towards its TTL. */
  async refresh(): Promise<void> {
    const startedAt = this.clock();
    try {
      const full = !this.bloom || Date.now() - this.lastFull >= FULL_RELOAD_MS;
      if (full) await this.reload();
      else await this.addSince(this.lastId - BigInt(LATE_WINDOW), this.bloom!);
      const members = await this.db.selectFrom('warming_members').select('address').where('state', '=', 'active').execute();
      this.warming = new Set(members.map((m) => m.address));
      this.lastGood = startedAt;
    } catch (e) {
      this.log.warn({ err: { message: (e as Error).message } }, 'recipient index refresh failed; the last one answers until its TTL');
    }
  }

  private async reload(): Promise<void> {
    const { n } = await this.db.selectFrom('suppressions').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    // room to grow before the next reload, and never so small that every lookup is a "maybe"
    const bloom = new BloomFilter(Math.max(100_000, Number(n) * 2));
    this.lastId = 0n;
    await this.addSince(0n, bloom);
    this.bloom = bloom;
    this.lastFull = Date.now();
  }

  private async addSince(after: bigint, bloom: BloomFilter): Promise<void> {
    let cursor = after < 0n ? 0n : after;
    for (;;) {
      const rows = await this.db
        .selectFrom('suppressions')
        .select(['id', 'tenant_id', 'pattern'])
        .where('id', '>', cursor.toString())
        .orderBy('id')
        .limit(BATCH)
        .execute();
      for (const r of rows) bloom.add(suppressionKey(r.tenant_id, r.pattern));
      if (rows.length > 0) {
        cursor = BigInt(rows[rows.length - 1]!.id);
        if (cursor > this.lastId) this.lastId = cursor;
      }
      if (rows.length < BATCH) break;
    }
    // grown past what it was sized for: rebuild bigger on the next refresh
    if (bloom.count > bloom.capacity) this.lastFull = 0;
  }
}
