import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildableIn, choosePlacement, floatingIpMonthlyCost, meetsRequirements, serverMonthlyCost, type NodeRequirements } from './catalog.js';
import type { ProviderLocation, ProviderPricing, ServerTypeOffer } from './cloud-provider.js';

const loc = (name: string, networkZone = 'eu-central'): ProviderLocation => ({ id: name, name, description: name, country: 'DE', city: name, networkZone });
const price = (net: number) => ({ currency: 'EUR', netMonthly: net, grossMonthly: Math.round(net * 119) / 100 });
function type(name: string, o: Partial<ServerTypeOffer> & { at?: Record<string, { net: number; available?: boolean; deprecated?: boolean }> } = {}): ServerTypeOffer {
  const at = o.at ?? { fsn1: { net: 5 }, nbg1: { net: 5 } };
  return {
    id: name, name, cores: 2, memoryGb: 4, diskGb: 40, architecture: 'x86', cpuType: 'shared', deprecated: false,
    locations: Object.entries(at).map(([location, a]) => ({ location, available: a.available ?? true, deprecated: a.deprecated ?? false })),
    prices: Object.entries(at).map(([location, a]) => ({ location, monthly: price(a.net) })),
    ...o,
  };
}
const locations = [loc('fsn1'), loc('nbg1'), loc('hel1'), loc('ash', 'us-east')];

describe('choosePlacement', () => {
  const types = [
    type('small', { cores: 2, memoryGb: 4, at: { fsn1: { net: 4 }, nbg1: { net: 4 }, ash: { net: 4.5 } } }),
    type('medium', { cores: 4, memoryGb: 8, at: { fsn1: { net: 8 }, nbg1: { net: 8 }, hel1: { net: 8 } } }),
    type('arm-medium', { cores: 4, memoryGb: 8, architecture: 'arm', at: { fsn1: { net: 6 }, hel1: { net: 6 } } }),
    type('old-big', { cores: 8, memoryGb: 16, deprecated: true, at: { fsn1: { net: 9 } } }),
    type('big', { cores: 8, memoryGb: 16, at: { fsn1: { net: 20, available: false }, nbg1: { net: 20, deprecated: true }, hel1: { net: 21 } } }),
  ];
  const cases: [string, NodeRequirements, { type: string; location: string } | string][] = [
    ['cheapest that fits, first preferred location', { minCores: 2, locations: ['nbg1', 'fsn1'] }, { type: 'small', location: 'nbg1' }],
    ['architecture filters', { minCores: 4, architecture: 'arm', locations: ['fsn1'] }, { type: 'arm-medium', location: 'fsn1' }],
    ['cheaper arm beats x86 when any architecture will do', { minCores: 4, locations: ['fsn1'] }, { type: 'arm-medium', location: 'fsn1' }],
    ['deprecated everywhere is skipped; sold out and per-location deprecated too', { minCores: 8, locations: ['fsn1', 'nbg1', 'hel1'] }, { type: 'big', location: 'hel1' }],
    ['falls through to the next preferred location', { minCores: 4, architecture: 'x86', locations: ['ash', 'hel1'] }, { type: 'medium', location: 'hel1' }],
    ['network zone limits the locations', { minCores: 2, networkZone: 'us-east' }, { type: 'small', location: 'ash' }],
    ['no location list: any, in name order', { minCores: 4, architecture: 'x86' }, { type: 'medium', location: 'fsn1' }],
    ['too big for the catalog', { minCores: 64 }, 'no_type_meets_requirements'],
    ['fits but not sold where wanted', { minCores: 8, locations: ['fsn1', 'nbg1'] }, 'not_available_in_acceptable_locations'],
    ['a location the provider does not list', { locations: ['mars1'] }, 'unknown_location'],
  ];
  it.each(cases)('%s', (_name, req, want) => {
    const r = choosePlacement(types, locations, req);
    if (typeof want === 'string') {
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.reason).toBe(want);
    } else {
      expect(r.ok && { type: r.value.serverType.name, location: r.value.location.name }).toEqual(want);
    }
  });

  it('property: whatever it chooses meets the requirements, is buildable there, and nothing cheaper there would do', () => {
    const offer = fc.record({
      cores: fc.integer({ min: 1, max: 16 }),
      memoryGb: fc.integer({ min: 1, max: 64 }),
      architecture: fc.constantFrom('x86' as const, 'arm' as const),
      deprecated: fc.boolean(),
      at: fc.dictionary(fc.constantFrom('fsn1', 'nbg1', 'hel1', 'ash'), fc.record({ net: fc.integer({ min: 1, max: 50 }), available: fc.boolean(), deprecated: fc.boolean() })),
    });
    fc.assert(
      fc.property(fc.array(offer, { maxLength: 8 }), fc.record({ minCores: fc.integer({ min: 0, max: 16 }), minMemoryGb: fc.integer({ min: 0, max: 64 }) }), fc.subarray(['fsn1', 'nbg1', 'hel1', 'ash'], { minLength: 1 }), (offers, req0, prefs) => {
        const ts = offers.map((o, i) => type(`t${i}`, o));
        const req = { ...req0, locations: prefs };
        const r = choosePlacement(ts, locations, req);
        const anyBuildable = prefs.some((l) => ts.some((t) => meetsRequirements(t, req) && buildableIn(t, l)));
        expect(r.ok).toBe(anyBuildable);
        if (!r.ok) return;
        const { serverType, location } = r.value;
        expect(meetsRequirements(serverType, req)).toBe(true);
        expect(buildableIn(serverType, location.name)).toBe(true);
        // no more preferred location had anything
        for (const l of prefs.slice(0, prefs.indexOf(location.name))) expect(ts.some((t) => meetsRequirements(t, req) && buildableIn(t, l))).toBe(false);
        const mine = r.value.price!.netMonthly;
        for (const t of ts) if (meetsRequirements(t, req) && buildableIn(t, location.name)) expect(t.prices.find((p) => p.location === location.name)!.monthly.netMonthly).toBeGreaterThanOrEqual(mine);
      }),
    );
  });
});

describe('costs', () => {
  const pricing: ProviderPricing = { currency: 'EUR', serverTypes: { cx22: { fsn1: price(3.79) } }, floatingIpv4: { fsn1: price(3) }, primaryIpv4: {} };
  it('uses the provider price when it has one, the seeds’ figures otherwise', () => {
    expect(serverMonthlyCost(pricing, 'cx22', 'fsn1')).toEqual({ amount: price(3.79).grossMonthly, currency: 'EUR', source: 'provider' });
    expect(serverMonthlyCost(pricing, 'cx22', 'ash')).toEqual({ amount: 9.99, currency: 'USD', source: 'fallback' });
    expect(serverMonthlyCost(null, 'cx22', 'fsn1').source).toBe('fallback');
    expect(floatingIpMonthlyCost(pricing, 'fsn1').source).toBe('provider');
    expect(floatingIpMonthlyCost(pricing, 'hel1')).toEqual({ amount: 4.99, currency: 'USD', source: 'fallback' });
  });
});
