import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { errorResponses, idParam, json } from '../schemas.js';
import { getTenantTrust } from '../../app/trust/trust-view.js';
import { rebuildTrust } from '../../app/trust/rebuild.js';
import { rescoreAllTenants } from '../../app/trust/rescore.js';
import { leaderboard } from '../../app/leaderboard.js';
import { writeAudit } from '../../app/audit.js';
import { PENALTY_KEYS, TRUST_COMPONENTS, type ComponentKey, type PenaltyKey } from '../../domain/trust/components.js';
import { METRIC_COUNTERS } from '../../domain/trust/rollup.js';

const rate = z.object({
  raw_pct: z.number(),
  wilson_low_pct: z.number(),
  wilson_high_pct: z.number(),
  numerator: z.number(),
  denominator: z.number(),
  source: z.enum(['observed', 'prior']).openapi({ description: 'prior: the tenant does not report this engagement, so its external mail is taken to engage at the prior (trust settings); its warming lane counts as observed' }),
  imputed: z.number().openapi({ description: 'the part of the numerator the prior stands for' }),
});
const byComponent = <T extends z.ZodType>(t: T) => z.object(Object.fromEntries(TRUST_COMPONENTS.map((c) => [c.key, t])) as Record<ComponentKey, T>);
const penaltyMilestone = z.object({ current_pct: z.number(), target_pct: z.number(), clean_sends_needed: z.number() });
const counts = z.object(Object.fromEntries(METRIC_COUNTERS.map((c) => [c, z.number()])) as Record<(typeof METRIC_COUNTERS)[number], z.ZodNumber>);
const windowCounts = z
  .object({ sent: z.number(), delivered: z.number(), bounced: z.number(), expired: z.number(), soft_bounce_streaks: z.number(), bounces_scored: z.number(), soft_bounces: z.number(), complaints: z.number(), opens: z.number(), clicks: z.number(), replies: z.number() })
  .openapi({ description: 'both lanes over the window: sent = delivered + bounced + expired; bounces_scored = bounced + soft_bounce_streaks (five soft bounces in a row to one address)' });
const trustSchema = z
  .object({
    tenant_id: z.string(),
    score: z.number().openapi({ description: 'Platform Trust Score, 0-100: the formula on the observed rates' }),
    score_bounds: z.object({ optimistic: z.number(), pessimistic: z.number() }).openapi({ description: 'the score with every rate at the end of its Wilson interval that favours (optimistic) or disfavours (pessimistic) the tenant' }),
    basis: z.enum(['wilson_interval', 'insufficient_sample']).openapi({ description: 'insufficient_sample: below the minimum sample the lock state does not move; wilson_interval: a lock needs the optimistic score below the line' }),
    authenticated: z.boolean(),
    external_sending: z.enum(['allowed', 'locked']),
    locked: z.boolean(),
    lock_kind: z.enum(['authentication', 'score']).nullable().openapi({ description: 'authentication locks lift when the domain verifies; score locks at the unlock threshold' }),
    lock_reason: z.string().nullable(),
    locked_since: z.string().nullable(),
    thresholds: z.object({ lock_below: z.number(), unlock_at_or_above: z.number() }),
    components: byComponent(z.number()).extend({ base: z.number() }),
    rates: byComponent(rate),
    counts: windowCounts,
    engagement_reported: z.array(z.string()).openapi({ description: 'engagement the tenant reports; the others take their prior' }),
    sample: z.object({ sends: z.number(), delivered: z.number(), min_sample: z.number(), sufficient: z.boolean() }),
    lanes: z.object({ external: counts, warming: counts }),
    window_days: z.number(),
    rehabilitation: z
      .object({
        clean_sends_needed: z.number().nullable().openapi({ description: 'clean warming sends still needed to unlock under the lock rule, at assumed_engagement_pct; null: clean sends alone cannot unlock it (see engagement_points_needed)' }),
        assumed_engagement_pct: z.record(z.string(), z.number()).openapi({ description: 'the engagement (percent of delivered) clean_sends_needed counts on from the new sends: how warming mail engages on the network, or the prior with no data at all; a term missing engages at the tenant\'s own rate now' }),
        engagement_points_needed: z.number(),
        milestones: z.object(Object.fromEntries(PENALTY_KEYS.map((k) => [k, penaltyMilestone])) as Record<PenaltyKey, typeof penaltyMilestone>).openapi({ description: 'per penalty, the clean sends that bring its rate to target (5 bounces in 100 sends: 400 back to 1%)' }),
        score_needed: z.number(),
        target_at_lock: z.number().nullable(),
        instructions: z.string(),
        progress: z
          .object({
            clean_warming_sends: z.number(),
            remaining: z.number().nullable(),
            target: z.number().nullable(),
            text: z.string(),
            planned_warming_sends_today: z.number(),
            estimated_unlock_on: z.string().nullable().openapi({ description: 'when the remaining sends are done at today\'s warming schedule; null without one, or when clean sends alone cannot unlock' }),
          })
          .nullable(),
      })
      .nullable(),
    stored: z.object({ score: z.number(), locked: z.boolean(), computed_at: z.string() }).nullable(),
    history: z.object({
      items: z.array(z.object({ id: z.string(), computed_at: z.string(), score: z.number(), locked: z.boolean(), lock_reason: z.string().nullable(), components: z.record(z.string(), z.unknown()) })),
      next_cursor: z.string().nullable(),
    }),
  })
  .openapi('TenantTrust');
const leaderboardSchema = z
  .object({ entries: z.array(z.object({ rank: z.number().int(), pseudonym: z.string(), score: z.number() })), computed_at: z.string() })
  .openapi('Leaderboard');

export function registerTrustRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/tenants/{tenant_id}/trust', tags: ['trust'], security: [{ bearer: [] }],
      middleware: [requireAuth('read', { tenantParam: 'tenant_id' })] as const,
      summary: 'Trust score, its components, lock state, rehabilitation and history',
      request: {
        params: idParam('tenant_id'),
        query: z.object({
          history_limit: z.coerce.number().int().min(1).max(200).default(20),
          history_cursor: z.string().max(500).optional(),
        }),
      },
      responses: { 200: json(trustSchema, 'The tenant\'s trust'), ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid('query');
      return c.json(await getTenantTrust(c.var.ctx, c.req.valid('param').tenant_id, { limit: q.history_limit, cursor: q.history_cursor }), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/trust/recompute', tags: ['trust'], security: [{ bearer: [] }], middleware: [requireAuth('admin')] as const,
      summary: 'Recompute every tenant: `rescore` from the rollups, or `rebuild` the rollups from the stored events first',
      request: { body: { content: { 'application/json': { schema: z.strictObject({ mode: z.enum(['rescore', 'rebuild']) }).openapi('TrustRecompute') } }, required: true } },
      responses: { 200: json(z.object({ mode: z.string(), tenants: z.number(), rollup_rows: z.number().nullable() }), 'Done'), ...errorResponses },
    }),
    async (c) => {
      const { mode } = c.req.valid('json');
      const ctx = c.var.ctx;
      const result = mode === 'rebuild' ? await rebuildTrust(ctx) : { tenants: await rescoreAllTenants(ctx.db, ctx.now()), rows: null };
      await writeAudit(ctx.db, callerOf(c), { action: 'trust.recompute', targetType: 'trust', targetId: mode, details: { tenants: result.tenants, rollup_rows: result.rows } });
      return c.json({ mode, tenants: result.tenants, rollup_rows: result.rows }, 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/leaderboard', tags: ['trust'], security: [{ bearer: [] }], middleware: [requireAuth('read', { anyTenant: true })] as const,
      summary: 'Anonymised leaderboard: pseudonyms and scores only',
      request: { query: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) }) },
      responses: { 200: json(leaderboardSchema, 'Top tenants by score'), ...errorResponses },
    }),
    async (c) => c.json(await leaderboard(c.var.ctx, c.req.valid('query').limit), 200),
  );
}
