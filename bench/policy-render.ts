/**
 * Policy render benchmark: a fleet of 256 IPs on 16 nodes and 10,000 tenants (flags change both). For
 * every node: build the model, render the Lua module, parse it with luaparse, and run it in Lua 5.4.
 * Baseline measured in the same run: JSON.stringify of the same models, the cheapest serialisation.
 *
 *   npm run bench:render -- [--tenants 10000] [--ips 256] [--nodes 16]
 */
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import luaparse from 'luaparse';
import { buildPolicyModel, type PolicyInputs, type PolicyModel } from '../control-plane/src/domain/policy/policy-model.js';
import { renderPolicyModule } from '../control-plane/src/render/policy-module.js';
import { assignShard } from '../control-plane/src/domain/pools/sharding.js';
import type { Tier } from '../control-plane/src/domain/pools/placement.js';
import { printTable, writeResult } from './lib/report.js';

// not strict: `npm run bench` hands every benchmark the same flags
const { values } = parseArgs({ strict: false, options: { tenants: { type: 'string', default: '10000' }, ips: { type: 'string', default: '256' }, nodes: { type: 'string', default: '16' } } });
const TENANTS = Number(values.tenants);
const IPS = Number(values.ips);
const NODES = Number(values.nodes);

const id = (s: string) => {
  const h = createHash('sha256').update(s).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
};
const tiers: Tier[] = ['premium', 'standard', 'standard', 'rehabilitation'];
const nodes = Array.from({ length: NODES }, (_, n) => ({ id: id(`node${n}`), name: `node-${n}` }));
const ips: PolicyInputs['ips'] = Array.from({ length: IPS }, (_, i) => ({
  ipId: id(`ip${i}`),
  address: `10.${Math.floor(i / 250)}.${i % 250}.${(i * 7) % 250}`,
  nodeId: nodes[i % NODES]!.id,
  state: i % 10 === 0 ? 'warming' : 'active',
  rdnsName: `mta${i}.example.net`,
  tier: tiers[i % tiers.length]!,
  weight: 100,
  warmupCaps: i % 10 === 0 ? { gmail: 96, microsoft: 96, yahoo: 96, other: 192 } : null,
}));
const tenants: PolicyInputs['tenants'] = Array.from({ length: TENANTS }, (_, t) => {
  const tier = (['premium', 'standard', 'standard', 'standard', 'rehabilitation'] as Tier[])[t % 5]!;
  const tid = id(`tenant${t}`);
  const shard = assignShard(tid, ips.filter((ip) => ip.tier === tier).map((ip) => ({ id: ip.ipId, weight: ip.weight })), 2);
  return { id: tid, tier, locked: tier === 'rehabilitation', shardIpIds: shard.map((s) => s.id), domains: [{ domain: `t${t}.example.com`, selector: 'kcp1', algorithm: 'rsa-sha256' as const }] };
});

const time = <T>(f: () => T): [T, number] => {
  const s = performance.now();
  const r = f();
  return [r, performance.now() - s];
};

const [models, modelMs] = time(() => nodes.map((node) => buildPolicyModel({ node, ips, tenants, dkimKeyDir: '/opt/kumomta/etc/dkim', externalPerHour: { premium: 20000, standard: 5000 } })));
const [texts, renderMs] = time(() => models.map((m) => renderPolicyModule(m).text));
const [, jsonMs] = time(() => models.map((m: PolicyModel) => JSON.stringify(m)));
const [, parseMs] = time(() => texts.forEach((t) => luaparse.parse(t, { luaVersion: '5.3', comments: false, locations: false, ranges: false })));
const dir = mkdtempSync(path.join(tmpdir(), 'kcp-bench-'));
const file = path.join(dir, 'node0.lua');
writeFileSync(file, texts[0]!);
const [lua, luaMs] = time(() => spawnSync(process.env.LUA_BIN ?? 'lua5.4', ['-e', `local f = assert(loadfile('${file}', 't', {})); local d = f(); local n = 0; for _ in pairs(d.tenants) do n = n + 1 end; io.write(n)`], { encoding: 'utf8' }));
if (lua.status !== 0) throw new Error(`lua5.4 failed: ${lua.stderr}`);

const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
const result = {
  benchmark: 'policy-render',
  params: { tenants: TENANTS, ips: IPS, nodes: NODES },
  model_ms_all_nodes: Math.round(modelMs),
  render_ms_all_nodes: Math.round(renderMs),
  render_ms_per_node: Math.round((renderMs / NODES) * 10) / 10,
  baseline_json_stringify_ms_all_nodes: Math.round(jsonMs * 10) / 10,
  ratio_render_to_json: Math.round((renderMs / jsonMs) * 10) / 10,
  luaparse_ms_all_nodes: Math.round(parseMs),
  lua54_load_ms_one_node: Math.round(luaMs),
  module_kib_per_node: Math.round(bytes / NODES / 1024),
  tenants_in_lua: Number(lua.stdout),
};
printTable(`policy render (${TENANTS} tenants, ${IPS} IPs, ${NODES} nodes)`, [
  ['build models, all nodes (ms)', result.model_ms_all_nodes],
  ['render Lua, all nodes (ms)', result.render_ms_all_nodes],
  ['render Lua, per node (ms)', result.render_ms_per_node],
  ['baseline JSON.stringify, all nodes (ms)', result.baseline_json_stringify_ms_all_nodes],
  ['ratio render / JSON', result.ratio_render_to_json],
  ['luaparse validation, all nodes (ms)', result.luaparse_ms_all_nodes],
  ['Lua 5.4 load of one module incl. process start (ms)', result.lua54_load_ms_one_node],
  ['module size per node (KiB)', result.module_kib_per_node],
]);
await writeResult('policy-render', result);
