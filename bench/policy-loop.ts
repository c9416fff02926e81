/**
 * The closed loop, timed: from a batch of delivery records posted by a node to every node running the
 * policy that results, with nobody publishing. The API is served on a socket; nodes are protocol
 * stand-ins (control-plane/test/support/node-sim.ts) that pull every --poll-ms as the node runtime
 * does and report what they run; the worker's placement and autopilot jobs run on their timers.
 *
 *   urgent: bounces lock a tenant -> every node holds it back (the lock's fast path, no canary)
 *   release: the tenant rehabilitates -> the release goes to the canary, soaks, then every node
 *
 * Baseline in the same run: an operator's publish (POST /v1/policy/publish) of a change of the same
 * size, to every node running it, with the same nodes pulling at the same rate. The loop adds the
 * autopilot's waits (urgent delay, debounce, soak, which the run sets and reports) and its ticks.
 *
 *   npm run bench -- ...  or  npx tsx bench/policy-loop.ts [--nodes 8] [--tenants 200] [--poll-ms 1000]
 *     [--autopilot-ms 2000] [--urgent-delay 5] [--debounce 2] [--soak 5] [--runs 3]
 */
import { parseArgs } from 'node:util';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createContext } from '../control-plane/src/context.js';
import { createLogger } from '../control-plane/src/adapters/logger.js';
import { loadConfig } from '../control-plane/src/config/config.js';
import { newApp } from '../control-plane/src/http/app.js';
import { createOperator, createOperatorToken } from '../control-plane/src/app/api-tokens.js';
import { systemCaller } from '../control-plane/src/app/actor.js';
import { startJobRunner } from '../control-plane/src/worker/job-runner.js';
import { placementJob } from '../control-plane/src/app/jobs/pools-jobs.js';
import { autopilotJob } from '../control-plane/src/app/jobs/autopilot-job.js';
import { startNodeSim, type NodeSim } from '../control-plane/test/support/node-sim.js';
import { tenantEntry } from '../control-plane/test/support/policy-text.js';
import { kumoRecord } from '../control-plane/test/support/kumo-records.js';
import { benchEnv, createBenchDatabase } from './lib/bench-db.js';
import { percentile } from './lib/processes.js';
import { printTable, writeResult } from './lib/report.js';

const { values } = parseArgs({
  strict: false,
  options: {
    nodes: { type: 'string', default: '8' },
    tenants: { type: 'string', default: '200' },
    'poll-ms': { type: 'string', default: '1000' },
    'autopilot-ms': { type: 'string', default: '2000' },
    'urgent-delay': { type: 'string', default: '5' },
    debounce: { type: 'string', default: '2' },
    soak: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
  },
});
const NODES = Number(values.nodes);
const TENANTS = Number(values.tenants);
const POLL_MS = Number(values['poll-ms']);
const AUTOPILOT_MS = Number(values['autopilot-ms']);
const URGENT_DELAY = Number(values['urgent-delay']);
const DEBOUNCE = Number(values.debounce);
const SOAK = Number(values.soak);
const RUNS = Number(values.runs);

const db = await createBenchDatabase();
const cfg = loadConfig({ ...benchEnv(db.url), CP_AUTOPILOT_INTERVAL_MS: String(AUTOPILOT_MS) });
if (!cfg.ok) throw new Error(cfg.error.join('; '));
const ctx = await createContext(cfg.value, { log: createLogger(process.env.BENCH_DEBUG ? 'debug' : 'silent') });
const app = newApp(ctx);
const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
await new Promise((r) => server.once('listening', r));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const sims: NodeSim[] = [];
let stopJobs: (() => Promise<void>) | null = null;

const waitFor = async (what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 600_000): Promise<number> => {
  const t0 = performance.now();
  while (!(await probe())) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - t0;
};

try {
  const op = await createOperator(ctx, systemCaller('bench'), { email: 'bench@localhost.test', name: 'bench' });
  const token = (await createOperatorToken(ctx, systemCaller('bench'), op.id, { name: 'bench', scopes: ['admin'] })).token;
  const api = async (method: string, p: string, body?: unknown, as = token) => {
    const res = await fetch(`${base}${p}`, { method, headers: { authorization: `Bearer ${as}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, any>;
  };
  await api('PATCH', '/v1/settings/policy_rollout', { debounce_seconds: DEBOUNCE, max_delay_seconds: Math.max(DEBOUNCE, 60), urgent_delay_seconds: URGENT_DELAY, soak_seconds: SOAK, min_records: 0, apply_timeout_seconds: 600 });
  await api('PATCH', '/v1/settings/placement', { min_dwell_hours: 0 });
  const std = await api('POST', '/v1/pools', { name: 'standard-1', tier: 'standard' });
  const rehab = await api('POST', '/v1/pools', { name: 'rehab-1', tier: 'rehabilitation' });
  const nodes: { id: string; name: string; token: string }[] = [];
  for (let n = 0; n < NODES; n++) {
    const node = await api('POST', '/v1/nodes', { name: `node-${n}`, region: 'fsn1', public_address: `198.51.100.${n + 1}`, canary: n === 0 });
    nodes.push({ id: node.id, name: node.name, token: node.token });
    for (const [k, pool] of [[1, std.id], [2, std.id], [3, rehab.id]] as const) {
      const ip = await api('POST', '/v1/ips', { address: `203.0.${n}.${k}`, node_id: node.id, rdns_name: `mta${n}-${k}.example.net`, state: 'active' });
      await api('PUT', `/v1/pools/${pool}/members/${ip.id}`, { weight: 100 });
    }
  }
  // a fleet with tenants in it, placed and scored as they would be
  const tenants: string[] = [];
  for (let t = 0; t < TENANTS; t++) {
    const tenant = await api('POST', '/v1/tenants', { slug: `bench-${t}`, display_name: `Bench ${t}` });
    tenants.push(tenant.id);
    await api('POST', `/v1/tenants/${tenant.id}/placement/override`, { tier: 'standard', expires_at: '2099-01-01T00:00:00Z', reason: 'bench' });
  }
  const key = await api('GET', '/v1/policy/public-key');
  const request = (method: string, p: string, o: { token: string; headers: Record<string, string> }) =>
    fetch(`${base}${p}`, { method, headers: { authorization: `Bearer ${o.token}`, ...o.headers } });
  for (const n of nodes) sims.push(startNodeSim(request, n, Buffer.from(key.public_key_base64, 'base64'), POLL_MS));
  stopJobs = startJobRunner(ctx, [placementJob(500), autopilotJob(AUTOPILOT_MS)], 100);
  const settled = async () => {
    const st = await api('GET', '/v1/policy/status');
    return st.autopilot.active_rollout === null && st.autopilot.pending === null && st.nodes.every((n: any) => n.state === 'up_to_date');
  };
  await waitFor('every node running its first module', settled);

  const urgent: number[] = [];
  const release: number[] = [];
  const manual: number[] = [];
  const urgentSteps: { locked_ms: number; rollout_started_ms: number; nodes_running_ms: number }[] = [];
  const sender = nodes[1 % nodes.length]!;
  for (let run = 0; run < RUNS; run++) {
    // a tenant of its own per run, placed by the engine (no override), with a verified domain
    const t = await api('POST', '/v1/tenants', { slug: `loop-${run}`, display_name: `Loop ${run}` });
    const d = await api('POST', `/v1/tenants/${t.id}/domains`, { domain: `loop-${run}.example` });
    await api('PATCH', `/v1/tenants/${t.id}/domains/${d.id}`, { spf_state: 'verified', dkim_state: 'verified', dmarc_state: 'verified' });
    await waitFor('the new tenant on every node', async () => sims.every((s) => tenantEntry(s.running() ?? '', t.id) !== '') && (await settled()));

    // urgent: a batch with 5% bounces locks the tenant
    const wall0 = Date.now();
    let t0 = performance.now();
    await api('POST', '/v1/events/kumo', [...Array.from({ length: 95 }, () => kumoRecord('Delivery', { tenant: t.id })), ...Array.from({ length: 5 }, () => kumoRecord('Bounce', { tenant: t.id }))], sender.token);
    await waitFor('every node holding the tenant back', () => sims.every((s) => /external_locked = true/.test(tenantEntry(s.running() ?? '', t.id))));
    urgent.push(performance.now() - t0);
    {
      // where the time went: the lock, the rollout's start (after the urgent delay), every node on it
      const lock = await ctx.db.selectFrom('tenant_trust').select('locked_at').where('tenant_id', '=', t.id).executeTakeFirstOrThrow();
      const ro = await ctx.db.selectFrom('policy_rollouts').select(['created_at', 'urgent']).orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
      const lockedMs = lock.locked_at!.getTime() - wall0;
      if (!ro.urgent) throw new Error('the lock did not go out as an urgent rollout');
      urgentSteps.push({ locked_ms: lockedMs, rollout_started_ms: ro.created_at.getTime() - wall0, nodes_running_ms: Math.round(urgent.at(-1)!) });
    }
    await waitFor('settled after the lock', settled);

    // release: the clean warming sends the rehabilitation asks for, engaging as it assumes they will
    const trust = await api('GET', `/v1/tenants/${t.id}/trust`);
    const rehab = trust.rehabilitation;
    const remaining = rehab.clean_sends_needed as number;
    const assumed = rehab.assumed_engagement_pct as Record<string, number>;
    const records = Array.from({ length: remaining }, (_v, k) => kumoRecord('Delivery', { tenant: t.id, lane: 'warming', recipient: `w${run}-${k}@warm.example` }));
    const engagement = (['open', 'reply'] as const).flatMap((kind) => {
      const term = kind === 'open' ? 'opens' : 'replies';
      // a term it assumes nothing about engages at the tenant's own rate now
      const pct = assumed[term] ?? (trust.rates[term].raw_pct as number);
      const n = Math.ceil((pct / 100) * remaining);
      return Array.from({ length: n }, (_v, k) => ({ id: `${kind}-${run}-${k}`, tenant_id: t.id, kind, lane: 'warming', occurred_at: new Date().toISOString() }));
    });
    for (let i = 0; i < records.length; i += 1000) await api('POST', '/v1/events/kumo', records.slice(i, i + 1000), sender.token);
    t0 = performance.now();
    // the last batch is the one that unlocks: the loop is timed from it
    for (let i = 0; i < engagement.length; i += 5000) {
      if (i + 5000 >= engagement.length) t0 = performance.now();
      await api('POST', '/v1/events/engagement', { events: engagement.slice(i, i + 5000) });
    }
    await waitFor('every node running the release', () => sims.every((s) => /external_locked = false/.test(tenantEntry(s.running() ?? '', t.id))));
    release.push(performance.now() - t0);
    await waitFor('settled after the release', settled);

    // baseline: an operator's publish of a change of the same size (one tenant's entry), by hand
    await api('POST', '/v1/policy/autopilot/pause', { reason: 'bench baseline' });
    await api('POST', `/v1/tenants/${t.id}/placement/override`, { tier: 'rehabilitation', expires_at: '2099-01-01T00:00:00Z', reason: 'bench baseline' });
    t0 = performance.now();
    await api('POST', '/v1/policy/publish', {});
    await waitFor('every node running the hand publish', () => sims.every((s) => /tier = 'rehabilitation'/.test(tenantEntry(s.running() ?? '', t.id))));
    manual.push(performance.now() - t0);
    await api('POST', '/v1/policy/autopilot/resume');
    await waitFor('settled after the baseline', settled);
  }

  const med = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
  const result = {
    benchmark: 'policy-loop',
    nodes: NODES,
    tenants: TENANTS,
    runs: RUNS,
    settings: { poll_ms: POLL_MS, autopilot_interval_ms: AUTOPILOT_MS, urgent_delay_s: URGENT_DELAY, debounce_s: DEBOUNCE, soak_s: SOAK },
    urgent_ms: { median: Math.round(med(urgent)), max: Math.round(Math.max(...urgent)), all: urgent.map(Math.round), steps: urgentSteps },
    release_ms: { median: Math.round(med(release)), max: Math.round(Math.max(...release)), all: release.map(Math.round) },
    baseline_manual_publish_ms: { median: Math.round(med(manual)), max: Math.round(Math.max(...manual)), all: manual.map(Math.round) },
    ratio_urgent_to_manual: Number((med(urgent) / med(manual)).toFixed(2)),
    ratio_release_to_manual: Number((med(release) / med(manual)).toFixed(2)),
    // what the loop adds beyond the waits it is told to make
    urgent_overhead_ms: Math.round(med(urgent) - Math.min(URGENT_DELAY, DEBOUNCE) * 1000),
    release_overhead_ms: Math.round(med(release) - (DEBOUNCE + SOAK) * 1000),
  };
  printTable(`Policy loop: ${NODES} nodes, ${TENANTS} tenants, pulls every ${POLL_MS} ms, autopilot every ${AUTOPILOT_MS} ms`, [
    ['urgent (lock): event batch -> every node, median / max', `${result.urgent_ms.median} / ${result.urgent_ms.max} ms (waits at most min(urgent delay ${URGENT_DELAY} s, debounce ${DEBOUNCE} s))`],
    ['release (unlock): event batch -> every node, median / max', `${result.release_ms.median} / ${result.release_ms.max} ms (debounce ${DEBOUNCE} s + soak ${SOAK} s)`],
    ['urgent steps, last run: locked / rollout started / every node', `${urgentSteps.at(-1)!.locked_ms} / ${urgentSteps.at(-1)!.rollout_started_ms} / ${urgentSteps.at(-1)!.nodes_running_ms} ms`],
    ['baseline: hand publish -> every node, median', `${result.baseline_manual_publish_ms.median} ms`],
    ['ratio urgent / hand publish', `${result.ratio_urgent_to_manual}x`],
    ['ratio release / hand publish', `${result.ratio_release_to_manual}x`],
    ['loop overhead beyond its configured waits (urgent / release)', `${result.urgent_overhead_ms} / ${result.release_overhead_ms} ms`],
  ]);
  await writeResult('policy-loop', result);
} finally {
  await stopJobs?.();
  await Promise.all(sims.map((s) => s.stop()));
  server.close();
  await ctx.close();
  await db.drop();
}
