/**
 * Trust recomputation benchmark: every tenant's Platform Trust Score recomputed from its 30-day window
 * of daily metrics (both lanes), lock state and snapshots written, as the worker's rescore job does.
 * Baseline in the same run: reading the same window rows with one plain aggregate query, the I/O
 * floor of any recomputation. Reports tenants per second and the ratio.
 *
 *   npm run bench:trust -- [--tenants 5000]
 */
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { createContext } from '../control-plane/src/context.js';
import { createLogger } from '../control-plane/src/adapters/logger.js';
import { loadConfig } from '../control-plane/src/config/config.js';
import { rescoreAllTenants, windowStartDay } from '../control-plane/src/app/trust/rescore.js';
import { benchEnv, createBenchDatabase } from './lib/bench-db.js';
import { printTable, writeResult } from './lib/report.js';

const { values } = parseArgs({ strict: false, options: { tenants: { type: 'string', default: '5000' } } });
const TENANTS = Number(values.tenants);

const db = await createBenchDatabase();
const cfg = loadConfig(benchEnv(db.url));
if (!cfg.ok) throw new Error(cfg.error.join('; '));
const ctx = await createContext(cfg.value, { log: createLogger('silent') });
try {
  const now = new Date();
  // tenants with pseudonyms of the right shape, and 30 days x 2 lanes of varied metrics each
  await sql`INSERT INTO tenants (slug, display_name, pseudonym)
            SELECT 'bench-' || g, 'Bench ' || g, 'Sender_' || lpad(g::text, 8, '0') FROM generate_series(1, ${TENANTS}) g`.execute(ctx.db);
  // each with a verified (authenticated) sending domain, so the score is about the numbers
  await sql`INSERT INTO sending_domains (tenant_id, domain, dkim_selector, dkim_public_key, dkim_private_key_enc, dkim_key_id, spf_state, dkim_state, dmarc_state, verified_at)
            SELECT id, slug || '.bench.example', 'kcp1', 'QUJD', '\\x00'::bytea, 'b1', 'verified', 'verified', 'verified', now() FROM tenants`.execute(ctx.db);
  await sql`INSERT INTO tenant_daily_metrics (tenant_id, day, lane, sent, delivered, hard_bounces, soft_bounces, complaints, opens, clicks, replies)
            SELECT t.id, (${now.toISOString().slice(0, 10)}::date - d), l::lane, 200, 198 - (h % 3), (h % 3), 2, (h % 50 = 0)::int, 110 + (h % 60), 10, 12 + (h % 24)
            FROM tenants t CROSS JOIN generate_series(0, 29) d CROSS JOIN unnest(ARRAY['external', 'warming']) l
            CROSS JOIN LATERAL (SELECT abs(hashtext(t.id::text || d::text)) AS h) x`.execute(ctx.db);
  await sql`ANALYZE`.execute(ctx.db);

  const from = windowStartDay(now, 30);
  const b0 = performance.now();
  const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM (
      SELECT tenant_id, lane, sum(sent), sum(delivered), sum(hard_bounces), sum(complaints), sum(opens), sum(replies)
      FROM tenant_daily_metrics WHERE day >= ${from} GROUP BY tenant_id, lane) x`.execute(ctx.db);
  const baselineSeconds = (performance.now() - b0) / 1000;
  if (Number(rows[0]!.n) !== TENANTS * 2) throw new Error('baseline read the wrong rows');

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const n = await ctx.db.transaction().execute((tx) => rescoreAllTenants(tx, now));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (n !== TENANTS) throw new Error(`rescored ${n} tenants, expected ${TENANTS}`);
  const locked = await ctx.db.selectFrom('tenant_trust').select((eb) => eb.fn.countAll<string>().as('n')).where('locked', '=', true).executeTakeFirstOrThrow();

  const perSecond = TENANTS / seconds;
  const basePerSecond = TENANTS / baselineSeconds;
  printTable(`Trust recomputation (${TENANTS} tenants, 30-day window, 2 lanes)`, [
    ['recompute, tenants/s', perSecond.toFixed(0)],
    ['baseline aggregate read, tenants/s', basePerSecond.toFixed(0)],
    ['ratio recompute / read', (perSecond / basePerSecond).toFixed(3)],
    ['CPU s per 10k tenants (this process)', (((cpu.user + cpu.system) / 1e6 / TENANTS) * 10_000).toFixed(2)],
    ['tenants locked after recompute', locked.n],
  ]);
  await writeResult('trust-recompute', {
    benchmark: 'trust-recompute',
    parameters: { tenants: TENANTS, window_days: 30 },
    tenants_per_second: perSecond,
    baseline_tenants_per_second: basePerSecond,
    ratio: perSecond / basePerSecond,
    seconds,
    baseline_seconds: baselineSeconds,
    locked: Number(locked.n),
  });
} finally {
  await ctx.close();
  await db.drop();
}
