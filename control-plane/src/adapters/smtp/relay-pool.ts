/**
 * Connections from the gateway to the kumod nodes: kept open and reused between messages (a TCP and
 * EHLO handshake per message would cost more than the message), and a node that failed a connection
 * is passed over for CP_RELAY_NODE_DOWN_MS, so its share goes to the others instead of waiting on
 * timeouts. When every candidate is down they are all tried anyway: a guess beats a refusal.
 */
import type { Logger } from '../logger.js';
import { RelayConnection, RelayConnectionError } from './relay-connection.js';

export interface RelayTarget {
  id: string;
  name: string;
  host: string;
  port: number;
}

export interface RelayPoolOptions {
  ehloName: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  idlePerNode: number;
  downForMs: number;
  log: Logger;
  /** told when a node is marked down, and when it answers again */
  onHealth?: (node: RelayTarget, up: boolean) => void;
}

export interface RelayNodeState {
  id: string;
  name: string;
  up: boolean;
  down_until: string | null;
  last_error: string | null;
  idle_connections: number;
  busy_connections: number;
}

export class RelayPool {
  private readonly idle = new Map<string, RelayConnection[]>();
  private readonly busy = new Map<string, number>();
  private readonly down = new Map<string, { until: number; error: string; name: string }>();
  private turn = 0;
  private readonly seen = new Set<string>();
  /** connections whose close is already watched: a pooled connection is returned once per message */
  private readonly watched = new WeakSet<RelayConnection>();
  private closed = false;

  constructor(private readonly options: RelayPoolOptions) {}

  isUp(nodeId: string): boolean {
    const d = this.down.get(nodeId);
    return !d || d.until <= Date.now();
  }

  /** Candidates in the order to try: healthy ones first, rotated so load spreads, then the rest. */
  order(candidates: readonly RelayTarget[]): RelayTarget[] {
    const up = candidates.filter((c) => this.isUp(c.id));
    const downs = candidates.filter((c) => !this.isUp(c.id));
    const start = up.length > 0 ? this.turn++ % up.length : 0;
    if (this.turn > 1e9) this.turn = 0;
    return [...up.slice(start), ...up.slice(0, start), ...downs];
  }

  markDown(node: RelayTarget, error: string): void {
    const already = !this.isUp(node.id);
    this.down.set(node.id, { until: Date.now() + this.options.downForMs, error, name: node.name });
    for (const c of this.idle.get(node.id)?.splice(0) ?? []) c.destroy();
    if (!already) this.options.log.warn({ node: node.name, err: { message: error }, down_for_ms: this.options.downForMs }, 'relay node marked down');
    this.options.onHealth?.(node, false);
  }

  async lease(node: RelayTarget): Promise<RelayConnection> {
    if (this.closed) throw new RelayConnectionError('the relay pool is closed', 'connect');
    const idle = this.idle.get(node.id);
    while (idle && idle.length > 0) {
      const c = idle.pop()!;
      if (c.usable) {
        this.busy.set(node.id, (this.busy.get(node.id) ?? 0) + 1);
        return c;
      }
    }
    try {
      const c = await RelayConnection.open({
        host: node.host,
        port: node.port,
        ehloName: this.options.ehloName,
        connectTimeoutMs: this.options.connectTimeoutMs,
        commandTimeoutMs: this.options.commandTimeoutMs,
      });
      if (this.down.delete(node.id) || !this.seen.has(node.id)) this.options.onHealth?.(node, true);
      this.seen.add(node.id);
      this.busy.set(node.id, (this.busy.get(node.id) ?? 0) + 1);
      return c;
    } catch (e) {
      this.markDown(node, (e as Error).message);
      throw e;
    }
  }

  /** Give a connection back after a finished transaction; `reusable` false closes it. */
  release(node: RelayTarget, c: RelayConnection, reusable: boolean): void {
    this.busy.set(node.id, Math.max(0, (this.busy.get(node.id) ?? 1) - 1));
    const list = this.idle.get(node.id) ?? [];
    if (!reusable || this.closed || !c.usable || list.length >= this.options.idlePerNode) {
      if (c.usable && reusable) void c.quit();
      else c.destroy();
      return;
    }
    list.push(c);
    this.idle.set(node.id, list);
    if (this.watched.has(c)) return;
    this.watched.add(c);
    // a node closing an idle connection (its own idle timeout, a restart) must not leave it listed
    c.onClose(() => {
      const l = this.idle.get(node.id);
      const i = l?.indexOf(c) ?? -1;
      if (l && i >= 0) l.splice(i, 1);
    });
  }

  states(nodes: readonly RelayTarget[]): RelayNodeState[] {
    return nodes.map((n) => {
      const d = this.down.get(n.id);
      const up = this.isUp(n.id);
      return {
        id: n.id,
        name: n.name,
        up,
        down_until: !up && d ? new Date(d.until).toISOString() : null,
        last_error: d?.error ?? null,
        idle_connections: this.idle.get(n.id)?.length ?? 0,
        busy_connections: this.busy.get(n.id) ?? 0,
      };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.idle.values()].flat();
    this.idle.clear();
    await Promise.all(all.map((c) => c.quit()));
  }
}
