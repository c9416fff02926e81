/**
 * The gauges read from the database: pending work, node policy versions and pulls, bounce rates of
 * tenants and pools, locked tenants. Refreshed when scraped, at most every 15 s, so a scrape storm
 * costs the database nothing extra.
 */
import { sql } from 'kysely';
import type { AppContext } from '../../context.js';
import { bareAddress, egressSourceName } from '../../domain/fleet/naming.js';
import { readSettings } from '../settings.js';
import { windowStartDay } from '../trust/rescore.js';

const REFRESH_MS = 15_000;
let last = 0;
let running: Promise<void> | null = null;

export function refreshFleetGauges(ctx: AppContext): Promise<void> {
  if (Date.now() - last < REFRESH_MS) return Promise.resolve();
  running ??= read(ctx)
    .then(() => {
      last = Date.now();
    })
    .catch((e: Error) => ctx.log.warn({ err: { message: e.message } }, 'could not refresh the database gauges'))
    .finally(() => {
      running = null;
    });
  return running;
}

async function read(ctx: AppContext): Promise<void> {
  const m = ctx.metrics;
  const now = ctx.now();
  const settings = await readSettings(ctx.db);
  const currentKey = ctx.config.masterKeys[0]!.id;
  const pending = await sql<{ warming: string; reseal: string; unscored: string }>`
    SELECT (SELECT count(*) FROM warming_sends WHERE status = 'planned' AND scheduled_at <= ${now}) AS warming,
           (SELECT count(*) FROM sending_domains WHERE dkim_key_id <> ${currentKey}) AS reseal,
           (SELECT count(*) FROM tenants t WHERE NOT EXISTS (SELECT 1 FROM tenant_trust tt WHERE tt.tenant_id = t.id)) AS unscored`.execute(ctx.db);
  const p = pending.rows[0]!;
  m.pendingWork.set({ kind: 'warming_sends_due' }, Number(p.warming));
  m.pendingWork.set({ kind: 'dkim_keys_to_reseal' }, Number(p.reseal));
  m.pendingWork.set({ kind: 'tenants_unscored' }, Number(p.unscored));

  const nodes = await sql<{ name: string; applied: number | null; latest: number | null; last_seen_at: Date | null }>`
    SELECT n.name, a.version AS applied, (SELECT max(v.version) FROM policy_versions v WHERE v.node_id = n.id AND v.published_at IS NOT NULL AND v.rolled_back_at IS NULL) AS latest, n.last_seen_at
    FROM nodes n LEFT JOIN policy_versions a ON a.id = n.applied_policy_version_id`.execute(ctx.db);
  m.nodePolicyVersion.reset();
  m.nodePolicyLatestVersion.reset();
  m.nodeLastSeen.reset();
  for (const n of nodes.rows) {
    m.nodePolicyVersion.set({ node: n.name }, n.applied ?? 0);
    m.nodePolicyLatestVersion.set({ node: n.name }, n.latest ?? 0);
    m.nodeLastSeen.set({ node: n.name }, n.last_seen_at ? n.last_seen_at.getTime() / 1000 : 0);
  }

  const tenants = await sql<{ tenant_id: string; sent: string; hard: string }>`
    SELECT tenant_id, sum(sent) AS sent, sum(hard_bounces) AS hard FROM tenant_daily_metrics
    WHERE day >= ${windowStartDay(now, settings.trust.window_days)} GROUP BY tenant_id HAVING sum(sent) >= ${settings.trust.min_sample}`.execute(ctx.db);
  m.tenantBounceRate.reset();
  for (const t of tenants.rows) m.tenantBounceRate.set({ tenant: t.tenant_id }, Number(t.hard) / Number(t.sent));
  m.tenantBounceThreshold.set(settings.trust.bounce_target_pct / 100);

  const ips = await ctx.db
    .selectFrom('ip_addresses as ip')
    .innerJoin('ip_pool_members as pm', 'pm.ip_id', 'ip.id')
    .innerJoin('ip_pools as p', 'p.id', 'pm.pool_id')
    .select(['ip.address', 'p.name'])
    .execute();
  const poolOf = new Map(ips.map((r) => [egressSourceName(bareAddress(r.address)), r.name]));
  m.poolBounceRate.reset();
  if (poolOf.size > 0) {
    const rows = await sql<{ source: string; sent: string; hard: string }>`
      SELECT egress_source AS source, count(*) FILTER (WHERE outcome IN ('delivered', 'hard_bounce', 'expired')) AS sent, count(*) FILTER (WHERE outcome = 'hard_bounce') AS hard
      FROM delivery_events WHERE egress_source = ANY(${[...poolOf.keys()]}::text[]) AND occurred_at >= ${new Date(now.getTime() - 86_400_000)}
      GROUP BY egress_source`.execute(ctx.db);
    const byPool = new Map<string, { sent: number; hard: number }>();
    for (const r of rows.rows) {
      const pool = poolOf.get(r.source)!;
      const acc = byPool.get(pool) ?? { sent: 0, hard: 0 };
      acc.sent += Number(r.sent);
      acc.hard += Number(r.hard);
      byPool.set(pool, acc);
    }
    for (const [pool, c] of byPool) if (c.sent > 0) m.poolBounceRate.set({ pool }, c.hard / c.sent);
  }
  m.poolBounceThreshold.set(settings.placement.bounce_review_pct / 100);

  const locked = await ctx.db.selectFrom('tenant_trust').select((eb) => eb.fn.countAll<string>().as('n')).where('locked', '=', true).executeTakeFirstOrThrow();
  m.tenantsLocked.set(Number(locked.n));
}
