/**
 * What the gateway holds in memory to spare the database a query per recipient: a Bloom filter of
 * every suppression pattern and the set of active warming-network addresses. A recipient the filter
 * has never seen is certainly not suppressed; a "maybe" goes to PostgreSQL for the real answer (and
 * the suppression it names).
 *
 * New suppressions arrive within a second, read in commit order rather than id order: ids are taken
 * at insert, so a bulk import that began earlier and commits late holds ids far behind what was read.
 * Each refresh reads in one repeatable-read snapshot and remembers that snapshot's xmin (the oldest
 * transaction still running then); every row that became visible since was inserted by a transaction
 * at or after it (`created_xid`, migration 0010), so the next refresh reads those and cannot miss one
 * whatever the commit order. A full reload every ten minutes drops removed ones.
 *
 * An index whose last good refresh started longer ago than the facts' TTL answers as if it were not
 * loaded, so that every lookup goes to PostgreSQL (and, with PostgreSQL away, fails to "try later")
 * rather than a filter nobody can vouch for accepting recipients.
 */
import { sql } from 'kysely';
import type { Db, Tx } from '../../adapters/pg/database.js';
import type { Logger } from '../../adapters/logger.js';
import { BloomFilter, suppressionKey } from '../../domain/submission/bloom-filter.js';
import { patternsFor } from '../../domain/suppression/pattern.js';

const REFRESH_MS = 1000;
const FULL_RELOAD_MS = 10 * 60_000;
const BATCH = 50_000;

export class RecipientIndex {
  private bloom: BloomFilter | null = null;
  private warming: Set<string> | null = null;
  /** xmin (xid8, as text) of the snapshot the last good refresh read in */
  private watermark: string | null = null;
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
      const full = !this.bloom || this.watermark === null || Date.now() - this.lastFull >= FULL_RELOAD_MS;
      await this.db
        .transaction()
        .setIsolationLevel('repeatable read')
        .setAccessMode('read only')
        .execute(async (tx) => {
          // the first statement takes the snapshot every read below sees
          const { rows } = await sql<{ xmin: string }>`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin`.execute(tx);
          const xmin = rows[0]!.xmin;
          if (full) await this.reload(tx);
          else await this.addSince(tx, this.watermark!, this.bloom!);
          const members = await tx.selectFrom('warming_members').select('address').where('state', '=', 'active').execute();
          this.warming = new Set(members.map((m) => m.address));
          this.watermark = xmin;
        });
      this.lastGood = startedAt;
    } catch (e) {
      this.log.warn({ err: { message: (e as Error).message } }, 'recipient index refresh failed; the last one answers until its TTL');
    }
  }

  private async reload(tx: Tx): Promise<void> {
    const { n } = await tx.selectFrom('suppressions').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    // room to grow before the next reload, and never so small that every lookup is a "maybe"
    const bloom = new BloomFilter(Math.max(100_000, Number(n) * 2));
    let cursor = '0';
    for (;;) {
      const rows = await tx.selectFrom('suppressions').select(['id', 'tenant_id', 'pattern']).where('id', '>', cursor).orderBy('id').limit(BATCH).execute();
      for (const r of rows) bloom.add(suppressionKey(r.tenant_id, r.pattern));
      if (rows.length < BATCH) break;
      cursor = rows[rows.length - 1]!.id;
    }
    this.bloom = bloom;
    this.lastFull = Date.now();
  }

  /** Every suppression inserted by a transaction at or after `xmin` (a previous snapshot's). */
  private async addSince(tx: Tx, xmin: string, bloom: BloomFilter): Promise<void> {
    // keyset pages over (created_xid, id): usually one short page, the rows of the last second
    let after = sql<boolean>`true`;
    for (;;) {
      const rows: { id: string; tenant_id: string | null; pattern: string; xid: string }[] = await tx
        .selectFrom('suppressions')
        .select(['id', 'tenant_id', 'pattern', sql<string>`created_xid::text`.as('xid')])
        .where(sql<boolean>`created_xid >= ${xmin}::xid8`)
        .where(after)
        .orderBy('created_xid')
        .orderBy('id')
        .limit(BATCH)
        .execute();
      for (const r of rows) bloom.add(suppressionKey(r.tenant_id, r.pattern));
      if (rows.length < BATCH) break;
      const last = rows[rows.length - 1]!;
      after = sql<boolean>`(created_xid, id) > (${last.xid}::xid8, ${last.id}::bigint)`;
    }
    this.grown(bloom);
  }

  /** Grown past what it was sized for: rebuild bigger on the next refresh. */
  private grown(bloom: BloomFilter): void {
    if (bloom.count > bloom.capacity) this.lastFull = 0;
  }
}
