import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { errorResponses, idParam, json, timestamp } from '../schemas.js';
import { inTransaction } from '../../adapters/pg/database.js';
import { addGoldenSeed, joinPeer, listMembers, updateMember } from '../../app/warming/members.js';
import { planWarmingDay } from '../../app/warming/plan-day.js';
import { recordWarmingEngagement } from '../../app/warming/engagement.js';
import { warmingNetworkHealth } from '../../app/warming/health.js';
import { notFound } from '../../domain/shared/errors.js';

const address = z.string().max(320).regex(/^[^@\s<>]+@[a-z0-9.-]+\.[a-z]{2,63}$/i, 'an email address');
const provider = z.enum(['gmail', 'microsoft', 'yahoo', 'other']);
const memberSchema = z
  .object({
    id: z.string(), kind: z.enum(['peer', 'golden_seed']), address: z.string(), provider: z.string(), tenant_id: z.string().nullable(), mailbox_id: z.string().nullable(),
    weight: z.number(), monthly_cost_usd: z.number().nullable(), state: z.string(),
    ramp: z.object({ kind: z.enum(['new', 'prewarmed']), started_on: z.string().nullable() }).nullable(),
    listed: z.boolean(), paused_until: timestamp.nullable(), risk_reason: z.string().nullable(), cut_pct: z.number(), joined_at: timestamp,
  })
  .openapi('WarmingMember');
const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'YYYY-MM-DD');
const tags = ['warming network'];
const security = [{ bearer: [] }];

export function registerWarmingRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/warming/seeds', tags, security, middleware: [requireAuth('admin')] as const, summary: 'Register a golden seed (an aged mailbox on a major provider)',
      request: { body: { content: { 'application/json': { schema: z.strictObject({ address, provider: provider.optional(), weight: z.number().gt(0).max(100).optional(), monthly_cost_usd: z.number().min(0).max(1000).nullable().optional() }) } }, required: true } },
      responses: { 201: json(memberSchema, 'Registered'), ...errorResponses },
    }),
    async (c) => c.json(await addGoldenSeed(c.var.ctx, callerOf(c), c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/tenants/{tenant_id}/warming/members', tags, security, middleware: [requireAuth('write')] as const, summary: 'A tenant mailbox joins the warming network',
      request: { params: idParam('tenant_id'), body: { content: { 'application/json': { schema: z.strictObject({ mailbox_id: z.uuid(), ramp: z.enum(['new', 'prewarmed']).optional() }) } }, required: true } },
      responses: { 201: json(memberSchema, 'Joined'), ...errorResponses },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const tenantId = c.req.valid('param').tenant_id;
      const mb = await c.var.ctx.db.selectFrom('mailboxes').select('id').where('id', '=', body.mailbox_id).where('tenant_id', '=', tenantId).executeTakeFirst();
      if (!mb) throw notFound('mailbox', body.mailbox_id);
      return c.json(await joinPeer(c.var.ctx, callerOf(c), body), 201);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/warming/members', tags, security, middleware: [requireAuth('read')] as const, summary: 'Members of the warming network',
      request: { query: z.object({ kind: z.enum(['peer', 'golden_seed']).optional(), tenant_id: z.uuid().optional() }) },
      responses: { 200: json(z.object({ items: z.array(memberSchema) }), 'Members'), ...errorResponses },
    }),
    async (c) => c.json({ items: await listMembers(c.var.ctx, c.req.valid('query')) }, 200),
  );
  app.openapi(
    createRoute({
      method: 'patch', path: '/v1/warming/members/{member_id}', tags, security, middleware: [requireAuth('write')] as const, summary: 'Pause, isolate, retire or re-weigh a member; mark its domain listed',
      request: {
        params: idParam('member_id'),
        body: { content: { 'application/json': { schema: z.strictObject({ state: z.enum(['active', 'paused', 'isolated', 'retired']).optional(), listed: z.boolean().optional(), weight: z.number().gt(0).max(100).optional(), monthly_cost_usd: z.number().min(0).max(1000).nullable().optional(), paused_until: z.iso.datetime({ offset: true }).nullable().optional() }) } }, required: true },
      },
      responses: { 200: json(memberSchema, 'Updated'), ...errorResponses },
    }),
    async (c) => c.json(await updateMember(c.var.ctx, callerOf(c), c.req.valid('param').member_id, c.req.valid('json')), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/warming/plan', tags, security, middleware: [requireAuth('admin')] as const, summary: 'Plan a day now (the worker plans each day on its own; a planned day is left as it is)',
      request: { body: { content: { 'application/json': { schema: z.strictObject({ day: day.optional() }) } }, required: false } },
      responses: { 200: json(z.object({ day: z.string(), planned: z.number(), already_planned: z.boolean(), isolated: z.number(), unmet: z.number() }), 'The plan'), ...errorResponses },
    }),
    async (c) => {
      const ctx = c.var.ctx;
      const d = (c.req.valid('json') ?? {}).day ?? ctx.now().toISOString().slice(0, 10);
      return c.json(await inTransaction(ctx.db, (tx) => planWarmingDay(ctx, tx, d)), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/warming/plan', tags, security, middleware: [requireAuth('read')] as const, summary: "A day's planned warming sends",
      request: { query: z.object({ day: day.optional(), tenant_id: z.uuid().optional(), limit: z.coerce.number().int().min(1).max(5000).default(500) }) },
      responses: { 200: json(z.object({ day: z.string(), items: z.array(z.object({ id: z.string(), sender: z.string(), recipient: z.string(), tenant_id: z.string(), kind: z.string(), scheduled_at: timestamp, subject: z.string(), status: z.string(), message_id: z.string() })) }), 'Sends'), ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const d = q.day ?? c.var.ctx.now().toISOString().slice(0, 10);
      let query = c.var.ctx.db
        .selectFrom('warming_sends as s')
        .innerJoin('warming_members as f', 'f.id', 's.sender_id')
        .innerJoin('warming_members as t', 't.id', 's.recipient_id')
        .select(['s.id', 'f.address as sender', 't.address as recipient', 's.tenant_id', 's.kind', 's.scheduled_at', 's.subject', 's.status', 's.message_id'])
        .where('s.day', '=', d);
      if (q.tenant_id) query = query.where('s.tenant_id', '=', q.tenant_id);
      const rows = await query.orderBy('s.scheduled_at').limit(q.limit).execute();
      return c.json({ day: d, items: rows.map((r) => ({ ...r, scheduled_at: r.scheduled_at.toISOString() })) }, 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/warming/engagement', tags, security, middleware: [requireAuth('write')] as const,
      summary: 'Engagement with a warming message, by its Message-ID (open, reply, not_spam, moved_to_inbox); weighted by the recipient',
      request: { body: { content: { 'application/json': { schema: z.strictObject({ message_id: z.string().max(300), kind: z.enum(['open', 'reply', 'not_spam', 'moved_to_inbox']), occurred_at: z.iso.datetime({ offset: true }).optional() }) } }, required: true } },
      responses: { 200: json(z.object({ message_id: z.string(), recognised: z.boolean(), duplicate: z.boolean(), tenant_id: z.string().nullable(), weight: z.number().nullable() }), 'Recorded (or not ours)'), ...errorResponses },
    }),
    async (c) => c.json(await recordWarmingEngagement(c.var.ctx, c.req.valid('json')), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/warming/health', tags, security, middleware: [requireAuth('read')] as const, summary: 'Members by state, planned vs sent vs delivered vs engaged, seed use and cost, isolated members',
      request: { query: z.object({ days: z.coerce.number().int().min(1).max(90).default(7) }) },
      responses: { 200: json(z.record(z.string(), z.unknown()), 'Network health'), ...errorResponses },
    }),
    async (c) => c.json(await warmingNetworkHealth(c.var.ctx, c.req.valid('query').days), 200),
  );
}
