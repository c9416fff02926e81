/** Provider prices into the USD the costs report is kept in (CP_PROVIDER_USD_PER_EUR). */
import type { KnownCost } from '../../domain/provisioning/catalog.js';

export function toUsd(cost: KnownCost, usdPerEur: number): number {
  const usd = cost.currency === 'USD' ? cost.amount : cost.currency === 'EUR' ? cost.amount * usdPerEur : cost.amount;
  return Math.round(usd * 100) / 100;
}
