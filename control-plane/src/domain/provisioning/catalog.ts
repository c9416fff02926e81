/**
 * Choosing what to buy from the provider's own catalog.
 *
 * Why not hard-coded names: providers rename, retire and re-price plans (Hetzner retired whole CX
 * generations and moved deprecation from the type to each location), and a type sold in one location
 * may be sold out in another. The operator states requirements; this picks the cheapest offer that
 * meets them from what `listServerTypes` / `listLocations` / `getPricing` said just now.
 *
 * Pure: the catalog comes in as data.
 */
import { err, ok, type Result } from '../shared/result.js';
import type { Architecture, MonthlyPrice, ProviderLocation, ProviderPricing, ServerTypeOffer } from './cloud-provider.js';

/** What a KumoMTA node needs; every field is optional, absent means "any". */
export interface NodeRequirements {
  minCores?: number;
  minMemoryGb?: number;
  minDiskGb?: number;
  architecture?: Architecture;
  cpuType?: 'shared' | 'dedicated';
  /**
   * Acceptable locations in order of preference. With none, any location in `networkZone` (or any at
   * all). Preference wins over price: a node in the operator's first choice beats a cheaper one elsewhere.
   */
  locations?: string[];
  /** e.g. `eu-central`: keeps a node where its Floating IPs can follow it */
  networkZone?: string;
}

export interface ChosenPlacement {
  serverType: ServerTypeOffer;
  location: ProviderLocation;
  /** the catalog's monthly price for this type here, or null when it states none */
  price: MonthlyPrice | null;
}

export type NoPlacementReason =
  /** no type in the catalog meets the size/architecture requirements at all */
  | 'no_type_meets_requirements'
  /** types meet them, but none is sold (and not deprecated) in an acceptable location */
  | 'not_available_in_acceptable_locations'
  /** an asked-for location is not in the provider's list */
  | 'unknown_location';

export interface NoPlacement {
  reason: NoPlacementReason;
  detail: string;
}

/** Does the type's hardware meet the requirements (independently of where)? */
export function meetsRequirements(t: ServerTypeOffer, req: NodeRequirements): boolean {
  return (
    t.cores >= (req.minCores ?? 0) &&
    t.memoryGb >= (req.minMemoryGb ?? 0) &&
    t.diskGb >= (req.minDiskGb ?? 0) &&
    (req.architecture === undefined || t.architecture === req.architecture) &&
    (req.cpuType === undefined || t.cpuType === req.cpuType)
  );
}

/** A new node may be built on this type in this location: sold there, and retired neither there nor everywhere. */
export function buildableIn(t: ServerTypeOffer, location: string): boolean {
  if (t.deprecated) return false;
  const at = t.locations.find((l) => l.location === location);
  return at !== undefined && at.available && !at.deprecated;
}

export function priceIn(t: ServerTypeOffer, location: string): MonthlyPrice | null {
  return t.prices.find((p) => p.location === location)?.monthly ?? null;
}

/**
 * The cheapest type meeting `req` in the most preferred acceptable location that has one.
 * Ties on price go to fewer cores, then less memory, then the name, so the choice is deterministic.
 * Types without a stated price sort after priced ones (we cannot tell the operator what they cost).
 *
 * @example
 * choosePlacement(types, locations, { minCores: 2, minMemoryGb: 4, architecture: 'x86', locations: ['fsn1', 'nbg1'] })
 * // → { ok: true, value: { serverType: { name: 'cx22', … }, location: { name: 'fsn1', … }, price: … } }
 */
export function choosePlacement(
  types: readonly ServerTypeOffer[],
  locations: readonly ProviderLocation[],
  req: NodeRequirements,
): Result<ChosenPlacement, NoPlacement> {
  const byName = new Map(locations.map((l) => [l.name, l]));
  const unknown = (req.locations ?? []).filter((l) => !byName.has(l));
  if (unknown.length > 0) {
    return err({ reason: 'unknown_location', detail: `unknown location(s): ${unknown.join(', ')}; the provider lists ${[...byName.keys()].sort().join(', ')}` });
  }
  const candidates = (req.locations ?? [...byName.keys()].sort())
    .map((name) => byName.get(name)!)
    .filter((l) => req.networkZone === undefined || l.networkZone === req.networkZone);

  const fitting = types.filter((t) => meetsRequirements(t, req));
  if (fitting.length === 0) {
    return err({ reason: 'no_type_meets_requirements', detail: `no server type has ${describe(req)}` });
  }
  for (const location of candidates) {
    const here = fitting.filter((t) => buildableIn(t, location.name)).sort((a, b) => compareOffers(a, b, location.name));
    const best = here[0];
    if (best) return ok({ serverType: best, location, price: priceIn(best, location.name) });
  }
  return err({
    reason: 'not_available_in_acceptable_locations',
    detail: `${fitting.map((t) => t.name).sort().join(', ')} meet ${describe(req)} but none is buildable in ${candidates.map((l) => l.name).join(', ') || 'any acceptable location'}`,
  });
}

function compareOffers(a: ServerTypeOffer, b: ServerTypeOffer, location: string): number {
  const pa = priceIn(a, location)?.netMonthly ?? Number.POSITIVE_INFINITY;
  const pb = priceIn(b, location)?.netMonthly ?? Number.POSITIVE_INFINITY;
  if (pa !== pb) return pa < pb ? -1 : 1;
  if (a.cores !== b.cores) return a.cores - b.cores;
  if (a.memoryGb !== b.memoryGb) return a.memoryGb - b.memoryGb;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function describe(req: NodeRequirements): string {
  const parts = [
    req.minCores !== undefined ? `≥${req.minCores} cores` : null,
    req.minMemoryGb !== undefined ? `≥${req.minMemoryGb} GB memory` : null,
    req.minDiskGb !== undefined ? `≥${req.minDiskGb} GB disk` : null,
    req.architecture ?? null,
    req.cpuType ? `${req.cpuType} vCPU` : null,
  ].filter((p): p is string => p !== null);
  return parts.length ? parts.join(', ') : 'no particular requirements';
}

/**
 * Costs when the provider's price list is silent. These are the seeds' figures (settings `costs`:
 * 4.99 USD per IP, 9.99 USD per VPS per month), used as the fallback for `/v1/costs`.
 */
export const FALLBACK_MONTHLY_USD = { ip: 4.99, vps: 9.99 } as const;

export interface KnownCost {
  amount: number;
  currency: string;
  /** `provider`: from `getPricing`; `fallback`: the seeds' figure, because the provider stated none */
  source: 'provider' | 'fallback';
}

/** Monthly cost of a node of `serverType` in `location` (gross, as the operator is billed). */
export function serverMonthlyCost(pricing: ProviderPricing | null, serverType: string, location: string): KnownCost {
  const p = pricing?.serverTypes[serverType]?.[location];
  return p ? { amount: p.grossMonthly, currency: p.currency, source: 'provider' } : { amount: FALLBACK_MONTHLY_USD.vps, currency: 'USD', source: 'fallback' };
}

/** Monthly cost of one additional sending IPv4 (a Floating IP) homed in `location`. */
export function floatingIpMonthlyCost(pricing: ProviderPricing | null, location: string): KnownCost {
  const p = pricing?.floatingIpv4[location];
  return p ? { amount: p.grossMonthly, currency: p.currency, source: 'provider' } : { amount: FALLBACK_MONTHLY_USD.ip, currency: 'USD', source: 'fallback' };
}
