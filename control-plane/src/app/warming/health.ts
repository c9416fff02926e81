/** What operators see of the warming network: members, plans against outcomes, seeds, isolation. */
import { sql } from 'kysely';
import type { AppContext } from '../../context.js';
import { readSettings } from '../settings.js';

export async function warmingNetworkHealth(ctx: AppContext, days = 7) {
  const settings = await readSettings(ctx.db);
  const today = ctx.now().toISOString().slice(0, 10);
  const from = new Date(Date.parse(`${today}T00:00:00Z`) - (days - 1) * 86_400_000).toISOString().slice(0, 10);
  const byState = await ctx.db.selectFrom('warming_members').select(['kind', 'state']).select((eb) => eb.fn.countAll<string>().as('n')).groupBy(['kind', 'state']).execute();
  const daily = await sql<{ day: string; planned: string; sent: string; failed: string; delivered: string; bounced: string; engaged: string }>`
    SELECT s.day::text AS day, count(*) AS planned,
           count(*) FILTER (WHERE s.status = 'sent') AS sent,
           count(*) FILTER (WHERE s.status = 'failed') AS failed,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM delivery_events d WHERE d.message_id = s.message_id AND d.outcome = 'delivered')) AS delivered,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM delivery_events d WHERE d.message_id = s.message_id AND d.outcome = 'hard_bounce')) AS bounced,
           count(*) FILTER (WHERE s.opened_at IS NOT NULL OR s.replied_at IS NOT NULL OR s.rescued_at IS NOT NULL) AS engaged
    FROM warming_sends s WHERE s.day >= ${from} GROUP BY s.day ORDER BY s.day`.execute(ctx.db);
  const seeds = await sql<{ id: string; address: string; provider: string; weight: string; state: string; monthly_cost_usd: string | null; received_today: string; received_period: string }>`
    SELECT w.id, w.address, w.provider::text, w.weight, w.state::text, w.monthly_cost_usd,
           count(s.id) FILTER (WHERE s.day = ${today}) AS received_today,
           count(s.id) AS received_period
    FROM warming_members w LEFT JOIN warming_sends s ON s.recipient_id = w.id AND s.day >= ${from}
    WHERE w.kind = 'golden_seed' GROUP BY w.id ORDER BY w.address`.execute(ctx.db);
  const isolated = await ctx.db
    .selectFrom('warming_members')
    .select(['id', 'address', 'tenant_id', 'state', 'risk_reason'])
    .where((eb) => eb.or([eb('risk_reason', 'is not', null), eb('state', '=', 'isolated')]))
    .orderBy('address')
    .execute();
  const capacity = settings.warming_network.seed_daily_capacity;
  const seedRows = seeds.rows.map((s) => ({
    id: s.id,
    address: s.address,
    provider: s.provider,
    weight: Number(s.weight),
    state: s.state,
    received_today: Number(s.received_today),
    utilisation_today_pct: capacity > 0 ? Math.round((10000 * Number(s.received_today)) / capacity) / 100 : null,
    monthly_cost_usd: s.monthly_cost_usd === null ? settings.costs.golden_seed_monthly_usd : Number(s.monthly_cost_usd),
  }));
  const activeSeeds = seedRows.filter((s) => s.state !== 'retired');
  return {
    members: byState.map((r) => ({ kind: r.kind, state: r.state, count: Number(r.n) })),
    daily: daily.rows.map((d) => ({ day: d.day, planned: Number(d.planned), sent: Number(d.sent), failed: Number(d.failed), delivered: Number(d.delivered), bounced: Number(d.bounced), engaged: Number(d.engaged) })),
    seeds: {
      count: activeSeeds.length,
      daily_capacity_each: capacity,
      received_today: activeSeeds.reduce((n, s) => n + s.received_today, 0),
      monthly_cost_usd: Math.round(100 * activeSeeds.reduce((n, s) => n + s.monthly_cost_usd, 0)) / 100,
      items: seedRows,
    },
    isolated: isolated.map((m) => ({ id: m.id, address: m.address, tenant_id: m.tenant_id, state: m.state, reason: m.risk_reason ?? 'isolated by an operator' })),
  };
}

/** The tenant's warming volume today (planned sends), for the unlock estimate. */
export async function plannedWarmingToday(ctx: AppContext, tenantId: string): Promise<number> {
  const today = ctx.now().toISOString().slice(0, 10);
  const r = await ctx.db.selectFrom('warming_sends').select((eb) => eb.fn.countAll<string>().as('n')).where('tenant_id', '=', tenantId).where('day', '=', today).executeTakeFirstOrThrow();
  return Number(r.n);
}
