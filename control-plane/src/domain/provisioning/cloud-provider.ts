/**
 * The cloud provider as the control plane sees it: the few things it buys and operates for a KumoMTA
 * fleet (node servers and additional sending IPs), in provider-neutral words.
 *
 * Why an interface of our own rather than the Hetzner API's shape: the control plane is the one source
 * of truth for nodes and IPs, and the seeds name a second provider (Hostwinds). Use cases program
 * against `CloudProvider`; each provider is one adapter (adapters/hetzner/ is the first) that maps its
 * wire format onto these types and its errors onto `ProviderError` (provider-errors.ts).
 *
 * Conventions every adapter must keep:
 * - Identifiers are opaque strings (Hetzner's are integers, others are not).
 * - Every long-running change returns the `ProviderAction`s it started; the caller decides when to
 *   `waitForActions` (so several changes can be waited for in one batch).
 * - Creates take an `idempotencyKey`: the adapter labels the resource with it and, before creating,
 *   looks for a resource already carrying it, so a re-run after a crash adopts instead of buying twice
 *   (idempotency.ts holds the labels and the decision).
 * - Errors are `ProviderError`s with stable codes; the API token never appears in any of them.
 *
 * Imports: domain only (this is the pure core).
 */

/** CPU architecture of a server type, in the provider's neutral spelling. */
export type Architecture = 'x86' | 'arm';

/** Money as the provider states it: decimal strings would lose nothing, but costs are summed as numbers. */
export interface MonthlyPrice {
  /** ISO 4217, e.g. `EUR` */
  currency: string;
  /** monthly price without VAT */
  netMonthly: number;
  /** monthly price with VAT */
  grossMonthly: number;
}

/** Where a server type can be bought, and whether it still can. */
export interface ServerTypeAvailability {
  /** location name, e.g. `fsn1` */
  location: string;
  /** the provider sells it there right now */
  available: boolean;
  /** announced for removal in this location (do not build new nodes on it) */
  deprecated: boolean;
}

/** A server type (a "plan"): what a node would be built on. */
export interface ServerTypeOffer {
  id: string;
  /** the provider's name for it (`cx22`, `cax11`…): data from the catalog, never hard-coded by us */
  name: string;
  cores: number;
  memoryGb: number;
  diskGb: number;
  architecture: Architecture;
  /** `shared` vCPUs or `dedicated` ones */
  cpuType: 'shared' | 'dedicated';
  /** deprecated everywhere (the whole type is being retired) */
  deprecated: boolean;
  /** per-location availability; a type absent from a location is not sold there */
  locations: ServerTypeAvailability[];
  /** per-location monthly price, when the catalog states one */
  prices: { location: string; monthly: MonthlyPrice }[];
}

export interface ProviderLocation {
  id: string;
  /** e.g. `fsn1`, `nbg1`, `hel1`, `ash` */
  name: string;
  description: string;
  /** ISO 3166-1 alpha-2 */
  country: string;
  city: string;
  /** the provider's network zone (`eu-central`, `us-east`…): Floating IPs move only within one */
  networkZone: string;
}

/** Monthly prices per location, from the provider's price list. Missing entries mean "not known". */
export interface ProviderPricing {
  currency: string;
  /** server type name → location → price */
  serverTypes: Record<string, Record<string, MonthlyPrice>>;
  /** additional (floating) IPv4 per location */
  floatingIpv4: Record<string, MonthlyPrice>;
  /** the server's own (primary) IPv4 per location */
  primaryIpv4: Record<string, MonthlyPrice>;
}

/** A long-running change on the provider's side. */
export interface ProviderAction {
  id: string;
  /** what it does, e.g. `create_server`, `assign_floating_ip`, `change_dns_ptr` */
  command: string;
  status: 'running' | 'success' | 'error';
  /** 0-100 */
  progress: number;
  /** set when `status` is `error` */
  error: { code: string; message: string } | null;
  /** the resources it touches, e.g. `[{ type: 'server', id: '42' }]` */
  resources: { type: string; id: string }[];
}

export type ServerStatus = 'initializing' | 'starting' | 'running' | 'stopping' | 'off' | 'deleting' | 'rebuilding' | 'migrating' | 'unknown';

export interface ProviderServer {
  id: string;
  name: string;
  status: ServerStatus;
  serverType: string;
  location: string;
  /** the server's own IPv4 (its Primary IP); null when created without one */
  publicIpv4: string | null;
  publicIpv6Network: string | null;
  /** ids of the Floating IPs assigned to it */
  floatingIpIds: string[];
  labels: Record<string, string>;
}

/** What a node is built from. */
export interface ServerSpec {
  /** the host name; unique per project at the provider */
  name: string;
  serverType: string;
  location: string;
  /** OS image name, e.g. `ubuntu-22.04` (the supported node image) */
  image: string;
  /** cloud-init user data that enrols the node with the control plane (may hold a one-time token) */
  userData: string;
  /** labels the control plane wants on it, on top of the idempotency labels the adapter adds */
  labels: Record<string, string>;
  /** see idempotency.ts: same key ⇒ same server, however many times the create is re-run */
  idempotencyKey: string;
  /** SSH key names or ids to install for root (optional; nodes are managed through Ansible) */
  sshKeys?: string[];
}

export interface CreatedServer {
  server: ProviderServer;
  /** `create_server` and whatever follows it (`start_server`…); empty when adopted */
  actions: ProviderAction[];
  /** true when an earlier run had already created it (found by its idempotency label) */
  adopted: boolean;
}

export interface ProviderFloatingIp {
  id: string;
  /** the address itself */
  ip: string;
  family: 'ipv4' | 'ipv6';
  /** the server it is routed to, or null */
  serverId: string | null;
  /** the location it belongs to */
  homeLocation: string;
  /** reverse DNS entries set on it */
  reverseDns: { ip: string; ptr: string }[];
  /** the provider blocked it (abuse): it must not carry mail */
  blocked: boolean;
  labels: Record<string, string>;
}

/** An additional sending address to buy. */
export interface FloatingIpSpec {
  family: 'ipv4' | 'ipv6';
  /** where it lives (it can only be assigned to servers in the same network zone) */
  homeLocation: string;
  /** optionally assign it at creation */
  serverId?: string;
  description?: string;
  labels: Record<string, string>;
  idempotencyKey: string;
}

export interface CreatedFloatingIp {
  floatingIp: ProviderFloatingIp;
  /** an assign action when `serverId` was given, else none */
  actions: ProviderAction[];
  adopted: boolean;
}

/** How long and how patiently to wait for actions. */
export interface WaitOptions {
  /** give up (with a retryable `PROVIDER_TIMEOUT`) after this long; the actions keep running */
  timeoutMs?: number;
}

/**
 * The provider port. Every method may throw a `ProviderError` (provider-errors.ts); nothing else is
 * expected. Reads page through the provider's lists internally and return everything.
 */
export interface CloudProvider {
  /** short provider name for logs and audit, e.g. `hetzner` */
  readonly provider: string;

  listServerTypes(): Promise<ServerTypeOffer[]>;
  listLocations(): Promise<ProviderLocation[]>;
  getPricing(): Promise<ProviderPricing>;

  /** idempotent by `spec.idempotencyKey` */
  createServer(spec: ServerSpec): Promise<CreatedServer>;
  /** null when it does not exist (any more) */
  getServer(id: string): Promise<ProviderServer | null>;
  /** every server carrying all of these labels */
  findServers(labels: Record<string, string>): Promise<ProviderServer[]>;
  /** returns the delete action, or null when the server was already gone */
  deleteServer(id: string): Promise<ProviderAction | null>;

  /** idempotent by `spec.idempotencyKey` */
  createFloatingIp(spec: FloatingIpSpec): Promise<CreatedFloatingIp>;
  getFloatingIp(id: string): Promise<ProviderFloatingIp | null>;
  findFloatingIps(labels: Record<string, string>): Promise<ProviderFloatingIp[]>;
  assignFloatingIp(floatingIpId: string, serverId: string): Promise<ProviderAction>;
  unassignFloatingIp(floatingIpId: string): Promise<ProviderAction>;
  /** sets (or with `ptr` null, resets) the PTR record of `ip`, which must belong to the Floating IP */
  setReverseDns(floatingIpId: string, ip: string, ptr: string | null): Promise<ProviderAction>;
  /** false when it was already gone; an assigned IP is released by the provider as part of delete */
  deleteFloatingIp(floatingIpId: string): Promise<boolean>;

  /**
   * Waits until every action has finished, polling them together. Resolves with their final states
   * when all succeeded; throws `PROVIDER_ACTION_FAILED` (carrying the action's own error) as soon as
   * one failed.
   */
  waitForActions(actions: ProviderAction[], options?: WaitOptions): Promise<ProviderAction[]>;
}
