/** Read-only views of the fleet: tiers (with node concentration), IP warm-up schedules, incidents, costs. */
import { sql } from 'kysely';
import type { AppContext } from '../../context.js';
import { capsAsThrottles, capsForDay, rampLength } from '../../domain/fleet/warmup.js';
import { bareAddress, egressSourceName } from '../../domain/fleet/naming.js';
import { computeCosts } from '../../domain/pools/costs.js';
import { checkNodeDiversity } from '../../domain/pools/node-diversity.js';
import { TIERS, type Tier } from '../../domain/pools/placement.js';
import { notFound } from '../../domain/shared/errors.js';
import { cursorId, pageById } from '../pagination.js';
import { readSettings } from '../settings.js';
import { windowStartDay } from '../trust/rescore.js';
import { iso, isoOrNull } from '../views.js';
import { carriesMail } from '../../domain/fleet/ip-lifecycle.js';
import { loadPooledIps } from './fleet-state.js';

export async function tiersReport(ctx: AppContext) {
  const settings = await readSettings(ctx.db);
  const ips = await loadPooledIps(ctx.db, ctx.now());
  const tenants = await ctx.db.selectFrom('tenant_placements').select(['tier']).select((eb) => eb.fn.countAll<string>().as('n')).where('superseded_at', 'is', null).groupBy('tier').execute();
  const spare = await ctx.db
    .selectFrom('ip_addresses as ip')
    .leftJoin('ip_pool_members as m', 'm.ip_id', 'ip.id')
    .select(['ip.state'])
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('m.ip_id', 'is', null)
    .groupBy('ip.state')
    .execute();
  return {
    tiers: TIERS.map((tier) => {
      const mine = ips.filter((ip) => ip.tier === tier);
      const carrying = mine.filter((ip) => carriesMail(ip.state));
      const byState: Record<string, number> = { warming: 0, active: 0, quarantined: 0, retired: 0 };
      for (const ip of mine) byState[ip.state]!++;
      return {
        tier,
        pools: [...new Map(mine.map((ip) => [ip.poolId, { id: ip.poolId, name: ip.poolName }])).values()],
        ips_by_state: byState,
        tenants: Number(tenants.find((t) => t.tier === tier)?.n ?? 0),
        node_diversity: checkNodeDiversity(tier, carrying.map((ip) => ({ ipId: ip.ipId, nodeId: ip.nodeId, nodeName: ip.nodeName })), settings.placement.max_node_share_pct),
      };
    }),
    spare_ips_by_state: Object.fromEntries(spare.map((r) => [r.state, Number(r.n)])),
  };
}

export async function ipWarmup(ctx: AppContext, ipId: string, days = 14) {
  const ip = await ctx.db.selectFrom('ip_addresses').select(['id', 'address', 'state', 'warmup_day', 'warmup_evaluated_on', 'state_changed_at', 'last_sent_at']).where('id', '=', ipId).executeTakeFirst();
  if (!ip) throw notFound('ip address', ipId);
  const s = (await readSettings(ctx.db)).ip_warmup;
  const address = bareAddress(ip.address);
  const caps = capsForDay(ip.warmup_day, s);
  return {
    ip_id: ip.id,
    address,
    egress_source: egressSourceName(address),
    state: ip.state,
    day: ip.warmup_day,
    ramp_days: rampLength(s),
    last_evaluated_on: ip.warmup_evaluated_on,
    last_sent_at: isoOrNull(ip.last_sent_at),
    caps_today: ip.state === 'warming' ? caps : null,
    throttles_today: ip.state === 'warming' ? capsAsThrottles(caps) : null,
    schedule: Array.from({ length: days }, (_, i) => ({ day: ip.warmup_day + i, caps: capsForDay(ip.warmup_day + i, s) })),
    rules: {
      growth_factor: s.growth_factor,
      advance_min_fill_pct: s.advance_min_fill_pct,
      clean_bounce_pct: s.clean_bounce_pct,
      clean_complaint_pct: s.clean_complaint_pct,
      idle_rewarm_days: s.idle_rewarm_days,
      rest_days: s.rest_days,
    },
  };
}

type IncidentRow = { id: string; pool_id: string | null; detected_at: Date; window_start: Date; window_end: Date; level: string; assessment: unknown; actions: unknown };
const incidentView = (r: IncidentRow) => ({
  id: String(r.id),
  pool_id: r.pool_id,
  detected_at: iso(r.detected_at),
  window: { from: iso(r.window_start), to: iso(r.window_end) },
  level: r.level,
  assessment: r.assessment as Record<string, unknown>,
  actions: r.actions as Record<string, unknown>[],
});

export async function listIncidents(ctx: AppContext, q: { limit: number; cursor?: string | undefined; pool_id?: string | undefined }) {
  let query = ctx.db.selectFrom('reputation_incidents').selectAll();
  if (q.pool_id) query = query.where('pool_id', '=', q.pool_id);
  const after = cursorId(q.cursor);
  if (after) query = query.where('id', '<', sql<string>`${after}::bigint`);
  const page = pageById((await query.orderBy('id', 'desc').limit(q.limit + 1).execute()) as unknown as IncidentRow[], q.limit);
  return { items: page.items.map(incidentView), next_cursor: page.next_cursor };
}

export async function costsReport(ctx: AppContext) {
  const settings = await readSettings(ctx.db);
  const now = ctx.now();
  const windowDays = settings.trust.window_days;
  const ips = await ctx.db
    .selectFrom('ip_addresses as ip')
    .leftJoin('ip_pool_members as m', 'm.ip_id', 'ip.id')
    .leftJoin('ip_pools as p', 'p.id', 'm.pool_id')
    .select(['ip.id', 'ip.node_id', 'ip.monthly_cost_usd', 'p.tier'])
    .where('ip.state', '!=', 'retired')
    .execute();
  const nodes = await ctx.db.selectFrom('nodes').select(['id', 'monthly_cost_usd']).execute();
  const delivered = await ctx.db
    .selectFrom('tenant_daily_metrics as m')
    .leftJoin('tenant_placements as p', (j) => j.onRef('p.tenant_id', '=', 'm.tenant_id').on('p.superseded_at', 'is', null))
    .select(['m.tenant_id', 'p.tier'])
    .select((eb) => eb.fn.sum<string>('m.delivered').as('delivered'))
    .where('m.day', '>=', windowStartDay(now, windowDays))
    .where('m.lane', '=', 'external')
    .groupBy(['m.tenant_id', 'p.tier'])
    .execute();
  return {
    window_days: windowDays,
    baseline: { ip_monthly_usd: settings.costs.ip_monthly_usd, vps_monthly_usd: settings.costs.vps_monthly_usd },
    ...computeCosts({
      ips: ips.map((r) => ({ id: r.id, nodeId: r.node_id, tier: (r.tier as Tier | null) ?? null, monthlyUsd: r.monthly_cost_usd === null ? null : Number(r.monthly_cost_usd) })),
      nodes: nodes.map((n) => ({ id: n.id, monthlyUsd: n.monthly_cost_usd === null ? null : Number(n.monthly_cost_usd) })),
      tenants: delivered.map((d) => ({ tenantId: d.tenant_id, tier: (d.tier as Tier | null) ?? null, delivered: Number(d.delivered) })),
      baseline: { ipUsd: settings.costs.ip_monthly_usd, vpsUsd: settings.costs.vps_monthly_usd },
      windowDays,
    }),
  };
}
