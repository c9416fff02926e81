/**
 * Event-ingest benchmark: KumoMTA log records posted over real HTTP to POST /v1/events/kumo (one
 * process: parse, attribute, store idempotently, roll up, suppress, rescore), against a baseline
 * measured in the same run on the same database: a plain COPY of the same rows into a copy of the
 * delivery_events table. Reports records per second and the ratio to the baseline.
 *
 *   npm run bench:ingest -- [--records 50000] [--batch 1000] [--tenants 50] [--concurrency 2]
 */
import { parseArgs } from 'node:util';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { createContext } from '../control-plane/src/context.js';
import { createLogger } from '../control-plane/src/adapters/logger.js';
import { newApp } from '../control-plane/src/http/app.js';
import { loadConfig } from '../control-plane/src/config/config.js';
import { createTenant } from '../control-plane/src/app/tenants.js';
import { createNode } from '../control-plane/src/app/nodes.js';
import { systemCaller } from '../control-plane/src/app/actor.js';
import { parseKumoRecord } from '../control-plane/src/domain/events/kumo-log-record.js';
import { printTable, writeResult } from './lib/report.js';
import { benchEnv, createBenchDatabase } from './lib/bench-db.js';

// not strict: `npm run bench` hands every benchmark the same flags
const { values } = parseArgs({
  strict: false,
  options: {
    records: { type: 'string', default: '50000' },
    batch: { type: 'string', default: '1000' },
    tenants: { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '2' },
  },
});
const RECORDS = Number(values.records);
const BATCH = Number(values.batch);
const TENANTS = Number(values.tenants);
const CONCURRENCY = Number(values.concurrency);

// a database of its own, so the figures are not disturbed by anything else
const benchDb = await createBenchDatabase();
const databaseUrl = benchDb.url;

let closeCtx: (() => Promise<void>) | null = null;
try {
  const cfg = loadConfig({ ...benchEnv(databaseUrl), CP_DB_POOL_MAX: '10' });
  if (!cfg.ok) throw new Error(cfg.error.join('; '));
  const ctx = await createContext(cfg.value, { log: createLogger('silent') });
  closeCtx = () => ctx.close();
  const caller = systemCaller('bench');
  const tenantIds: string[] = [];
  for (let i = 0; i < TENANTS; i++) tenantIds.push((await createTenant(ctx, caller, { slug: `bench-${i}`, display_name: `Bench ${i}` })).id);
  const node = await createNode(ctx, caller, { name: 'bench-node', region: 'fsn1', public_address: '203.0.113.250' });

  const kinds = ['Delivery', 'Delivery', 'Delivery', 'Delivery', 'Delivery', 'Delivery', 'Delivery', 'TransientFailure', 'Bounce', 'Reception'];
  const now = Date.now();
  const records = Array.from({ length: RECORDS }, (_, i) => ({
    type: kinds[i % kinds.length],
    id: randomBytes(16).toString('hex'),
    sender: 'bounce@bounces.bench.example',
    recipient: `user${i % 20000}@${['gmail.com', 'outlook.com', 'yahoo.com', 'example.net'][i % 4]}`,
    queue: `${tenantIds[i % TENANTS]}@gmail.com`,
    site: 'ip-1->(alt1|alt2)?.gmail-smtp-in.l.google.com@smtp_client',
    size: 2048,
    response: kinds[i % kinds.length] === 'Bounce'
      ? { code: 550, enhanced_code: { class: 5, subject: 1, detail: 1 }, content: 'no such user', command: '.' }
      : { code: 250, enhanced_code: { class: 2, subject: 0, detail: 0 }, content: 'OK', command: '.' },
    timestamp: Math.floor((now - (i % 86_400) * 1000) / 1000),
    event_time: new Date(now - (i % 86_400) * 1000).toISOString(),
    num_attempts: 1,
    bounce_classification: kinds[i % kinds.length] === 'Bounce' ? 'InvalidRecipient' : 'Uncategorized',
    egress_pool: 'standard-1',
    egress_source: 'ip-1',
    meta: { tenant: tenantIds[i % TENANTS], kcp_lane: i % 10 === 0 ? 'warming' : 'external' },
    headers: { 'Message-ID': `<${i}@bench.example>` },
    nodeid: '0f8e5d4c-0000-4000-8000-000000000001',
  }));
  const batches: string[] = [];
  for (let i = 0; i < records.length; i += BATCH) batches.push(JSON.stringify(records.slice(i, i + BATCH)));

  // ---- baseline: COPY the same rows (as they would be stored) into a copy of the table ----
  const rows = records.flatMap((r) => {
    const p = parseKumoRecord(r, node.id);
    return p.ok ? p.events : [];
  });
  const esc = (v: string | number | null) => (v === null ? '\\N' : String(v).replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n'));
  // the table of its own is DDL: the schema's owner makes it
  const copyClient = new pg.Client({ connectionString: benchDb.ownerUrl });
  copyClient.on('error', () => {});
  await copyClient.connect();
  // same columns, identity, defaults, constraints and indexes as the real table: a fair floor
  await copyClient.query('CREATE TABLE delivery_events_copy (LIKE delivery_events INCLUDING ALL)');
  const copyStarted = performance.now();
  try {
    await pipeline(
      Readable.from((function* () {
        for (const e of rows) {
          yield [e.sourceId, node.id, e.tenantId, e.lane, e.recordType, e.classification.outcome, e.messageId, e.sender, e.recipient, e.recipientDomain, e.egressPool, e.egressSource, e.responseCode, e.enhancedCode, e.responseText, e.bounceClassification, e.occurredAt.toISOString()].map(esc).join('\t') + '\n';
        }
      })()),
      copyClient.query(copyStreams.from('COPY delivery_events_copy (source_id, node_id, tenant_id, lane, record_type, outcome, message_id, sender, recipient, recipient_domain, egress_pool, egress_source, response_code, enhanced_code, response_text, bounce_classification, occurred_at) FROM STDIN')),
    );
  } finally {
    await copyClient.end();
  }
  const copySeconds = (performance.now() - copyStarted) / 1000;

  // ---- the real path, over HTTP ----
  const app = newApp(ctx);
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  let accepted = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < batches.length) {
        const body = batches[next++]!;
        const res = await fetch(`http://127.0.0.1:${port}/v1/events/kumo`, { method: 'POST', headers: { authorization: `Bearer ${node.token}`, 'content-type': 'application/json' }, body });
        if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
        accepted += ((await res.json()) as { accepted: number }).accepted;
      }
    }),
  );
  const ingestSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  // replay: idempotency costs a lookup, not a write
  const replayStarted = performance.now();
  for (const body of batches.slice(0, Math.min(10, batches.length))) {
    await fetch(`http://127.0.0.1:${port}/v1/events/kumo`, { method: 'POST', headers: { authorization: `Bearer ${node.token}`, 'content-type': 'application/json' }, body });
  }
  const replayRecords = Math.min(10, batches.length) * BATCH;
  const replaySeconds = (performance.now() - replayStarted) / 1000;
  await new Promise((r) => server.close(r));

  const ingestRate = RECORDS / ingestSeconds;
  const copyRate = rows.length / copySeconds;
  const result = {
    benchmark: 'ingest',
    params: { records: RECORDS, batch: BATCH, tenants: TENANTS, concurrency: CONCURRENCY },
    accepted_events: accepted,
    ingest_records_per_s: Math.round(ingestRate),
    ingest_cpu_s_per_10k: Math.round(((cpu.user + cpu.system) / 1e6 / RECORDS) * 10_000 * 1000) / 1000,
    baseline_copy_rows_per_s: Math.round(copyRate),
    ratio_to_copy: Math.round((ingestRate / copyRate) * 1000) / 1000,
    replay_records_per_s: Math.round(replayRecords / replaySeconds),
  };
  printTable('event ingest (single process, real HTTP, real PostgreSQL)', [
    ['ingest, records/s', result.ingest_records_per_s],
    ['baseline COPY, rows/s', result.baseline_copy_rows_per_s],
    ['ratio ingest / COPY', result.ratio_to_copy],
    ['ingest CPU s per 10k records (this process)', result.ingest_cpu_s_per_10k],
    ['replayed batch (all duplicates), records/s', result.replay_records_per_s],
  ]);
  await writeResult('ingest', result);
} catch (e) {
  process.stderr.write(`ingest benchmark failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
} finally {
  await closeCtx?.();
  await benchDb.drop();
}
