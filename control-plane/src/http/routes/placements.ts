/** Placements, tiers, warm-up schedules, reputation incidents and costs. Operators only. */
import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { errorResponses, futureTimestamp, idParam, json, page, pageQuery, timestamp, uuid } from '../schemas.js';
import { getCurrentPlacement, listCurrentPlacements, listPlacementHistory, overridePlacement, releasePlacement, runPlacementNow } from '../../app/pools/placements.js';
import { costsReport, ipWarmup, listIncidents, tiersReport } from '../../app/pools/fleet-views.js';
import { runWarmup } from '../../app/pools/warmup-job.js';
import { inTransaction } from '../../adapters/pg/database.js';
import { writeAudit } from '../../app/audit.js';
import { TIERS } from '../../domain/pools/placement.js';

const tier = z.enum(TIERS);
const shardEntry = z.object({ ip_id: z.string(), address: z.string(), weight: z.number(), rank: z.number() });
const placementSchema = z
  .object({
    id: z.string(),
    tenant_id: z.string(),
    tier,
    pool_id: z.string(),
    origin: z.enum(['engine', 'operator']),
    reason: z.string(),
    inputs: z.record(z.string(), z.unknown()),
    shard: z.array(shardEntry).openapi({ description: 'the tenant\'s IPs in its tier, best first (weighted rendezvous hashing)' }),
    placed_at: timestamp,
    superseded_at: timestamp.nullable(),
    override_expires_at: timestamp.nullable(),
  })
  .openapi('Placement');
const currentSchema = placementSchema.extend({ quarantine: z.object({ until: z.string(), reason: z.string() }).nullable() }).openapi('CurrentPlacement');
const runSummary = z
  .object({
    tenants: z.number(),
    changed: z.number(),
    deferred: z.number(),
    by_tier: z.record(z.string(), z.number()),
    incidents: z.number(),
    quarantined: z.array(z.string()),
    rotated_ips: z.array(z.object({ ip_id: z.string(), replacement_ip_id: z.string().nullable() })),
    unplaceable: z.array(z.object({ tenant_id: z.string(), reason: z.string() })),
    diversity_problems: z.array(z.string()),
  })
  .openapi('PlacementRun');
const overrideBody = z.strictObject({ tier, expires_at: futureTimestamp, reason: z.string().trim().min(1).max(500) }).openapi('PlacementOverride');
const loose = (name: string) => z.record(z.string(), z.unknown()).openapi(name);
const security = [{ bearer: [] }];
const tags = ['placement'];
const tenantPath = idParam('tenant_id');

export function registerPlacementRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/tenants/{tenant_id}/placement', tags, security, middleware: [requireAuth('read')] as const,
      summary: 'The tenant\'s current tier, pool and shard of IPs, and why',
      request: { params: tenantPath },
      responses: { 200: json(currentSchema, 'Current placement'), ...errorResponses },
    }),
    async (c) => c.json(await getCurrentPlacement(c.var.ctx, c.req.valid('param').tenant_id), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/tenants/{tenant_id}/placements', tags, security, middleware: [requireAuth('read')] as const,
      summary: 'Every placement decision for the tenant, newest first, with inputs and reasons',
      request: { params: tenantPath, query: pageQuery },
      responses: { 200: json(page(placementSchema, 'PlacementPage'), 'History'), ...errorResponses },
    }),
    async (c) => c.json(await listPlacementHistory(c.var.ctx, c.req.valid('param').tenant_id, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/placements', tags, security, middleware: [requireAuth('read')] as const, summary: 'Current placements of all tenants',
      request: { query: pageQuery.extend({ tier: tier.optional(), pool_id: uuid.optional() }) },
      responses: { 200: json(page(placementSchema, 'CurrentPlacementPage'), 'A page of placements'), ...errorResponses },
    }),
    async (c) => c.json(await listCurrentPlacements(c.var.ctx, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/placements/run', tags, security, middleware: [requireAuth('admin')] as const,
      summary: 'Run the placement engine now (bad-apple detection, tiers, shards)',
      responses: { 200: json(runSummary, 'What changed'), ...errorResponses },
    }),
    async (c) => c.json(await runPlacementNow(c.var.ctx, callerOf(c)), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/tenants/{tenant_id}/placement/override', tags, security, middleware: [requireAuth('write')] as const,
      summary: 'Pin a tenant to a tier until a time (an operator override that expires)',
      request: { params: tenantPath, body: { content: { 'application/json': { schema: overrideBody } }, required: true } },
      responses: { 200: json(currentSchema, 'The new placement'), ...errorResponses },
    }),
    async (c) => c.json(await overridePlacement(c.var.ctx, callerOf(c), c.req.valid('param').tenant_id, c.req.valid('json')), 200),
  );
  for (const what of ['override', 'quarantine'] as const) {
    app.openapi(
      createRoute({
        method: 'delete', path: what === 'override' ? '/v1/tenants/{tenant_id}/placement/override' : '/v1/tenants/{tenant_id}/quarantine', tags, security,
        middleware: [requireAuth('write')] as const,
        summary: what === 'override' ? 'End the override now; the engine places the tenant at once' : 'Release a quarantine now; the engine places the tenant at once',
        request: { params: tenantPath },
        responses: { 200: json(currentSchema, 'The new placement'), ...errorResponses },
      }),
      async (c) => c.json(await releasePlacement(c.var.ctx, callerOf(c), c.req.valid('param').tenant_id, what), 200),
    );
  }
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/tiers', tags: ['ip pools'], security, middleware: [requireAuth('read')] as const,
      summary: 'Per tier: pools, IPs by state, tenants, node concentration and what the fleet lacks',
      responses: { 200: json(loose('TiersReport'), 'Tiers'), ...errorResponses },
    }),
    async (c) => c.json(await tiersReport(c.var.ctx), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/ips/{ip_id}/warmup', tags: ['ip addresses'], security, middleware: [requireAuth('read')] as const,
      summary: 'The IP\'s warm-up day, today\'s per-provider caps (as KumoMTA throttles) and the days ahead',
      request: { params: idParam('ip_id'), query: z.object({ days: z.coerce.number().int().min(1).max(90).default(14) }) },
      responses: { 200: json(loose('IpWarmup'), 'Schedule'), ...errorResponses },
    }),
    async (c) => c.json(await ipWarmup(c.var.ctx, c.req.valid('param').ip_id, c.req.valid('query').days), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/ips/warmup/run', tags: ['ip addresses'], security, middleware: [requireAuth('admin')] as const,
      summary: 'Judge yesterday for every IP not yet judged today (the worker does this on its own)',
      responses: { 200: json(z.object({ evaluated: z.number(), changed: z.number() }), 'Done'), ...errorResponses },
    }),
    async (c) => {
      const ctx = c.var.ctx;
      const r = await inTransaction(ctx.db, async (tx) => {
        const out = await runWarmup(ctx, tx, ctx.now());
        await writeAudit(tx, callerOf(c), { action: 'ip.warmup.run', targetType: 'ip_address', targetId: null, details: out });
        return out;
      });
      return c.json(r, 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/incidents', tags: ['placement'], security, middleware: [requireAuth('read')] as const,
      summary: 'Reputation incidents: pools over a line, the bad apples found and the actions taken',
      request: { query: pageQuery.extend({ pool_id: uuid.optional() }) },
      responses: { 200: json(page(loose('Incident'), 'IncidentPage'), 'A page of incidents'), ...errorResponses },
    }),
    async (c) => c.json(await listIncidents(c.var.ctx, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/costs', tags: ['costs'], security, middleware: [requireAuth('read')] as const,
      summary: 'Approximate monthly cost per tier, per tenant (by share of delivered volume) and per 1,000 delivered',
      responses: { 200: json(loose('Costs'), 'Costs'), ...errorResponses },
    }),
    async (c) => c.json(await costsReport(c.var.ctx), 200),
  );
}
