/**
 * `CloudProvider` over the Hetzner Cloud REST API (https://docs.hetzner.cloud), one instance per
 * project (one token each).
 *
 * What this adds on top of the transport:
 * - creates are idempotent by label (domain/provisioning/idempotency.ts): look before creating, and
 *   after a failure that may have landed look again instead of creating twice;
 * - an adopted server comes back with its still-running actions, so the caller waits for the same
 *   thing whether it created the server now or a crashed run did;
 * - actions are polled together (`GET /actions?id=..&id=..`) in batches, with back-off, and a failed
 *   action becomes `PROVIDER_ACTION_FAILED` carrying the action's own error.
 *
 * Servers are placed by `location`, never `datacenter` (deprecated in the API).
 */
import type {
  CloudProvider,
  CreatedFloatingIp,
  CreatedServer,
  FloatingIpSpec,
  ProviderAction,
  ProviderFloatingIp,
  ProviderLocation,
  ProviderPricing,
  ProviderServer,
  ServerSpec,
  ServerTypeOffer,
  WaitOptions,
} from '../../domain/provisioning/cloud-provider.js';
import { decideCreate, intentLabels, labelSelector, labelsForCreate } from '../../domain/provisioning/idempotency.js';
import { actionFailed, ProviderError } from '../../domain/provisioning/provider-errors.js';
import { DEFAULT_POLL_POLICY, pollBatches, pollDelayMs, type PollPolicy } from '../../domain/provisioning/retry-policy.js';
import { PROVIDER } from './errors.js';
import { HetznerTransport, type TransportOptions } from './transport.js';
import {
  toAction,
  toFloatingIp,
  toLocation,
  toPricing,
  toServer,
  toServerType,
  type WireAction,
  type WireFloatingIp,
  type WireLocation,
  type WirePricing,
  type WireServer,
  type WireServerType,
} from './wire.js';

export interface HetznerProviderOptions extends TransportOptions {
  poll?: Partial<PollPolicy>;
}

/** Hetzner ids are positive integers; anything else cannot name a Hetzner resource. */
function wireId(what: string, id: string): number {
  if (!/^[1-9][0-9]{0,17}$/.test(id)) throw new ProviderError('PROVIDER_INVALID_INPUT', `${id} is not a Hetzner ${what} id`, { provider: PROVIDER });
  return Number(id);
}

export class HetznerCloudProvider implements CloudProvider {
  readonly provider = PROVIDER;
  readonly #http: HetznerTransport;
  readonly #poll: PollPolicy;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(opts: HetznerProviderOptions) {
    this.#http = new HetznerTransport(opts);
    this.#poll = { ...DEFAULT_POLL_POLICY, ...opts.poll };
    this.#now = opts.now ?? (() => Date.now());
    this.#sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  toJSON(): Record<string, unknown> {
    return this.#http.toJSON();
  }

  // ---- catalog -------------------------------------------------------------------------------------

  async listServerTypes(): Promise<ServerTypeOffer[]> {
    return (await this.#http.listAll<WireServerType>('/server_types', 'server_types')).map((t) => toServerType(t));
  }

  async listLocations(): Promise<ProviderLocation[]> {
    return (await this.#http.listAll<WireLocation>('/locations', 'locations')).map(toLocation);
  }

  async getPricing(): Promise<ProviderPricing> {
    const r = await this.#http.call<{ pricing: WirePricing }>('GET', '/pricing', { idempotent: true });
    if (r.kind !== 'answer' || !r.body.pricing) throw protocol('GET /pricing answered without "pricing"');
    return toPricing(r.body.pricing);
  }

  // ---- servers -------------------------------------------------------------------------------------

  async createServer(spec: ServerSpec): Promise<CreatedServer> {
    const labels = checkedLabels(spec.idempotencyKey, spec.labels);
    // a crashed earlier run may have created it already
    const before = await this.#adoptServer(spec.idempotencyKey);
    if (before) return before;

    const r = await this.#http.call<{ server: WireServer; action: WireAction; next_actions?: WireAction[] }, CreatedServer>('POST', '/servers', {
      idempotent: false,
      body: {
        name: spec.name,
        server_type: spec.serverType,
        image: spec.image,
        location: spec.location,
        user_data: spec.userData,
        labels,
        start_after_create: true,
        ...(spec.sshKeys?.length ? { ssh_keys: spec.sshKeys } : {}),
      },
      reconcile: () => this.#adoptServer(spec.idempotencyKey),
    });
    if (r.kind === 'reconciled') return r.value;
    if (!r.body.server || !r.body.action) throw protocol('POST /servers answered without "server" and "action"');
    return { server: toServer(r.body.server), actions: [r.body.action, ...(r.body.next_actions ?? [])].map(toAction), adopted: false };
  }

  async getServer(id: string): Promise<ProviderServer | null> {
    const body = await this.#http.getOrNull<{ server: WireServer }>(`/servers/${wireId('server', id)}`);
    return body ? toServer(body.server) : null;
  }

  async findServers(labels: Record<string, string>): Promise<ProviderServer[]> {
    return (await this.#http.listAll<WireServer>('/servers', 'servers', { label_selector: labelSelector(labels) })).map(toServer);
  }

  async deleteServer(id: string): Promise<ProviderAction | null> {
    try {
      const r = await this.#http.call<{ action: WireAction }>('DELETE', `/servers/${wireId('server', id)}`, { idempotent: true });
      return r.kind === 'answer' && r.body.action ? toAction(r.body.action) : null;
    } catch (e) {
      if (e instanceof ProviderError && e.providerCode === 'PROVIDER_NOT_FOUND') return null;
      throw e;
    }
  }

  async #adoptServer(key: string): Promise<CreatedServer | null> {
    const d = decideCreate(await this.findServers(intentLabels(key)), key);
    if (d.kind === 'create') return null;
    if (d.kind === 'ambiguous') throw ambiguous('servers', key, d.ids);
    const running = await this.#http.listAll<WireAction>(`/servers/${wireId('server', d.resource.id)}/actions`, 'actions', { status: 'running' });
    return { server: d.resource, actions: running.map(toAction), adopted: true };
  }

  // ---- floating IPs --------------------------------------------------------------------------------

  async createFloatingIp(spec: FloatingIpSpec): Promise<CreatedFloatingIp> {
    const labels = checkedLabels(spec.idempotencyKey, spec.labels);
    const before = await this.#adoptFloatingIp(spec.idempotencyKey);
    if (before) return before;

    const r = await this.#http.call<{ floating_ip: WireFloatingIp; action: WireAction | null }, CreatedFloatingIp>('POST', '/floating_ips', {
      idempotent: false,
      body: {
        type: spec.family,
        home_location: spec.homeLocation,
        labels,
        ...(spec.serverId ? { server: wireId('server', spec.serverId) } : {}),
        ...(spec.description ? { description: spec.description } : {}),
      },
      reconcile: () => this.#adoptFloatingIp(spec.idempotencyKey),
    });
    if (r.kind === 'reconciled') return r.value;
    if (!r.body.floating_ip) throw protocol('POST /floating_ips answered without "floating_ip"');
    return { floatingIp: toFloatingIp(r.body.floating_ip), actions: r.body.action ? [toAction(r.body.action)] : [], adopted: false };
  }

  async getFloatingIp(id: string): Promise<ProviderFloatingIp | null> {
    const body = await this.#http.getOrNull<{ floating_ip: WireFloatingIp }>(`/floating_ips/${wireId('floating IP', id)}`);
    return body ? toFloatingIp(body.floating_ip) : null;
  }

  async findFloatingIps(labels: Record<string, string>): Promise<ProviderFloatingIp[]> {
    return (await this.#http.listAll<WireFloatingIp>('/floating_ips', 'floating_ips', { label_selector: labelSelector(labels) })).map(toFloatingIp);
  }

  async assignFloatingIp(floatingIpId: string, serverId: string): Promise<ProviderAction> {
    return this.#floatingIpAction(floatingIpId, 'assign', { server: wireId('server', serverId) });
  }

  async unassignFloatingIp(floatingIpId: string): Promise<ProviderAction> {
    return this.#floatingIpAction(floatingIpId, 'unassign', {});
  }

  async setReverseDns(floatingIpId: string, ip: string, ptr: string | null): Promise<ProviderAction> {
    return this.#floatingIpAction(floatingIpId, 'change_dns_ptr', { ip, dns_ptr: ptr });
  }

  async deleteFloatingIp(floatingIpId: string): Promise<boolean> {
    try {
      await this.#http.call('DELETE', `/floating_ips/${wireId('floating IP', floatingIpId)}`, { idempotent: true });
      return true;
    } catch (e) {
      if (e instanceof ProviderError && e.providerCode === 'PROVIDER_NOT_FOUND') return false;
      throw e;
    }
  }

  /** assign, unassign and change_dns_ptr set a state rather than add one: resending is harmless */
  async #floatingIpAction(id: string, action: string, body: Record<string, unknown>): Promise<ProviderAction> {
    const path = `/floating_ips/${wireId('floating IP', id)}/actions/${action}`;
    const r = await this.#http.call<{ action: WireAction }>('POST', path, { idempotent: true, body });
    if (r.kind !== 'answer' || !r.body.action) throw protocol(`POST ${path} answered without "action"`);
    return toAction(r.body.action);
  }

  async #adoptFloatingIp(key: string): Promise<CreatedFloatingIp | null> {
    const d = decideCreate(await this.findFloatingIps(intentLabels(key)), key);
    if (d.kind === 'create') return null;
    if (d.kind === 'ambiguous') throw ambiguous('floating IPs', key, d.ids);
    return { floatingIp: d.resource, actions: [], adopted: true };
  }

  // ---- actions -------------------------------------------------------------------------------------

  async waitForActions(actions: ProviderAction[], options: WaitOptions = {}): Promise<ProviderAction[]> {
    const latest = new Map(actions.map((a) => [a.id, a]));
    const failedAtStart = actions.find((a) => a.status === 'error');
    if (failedAtStart) throw actionFailed(PROVIDER, failedAtStart);

    const timeoutMs = options.timeoutMs ?? this.#poll.timeoutMs;
    const started = this.#now();
    for (let poll = 0; ; poll++) {
      const running = [...latest.values()].filter((a) => a.status === 'running').map((a) => a.id);
      if (running.length === 0) break;
      if (this.#now() - started >= timeoutMs) {
        throw new ProviderError('PROVIDER_TIMEOUT', `Hetzner actions ${running.join(', ')} for project ${this.#http.project} were still running after ${timeoutMs} ms; they may still complete`, {
          provider: PROVIDER,
          operation: 'GET /actions',
        });
      }
      await this.#sleep(pollDelayMs(this.#poll, poll));
      for (const batch of pollBatches(running, this.#poll.batchSize)) {
        const updates = await this.#http.listAll<WireAction>('/actions', 'actions', { id: batch });
        const seen = new Set(updates.map((u) => String(u.id)));
        const missing = batch.filter((id) => !seen.has(id));
        // an action that vanished would otherwise be waited for forever
        if (missing.length) throw protocol(`Hetzner does not know actions ${missing.join(', ')}`);
        for (const u of updates.map(toAction)) {
          if (!latest.has(u.id)) continue;
          latest.set(u.id, u);
          if (u.status === 'error') throw actionFailed(PROVIDER, u);
        }
      }
    }
    return actions.map((a) => latest.get(a.id)!);
  }
}

function checkedLabels(key: string, labels: Record<string, string>): Record<string, string> {
  const r = labelsForCreate(key, labels);
  if (!r.ok) throw new ProviderError('PROVIDER_INVALID_INPUT', `invalid labels: ${r.error.join('; ')}`, { provider: PROVIDER, details: r.error });
  return r.value;
}

const protocol = (detail: string) => new ProviderError('PROVIDER_PROTOCOL', detail, { provider: PROVIDER });

const ambiguous = (what: string, key: string, ids: string[]) =>
  new ProviderError('PROVIDER_AMBIGUOUS', `${ids.length} Hetzner ${what} (${ids.join(', ')}) carry the idempotency key ${key}; resolve by hand before retrying`, {
    provider: PROVIDER,
    details: { ids },
  });
