/** What GET /v1/tenants/{id}/trust shows: the current assessment, rehabilitation progress, history. */
import { sql } from 'kysely';
import type { AppContext } from '../../context.js';
import { notFound } from '../../domain/shared/errors.js';
import { cursorId, pageById } from '../pagination.js';
import { iso, isoOrNull } from '../views.js';
import { readSettings } from '../settings.js';
import { assessTenants } from './rescore.js';
import { cleanWarmingSendsSince } from './daily-metrics.js';
import { plannedWarmingToday } from '../warming/health.js';
import { estimateUnlock } from '../../domain/warming/planner.js';
import type { TrustCounts } from '../../domain/trust/components.js';

/** The window's counts as they add up: sent = delivered + bounced + expired. */
export function countsView(c: TrustCounts) {
  return {
    sent: c.sent,
    delivered: c.delivered,
    bounced: c.hardBounces - c.streakBounces,
    expired: c.expired,
    soft_bounce_streaks: c.streakBounces,
    bounces_scored: c.hardBounces,
    soft_bounces: c.softBounces,
    complaints: c.complaints,
    opens: c.opens,
    clicks: c.clicks,
    replies: c.replies,
  };
}

export async function getTenantTrust(ctx: AppContext, tenantId: string, history: { limit: number; cursor?: string | undefined }) {
  const tenant = await ctx.db.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst();
  if (!tenant) throw notFound('tenant', tenantId);
  const now = ctx.now();
  const settings = await readSettings(ctx.db);
  const [[fresh], stored] = await Promise.all([
    assessTenants(ctx.db, [tenantId], now, settings.trust),
    ctx.db.selectFrom('tenant_trust').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst(),
  ]);
  const a = fresh!.assessment;

  let progress: { clean_warming_sends: number; remaining: number | null; target: number | null; text: string; planned_warming_sends_today: number; estimated_unlock_on: string | null } | null = null;
  if (a.locked && a.rehabilitation) {
    const since = stored?.locked_at ?? a.locked_at ?? now;
    const done = await cleanWarmingSendsSince(ctx.db, tenantId, since);
    // what is still needed comes from the unlock rule on today's counts, which include what was done
    const remaining = a.rehabilitation.clean_sends_needed;
    const perDay = await plannedWarmingToday(ctx, tenantId);
    const estimate = remaining === null ? null : estimateUnlock(remaining, perDay, now.toISOString().slice(0, 10));
    progress = {
      clean_warming_sends: done,
      remaining,
      target: remaining === null ? null : done + remaining,
      text: remaining === null ? `${done} clean warming sends so far; clean sends alone cannot unlock external sending` : `${done} of ${done + remaining} clean warming sends`,
      planned_warming_sends_today: perDay,
      estimated_unlock_on: estimate?.date ?? null,
    };
  }

  let hq = ctx.db.selectFrom('trust_score_snapshots').selectAll().where('tenant_id', '=', tenantId);
  const after = cursorId(history.cursor);
  if (after) hq = hq.where('id', '<', sql<string>`${after}::bigint`);
  const page = pageById(await hq.orderBy('id', 'desc').limit(history.limit + 1).execute(), history.limit);

  return {
    tenant_id: tenantId,
    score: a.score,
    score_bounds: a.score_bounds,
    basis: a.basis,
    authenticated: a.authenticated,
    external_sending: a.locked ? ('locked' as const) : ('allowed' as const),
    locked: a.locked,
    lock_kind: a.lock_kind,
    lock_reason: a.lock_reason,
    locked_since: isoOrNull(stored?.locked && a.locked ? stored.locked_at : a.locked_at),
    thresholds: a.thresholds,
    components: a.contributions,
    rates: a.rates,
    counts: countsView(a.counts),
    engagement_reported: fresh!.reported,
    sample: a.sample,
    lanes: fresh!.lanes,
    window_days: settings.trust.window_days,
    rehabilitation: a.rehabilitation ? { ...a.rehabilitation, progress } : null,
    stored: stored ? { score: Number(stored.score), locked: stored.locked, computed_at: iso(stored.computed_at) } : null,
    history: {
      items: page.items.map((s) => ({
        id: String(s.id),
        computed_at: iso(s.computed_at),
        score: Number(s.score),
        locked: s.locked,
        lock_reason: s.lock_reason,
        components: s.components,
      })),
      next_cursor: page.next_cursor,
    },
  };
}
