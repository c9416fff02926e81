import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import luaparse from 'luaparse';
import { describe, expect, it } from 'vitest';
import { evalLuaData } from '../../test/support/lua.js';
import { projectRoot } from '../project-root.js';
import { buildPolicyModel, type PolicyInputs, type PolicyModel } from '../domain/policy/policy-model.js';
import { renderPolicyModule } from './policy-module.js';

const dir = path.join(projectRoot(), 'control-plane/test/fixtures/scenarios');
const scenarios = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
const load = (f: string) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as PolicyInputs;

/** The model as the Lua runtime sees it after loading the module (pool members keyed `name`). */
function asLua(m: PolicyModel): unknown {
  const strip = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null));
  const emptyToObj = (o: Record<string, unknown>) => (Object.keys(o).length === 0 ? {} : o);
  return strip({
    format: m.format,
    node: m.node,
    sources: emptyToObj(Object.fromEntries(Object.entries(m.sources).map(([k, s]) => [k, strip({ ...s })]))),
    providers: emptyToObj(m.providers),
    pools: emptyToObj(Object.fromEntries(Object.entries(m.pools).map(([k, ms]) => [k, ms.map((x) => ({ name: x.source, weight: x.weight }))]))),
    tenants: emptyToObj(Object.fromEntries(Object.entries(m.tenants).map(([k, t]) => [k, strip({ ...t })]))),
    dkim: emptyToObj(m.dkim),
    inbound_domains: m.inbound_domains.length === 0 ? {} : m.inbound_domains,
    default_pool: m.default_pool,
  });
}

describe('rendered node policy', () => {
  it.each(scenarios)('%s matches its golden file (a policy change is a reviewable diff)', async (f) => {
    const { text } = renderPolicyModule(buildPolicyModel(load(f)));
    await expect(text).toMatchFileSnapshot(path.join(projectRoot(), 'lua-policy/golden', f.replace(/\.json$/, '.lua')));
  });

  it.each(scenarios)('%s: parses with luaparse, and Lua 5.4 reads back exactly the model', (f) => {
    const model = buildPolicyModel(load(f));
    const { text } = renderPolicyModule(model);
    expect(() => luaparse.parse(text, { luaVersion: '5.3' })).not.toThrow();
    expect(evalLuaData(text)).toEqual(asLua(model));
  });

  it('is byte-identical whatever the order of its inputs, and names the model by its hash', () => {
    const inputs = load('small-fleet.json');
    const a = renderPolicyModule(buildPolicyModel(inputs));
    const b = renderPolicyModule(buildPolicyModel({ ...inputs, ips: [...inputs.ips].reverse(), tenants: [...inputs.tenants].reverse() }));
    expect(b.text).toBe(a.text);
    expect(a.text).toContain(`-- model-sha256: ${a.modelSha256}`);
    expect(a.text).not.toMatch(/20\d\d-\d\d-\d\d/);
    const changed = renderPolicyModule(buildPolicyModel({ ...inputs, tenants: inputs.tenants.map((t, i) => (i === 0 ? { ...t, locked: true } : t)) }));
    expect(changed.modelSha256).not.toBe(a.modelSha256);
  });

  it('keeps tiers apart and falls back safely', () => {
    const m = buildPolicyModel(load('small-fleet.json'));
    const sourceTier = new Map(load('small-fleet.json').ips.map((ip) => [`ip-${ip.address.replace(/[.:]/g, '-')}`, ip.tier]));
    // every IP this node holds is a source (a cached pool may still name one that just stopped
    // carrying mail), but only those that carry mail are in pools
    expect(Object.keys(m.sources).sort()).toEqual(['ip-2001-db8--50', 'ip-203-0-113-10', 'ip-203-0-113-20', 'ip-203-0-113-21', 'ip-203-0-113-30', 'ip-203-0-113-40']);
    expect(m.sources['ip-203-0-113-40']!.carries_mail).toBe(false);
    for (const members of Object.values(m.pools)) for (const member of members) expect(m.sources[member.source]!.carries_mail).toBe(true);
    // a warming IP's caps are named throttles, one per (IP, provider), whatever the MX site
    expect(m.sources['ip-203-0-113-30']!.warmup).toEqual({
      gmail: { name: 'kcp-warmup-ip-203-0-113-30-gmail', spec: '96/d,max_burst=4' },
      microsoft: { name: 'kcp-warmup-ip-203-0-113-30-microsoft', spec: '96/d,max_burst=4' },
      yahoo: { name: 'kcp-warmup-ip-203-0-113-30-yahoo', spec: '96/d,max_burst=4' },
      other: { name: 'kcp-warmup-ip-203-0-113-30-other', spec: '192/d,max_burst=8' },
    });
    expect(m.providers).toMatchObject({ google: 'gmail', office365: 'microsoft', yahoo: 'yahoo' });
    for (const t of Object.values(m.tenants)) {
      for (const pool of [t.external_pool, t.warming_pool]) if (pool) expect(m.pools[pool]).toBeDefined();
      if (t.tier === 'premium' && t.external_pool) for (const member of m.pools[t.external_pool]!) expect(sourceTier.get(member.source)).toBe('premium');
    }
    expect(m.default_pool).not.toBeNull();
    for (const member of m.pools[m.default_pool!]!) expect(sourceTier.get(member.source)).not.toBe('premium');
    // the premium tenant whose shard is only on another node falls back to this node's premium IPs
    expect(m.tenants['55555555-5555-4555-8555-555555555555']!.external_pool).toBe(m.tenants['11111111-1111-4111-8111-111111111111']!.external_pool);
    expect(m.tenants['33333333-3333-4333-8333-333333333333']).toMatchObject({ external_locked: true, external_pool: null });

    const lone = buildPolicyModel(load('standard-only-node.json'));
    // no premium IP here: the premium tenant's mail would leave from the default (standard) pool, not nowhere
    expect(lone.tenants['66666666-6666-4666-8666-666666666666']!.external_pool).toBe(lone.default_pool);
    expect(Object.keys(lone.sources).sort()).toEqual(['ip-198-51-100-80', 'ip-198-51-100-90']);
    expect(Object.values(lone.pools).flat().map((m) => m.source)).not.toContain('ip-198-51-100-80');
  });
});

describe('hostile values in the policy inputs', () => {
  it('can never become code: the module still parses, runs as data, and reads back the same strings', async () => {
    const fc = (await import('fast-check')).default;
    const hostile = fc.oneof(
      fc.constantFrom("'", ']]', ']==]', '\n', '\r\n', '\u0000', "'); os.exit(1) --", '--[[', '\\', 'x'.repeat(5000), '__proto__', 'constructor'),
      fc.string({ unit: 'grapheme', maxLength: 30 }),
    );
    const base = load('small-fleet.json');
    fc.assert(
      fc.property(hostile, hostile, hostile, hostile, (nodeName, rdns, domain, tenantId) => {
        const inputs: PolicyInputs = {
          ...base,
          node: { ...base.node, name: nodeName },
          ips: base.ips.map((ip, i) => (i === 0 ? { ...ip, rdnsName: rdns } : ip)),
          tenants: base.tenants.map((t, i) => (i === 0 ? { ...t, id: tenantId, domains: [{ domain, selector: 'kcp1', algorithm: 'rsa-sha256' as const }] } : t)),
        };
        const model = buildPolicyModel(inputs);
        const { text } = renderPolicyModule(model);
        // the header is a comment and stays one line per field
        expect(text.split('\n').slice(0, 3).every((l) => l.startsWith('-- '))).toBe(true);
        expect(() => luaparse.parse(text, { luaVersion: '5.3' })).not.toThrow();
        const back = evalLuaData(text) as { node: { name: string }; sources: Record<string, { ehlo_domain: string }>; tenants: Record<string, unknown>; dkim: Record<string, unknown> };
        expect(back.node.name).toBe(nodeName);
        expect(back.sources['ip-203-0-113-10']?.ehlo_domain).toBe(rdns);
        expect(Object.keys(back.tenants)).toContain(tenantId);
        expect(Object.keys(back.dkim)).toContain(domain);
      }),
      { numRuns: 40 },
    );
  });
});
