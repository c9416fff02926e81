/**
 * The Hetzner Cloud API's JSON, as far as the control plane reads it, and its mapping onto the
 * provider-neutral types of domain/provisioning.
 *
 * Field names and shapes follow the API (cross-checked against hetznercloud/hcloud-go's `schema`
 * package). Only what we use is typed; everything is treated as possibly missing, because the API
 * deprecates fields (e.g. `datacenter`, `server_type.deprecated`) and we must keep working when they go.
 * Ids are integers on the wire and opaque strings in the domain.
 */
import type {
  Architecture,
  MonthlyPrice,
  ProviderAction,
  ProviderFloatingIp,
  ProviderLocation,
  ProviderPricing,
  ProviderServer,
  ServerStatus,
  ServerTypeOffer,
} from '../../domain/provisioning/cloud-provider.js';

export interface WireErrorBody {
  error?: { code?: string; message?: string; details?: unknown };
}

export interface WirePagination {
  page: number;
  per_page: number;
  previous_page: number | null;
  next_page: number | null;
  last_page: number | null;
  total_entries: number | null;
}

export interface WireMeta {
  meta?: { pagination?: WirePagination };
}

export interface WireAction {
  id: number;
  command: string;
  status: 'running' | 'success' | 'error';
  progress: number;
  started: string;
  finished: string | null;
  error: { code: string; message: string } | null;
  resources: { id: number; type: string }[];
}

export interface WirePrice {
  net: string;
  gross: string;
}

export interface WireDeprecation {
  announced: string;
  unavailable_after: string;
}

export interface WireServerType {
  id: number;
  name: string;
  description?: string;
  cores: number;
  memory: number;
  disk: number;
  cpu_type?: string;
  architecture?: string;
  deprecated?: boolean | null;
  deprecation?: WireDeprecation | null;
  prices?: { location: string; price_hourly: WirePrice; price_monthly: WirePrice }[];
  locations?: { id: number; name: string; available?: boolean; recommended?: boolean; deprecation?: WireDeprecation | null }[];
}

export interface WireLocation {
  id: number;
  name: string;
  description?: string;
  country?: string;
  city?: string;
  network_zone?: string;
}

export interface WireServer {
  id: number;
  name: string;
  status: string;
  labels?: Record<string, string>;
  server_type?: { name: string };
  location?: { name: string };
  public_net?: {
    ipv4?: { id?: number; ip: string } | null;
    ipv6?: { id?: number; ip: string } | null;
    floating_ips?: number[];
  };
}

export interface WireFloatingIp {
  id: number;
  ip: string;
  type: 'ipv4' | 'ipv6';
  server: number | null;
  home_location?: { name: string };
  dns_ptr?: { ip: string; dns_ptr: string }[];
  blocked?: boolean;
  labels?: Record<string, string>;
}

export interface WirePricing {
  currency: string;
  floating_ips?: { type: string; prices: { location: string; price_monthly: WirePrice }[] }[];
  primary_ips?: { type: string; prices: { location: string; price_monthly: WirePrice }[] }[];
  server_types?: { name: string; prices: { location: string; price_monthly: WirePrice }[] }[];
}

const SERVER_STATUSES: readonly ServerStatus[] = ['initializing', 'starting', 'running', 'stopping', 'off', 'deleting', 'rebuilding', 'migrating'];

/** Prices are decimal strings on the wire ("4.5100000000"); a garbled one is treated as unknown. */
function monthly(currency: string, p: WirePrice | undefined): MonthlyPrice | null {
  if (!p) return null;
  const net = Number(p.net);
  const gross = Number(p.gross);
  return Number.isFinite(net) && Number.isFinite(gross) ? { currency, netMonthly: net, grossMonthly: gross } : null;
}

export function toAction(a: WireAction): ProviderAction {
  return {
    id: String(a.id),
    command: a.command,
    status: a.status,
    progress: a.progress ?? 0,
    error: a.error ? { code: a.error.code, message: a.error.message } : null,
    resources: (a.resources ?? []).map((r) => ({ type: r.type, id: String(r.id) })),
  };
}

/**
 * `currency` comes from the caller: server-type prices carry no currency of their own (the account's
 * currency, stated by `/pricing`); without it we say EUR, Hetzner's billing currency.
 */
export function toServerType(t: WireServerType, currency = 'EUR'): ServerTypeOffer {
  const arch: Architecture = t.architecture === 'arm' ? 'arm' : 'x86';
  return {
    id: String(t.id),
    name: t.name,
    cores: t.cores,
    memoryGb: t.memory,
    diskGb: t.disk,
    architecture: arch,
    cpuType: t.cpu_type === 'dedicated' ? 'dedicated' : 'shared',
    // both spellings: the old boolean and the newer deprecation object
    deprecated: t.deprecated === true || (t.deprecation !== undefined && t.deprecation !== null),
    locations: (t.locations ?? []).map((l) => ({
      location: l.name,
      // older answers have no per-location `available`; listing the location then means it is sold there
      available: l.available ?? true,
      deprecated: l.deprecation !== undefined && l.deprecation !== null,
    })),
    prices: (t.prices ?? []).flatMap((p) => {
      const m = monthly(currency, p.price_monthly);
      return m ? [{ location: p.location, monthly: m }] : [];
    }),
  };
}

export function toLocation(l: WireLocation): ProviderLocation {
  return {
    id: String(l.id),
    name: l.name,
    description: l.description ?? '',
    country: l.country ?? '',
    city: l.city ?? '',
    networkZone: l.network_zone ?? '',
  };
}

export function toServer(s: WireServer): ProviderServer {
  return {
    id: String(s.id),
    name: s.name,
    status: (SERVER_STATUSES as readonly string[]).includes(s.status) ? (s.status as ServerStatus) : 'unknown',
    serverType: s.server_type?.name ?? '',
    location: s.location?.name ?? '',
    publicIpv4: s.public_net?.ipv4?.ip ?? null,
    publicIpv6Network: s.public_net?.ipv6?.ip ?? null,
    floatingIpIds: (s.public_net?.floating_ips ?? []).map(String),
    labels: s.labels ?? {},
  };
}

export function toFloatingIp(f: WireFloatingIp): ProviderFloatingIp {
  return {
    id: String(f.id),
    ip: f.ip,
    family: f.type,
    serverId: f.server === null || f.server === undefined ? null : String(f.server),
    homeLocation: f.home_location?.name ?? '',
    reverseDns: (f.dns_ptr ?? []).map((d) => ({ ip: d.ip, ptr: d.dns_ptr })),
    blocked: f.blocked ?? false,
    labels: f.labels ?? {},
  };
}

function byLocation(currency: string, prices: { location: string; price_monthly: WirePrice }[] | undefined): Record<string, MonthlyPrice> {
  const out: Record<string, MonthlyPrice> = {};
  for (const p of prices ?? []) {
    const m = monthly(currency, p.price_monthly);
    if (m) out[p.location] = m;
  }
  return out;
}

export function toPricing(p: WirePricing): ProviderPricing {
  const currency = p.currency || 'EUR';
  const serverTypes: Record<string, Record<string, MonthlyPrice>> = {};
  for (const t of p.server_types ?? []) serverTypes[t.name] = byLocation(currency, t.prices);
  return {
    currency,
    serverTypes,
    // the old singular `floating_ip` price is deprecated; the per-type, per-location list replaces it
    floatingIpv4: byLocation(currency, p.floating_ips?.find((f) => f.type === 'ipv4')?.prices),
    primaryIpv4: byLocation(currency, p.primary_ips?.find((f) => f.type === 'ipv4')?.prices),
  };
}
