/**
 * The push channel from PostgreSQL to the gateway: LISTEN on `kcp_gate_facts`, which the
 * notify_gate_facts triggers (migration 0008) signal on every change to a fact the gateway caches.
 *
 * It holds a connection of its own rather than one of the pool: LISTEN belongs to a session, and a
 * pooled client goes back to the pool and forgets it. Notifications sent while that connection is
 * down are lost for good, so every connect (the first and each reconnect) tells subscribers that
 * everything may have changed. It never throws into its user: failures are logged and retried with
 * backoff, and the cache's TTL bounds what a gap costs.
 */
import pg from 'pg';
import type { Logger } from '../logger.js';

export const GATE_FACTS_CHANNEL = 'kcp_gate_facts';

/** What changed, as the trigger names it: one tenant's facts, or a whole family of them. */
export type GateFactChange = { scope: 'tenant'; tenant: string } | { scope: 'fleet' } | { scope: 'networks' } | { scope: 'peers' } | { scope: 'all' };

export interface ChangeFeed {
  /** listening now (false between a lost connection and its replacement) */
  readonly connected: boolean;
  /** Call `fn` for every change; returns the unsubscribe. */
  subscribe(fn: (change: GateFactChange) => void): () => void;
  close(): Promise<void>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A notification's payload; one that cannot be read means "all", never "nothing". */
export function parseGateFactChange(payload: string | undefined): GateFactChange {
  try {
    const p = JSON.parse(payload ?? '') as { scope?: unknown; tenant?: unknown };
    if (p.scope === 'tenant' && typeof p.tenant === 'string' && UUID.test(p.tenant)) return { scope: 'tenant', tenant: p.tenant.toLowerCase() };
    if (p.scope === 'fleet' || p.scope === 'networks' || p.scope === 'peers') return { scope: p.scope };
  } catch {
    // fall through
  }
  return { scope: 'all' };
}

export interface PgChangeFeedOptions {
  /** first retry after a failure; doubled per failure up to maxBackoffMs */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * A `SELECT 1` this often on the listening connection: a connection that died without a word (a
   * half-open TCP socket) would otherwise look alive and deliver nothing.
   */
  heartbeatMs?: number;
  /** for connecting and for each query on the connection */
  timeoutMs?: number;
}

export class PgChangeFeed implements ChangeFeed {
  private readonly subscribers = new Set<(change: GateFactChange) => void>();
  private readonly opts: Required<PgChangeFeedOptions>;
  private client: pg.Client | null = null;
  private closed = false;
  private backoffMs: number;
  private failures = 0;
  private downSince: number | null = null;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(
    /** never logged: it may carry a password */
    private readonly databaseUrl: string,
    private readonly log: Logger,
    opts: PgChangeFeedOptions = {},
  ) {
    this.opts = { minBackoffMs: 100, maxBackoffMs: 5000, heartbeatMs: 5000, timeoutMs: 5000, ...opts };
    this.backoffMs = this.opts.minBackoffMs;
  }

  /** Connect and LISTEN; resolves after the first attempt whether or not it succeeded. */
  start(): Promise<void> {
    return this.connect();
  }

  get connected(): boolean {
    return this.client !== null;
  }

  subscribe(fn: (change: GateFactChange) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private emit(change: GateFactChange): void {
    for (const fn of this.subscribers) {
      try {
        fn(change);
      } catch (e) {
        this.log.error({ err: { message: (e as Error).message } }, 'gate fact subscriber failed');
      }
    }
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({
      connectionString: this.databaseUrl,
      application_name: 'kumo-control-plane-gate-feed',
      keepAlive: true,
      connectionTimeoutMillis: this.opts.timeoutMs,
      query_timeout: this.opts.timeoutMs,
    });
    let heartbeat: NodeJS.Timeout | null = null;
    let lost = false;
    const onLost = (e?: Error): void => {
      if (lost) return;
      lost = true;
      if (heartbeat) clearInterval(heartbeat);
      if (this.client === client) this.client = null;
      client.removeAllListeners('notification');
      // not awaited: on a dead socket the goodbye may never be answered
      void client.end().catch(() => undefined);
      if (this.closed) return;
      this.failures++;
      this.downSince ??= Date.now();
      const fields = { err: { message: e?.message ?? 'connection ended' }, attempt: this.failures, retry_in_ms: this.backoffMs };
      // the first failure of an outage is news; the retries that follow are not
      if (this.failures === 1) this.log.warn(fields, 'gate fact notifications lost; reconnecting (facts expire by their TTL meanwhile)');
      else this.log.debug(fields, 'gate fact notifications still unavailable');
      this.scheduleRetry();
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (m) => {
      if (m.channel === GATE_FACTS_CHANNEL) this.emit(parseGateFactChange(m.payload));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${GATE_FACTS_CHANNEL}`);
    } catch (e) {
      onLost(e as Error);
      return;
    }
    if (lost) return;
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    if (this.downSince !== null) this.log.info({ down_ms: Date.now() - this.downSince }, 'gate fact notifications restored');
    this.failures = 0;
    this.downSince = null;
    this.backoffMs = this.opts.minBackoffMs;
    heartbeat = setInterval(() => {
      client.query('SELECT 1').catch((e: Error) => onLost(e));
    }, this.opts.heartbeatMs);
    heartbeat.unref();
    // whatever changed while nobody listened was not heard
    this.emit({ scope: 'all' });
  }

  private scheduleRetry(): void {
    if (this.retryTimer) return;
    // jittered, so that a fleet of gateways does not reconnect in step after a failover
    const delay = this.backoffMs * (0.8 + Math.random() * 0.4);
    this.backoffMs = Math.min(this.opts.maxBackoffMs, this.backoffMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, delay);
    this.retryTimer.unref();
  }
}
