/**
 * One table of every benchmark's headline figures, each as a ratio to the baseline measured in the
 * same run, from the newest result files (those written since --since, unix seconds). Also written
 * as bench/results/summary-<time>.json.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { projectRoot } from '../control-plane/src/project-root.js';
import { printTable, writeResult } from './lib/report.js';

const { values } = parseArgs({ strict: false, options: { since: { type: 'string', default: '0' } } });
const since = Number(values.since) * 1000;
const dir = path.join(projectRoot(), 'bench', 'results');
const newest = (name: string): Record<string, any> | null => {
  const files = readdirSync(dir).filter((f) => f.startsWith(`${name}-`) && f.endsWith('.json')).sort();
  for (const f of files.reverse()) {
    const r = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Record<string, any>;
    if (Date.parse(r.at) >= since) return r;
  }
  return null;
};
const rows: [string, string][] = [];
const f0 = (n: number) => n.toFixed(0);
const ingest = newest('ingest');
if (ingest) rows.push(['event ingest', `${f0(ingest.ingest_records_per_s)} records/s vs COPY ${f0(ingest.baseline_copy_rows_per_s)} (${ingest.ratio_to_copy.toFixed(3)}x), ${ingest.ingest_cpu_s_per_10k} CPU s/10k`]);
const trust = newest('trust-recompute');
if (trust) rows.push(['trust recomputation', `${f0(trust.tenants_per_second)} tenants/s vs aggregate read ${f0(trust.baseline_tenants_per_second)} (${trust.ratio.toFixed(3)}x)`]);
const render = newest('policy-render');
if (render) rows.push(['policy render + validation', `${render.render_ms_per_node} ms/node render (${render.ratio_render_to_json}x JSON.stringify), luaparse ${render.luaparse_ms_all_nodes} ms all nodes, ${render.module_kib_per_node} KiB/node`]);
const pull = newest('policy-pull');
if (pull) {
  rows.push(['policy pull, 200', `${f0(pull.pull_200.per_second)} req/s (${pull.pull_200.ratio.toFixed(3)}x GET /health at ${f0(pull.baseline_health.per_second)})`]);
  rows.push(['policy pull, 304', `${f0(pull.pull_304.per_second)} req/s (${pull.pull_304.ratio.toFixed(3)}x GET /health)`]);
}
const sub = newest('submission');
if (sub) {
  for (const shape of [...new Set((sub.throughput as { shape: string }[]).map((x) => x.shape))]) {
    const sink = sub.throughput.find((x: any) => x.shape === shape && x.target.startsWith('smtp-sink'));
    const gw = sub.throughput.find((x: any) => x.shape === shape && x.target === 'gateway');
    const naive = sub.throughput.find((x: any) => x.shape === shape && x.target === 'naive relay');
    rows.push([`submission, ${shape}`, `${f0(gw.per_second)} msg/s (${(gw.per_second / sink.per_second).toFixed(3)}x sink ${f0(sink.per_second)}; naive ${(naive.per_second / sink.per_second).toFixed(3)}x), ${gw.cpu_seconds_per_10k.toFixed(2)} CPU s/10k`]);
  }
  rows.push(['submission latency added p50/p99', `${(sub.latency_ms.gateway.p50 - sub.latency_ms.sink.p50).toFixed(2)} / ${(sub.latency_ms.gateway.p99 - sub.latency_ms.sink.p99).toFixed(2)} ms`]);
  rows.push(['gate decision p50/p99', `${sub.gate_decision_ms.p50.toFixed(2)} / ${sub.gate_decision_ms.p99.toFixed(2)} ms (database path ${sub.gate_decision_database_path_ms.p50.toFixed(2)} / ${sub.gate_decision_database_path_ms.p99.toFixed(2)} ms)`]);
}
const loop = newest('policy-loop');
if (loop) {
  rows.push(['policy loop, urgent lock -> every node', `${f0(loop.urgent_ms.median)} ms median (${loop.ratio_urgent_to_manual}x a hand publish at ${f0(loop.baseline_manual_publish_ms.median)} ms; ${f0(loop.urgent_overhead_ms)} ms beyond its waits)`]);
  rows.push(['policy loop, release via canary -> every node', `${f0(loop.release_ms.median)} ms median (${loop.ratio_release_to_manual}x a hand publish; ${f0(loop.release_overhead_ms)} ms beyond debounce + soak)`]);
}
printTable('Summary', rows);
await writeResult('summary', { benchmark: 'summary', rows: Object.fromEntries(rows) });
