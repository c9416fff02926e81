/** Suppression lists, per tenant (/v1/tenants/{id}/suppressions) and global (/v1/suppressions). */
import { createRoute, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type { App } from '../app.js';
import { callerOf, type HonoEnv } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { errorResponses, futureTimestamp, idParam, json, page, pageQuery, timestamp } from '../schemas.js';
import { addSuppression, exportSuppressions, importSuppressions, listSuppressions, removeSuppression } from '../../app/suppressions.js';

const reason = z.enum(['hard_bounce', 'complaint', 'unsubscribe', 'manual', 'import']);
const suppressionSchema = z
  .object({ id: z.string(), scope: z.enum(['tenant', 'global']), tenant_id: z.string().nullable(), pattern: z.string(), reason, note: z.string(), created_at: timestamp, expires_at: timestamp.nullable() })
  .openapi('Suppression');
const addBody = z
  .strictObject({
    pattern: z.string().max(320).openapi({ description: 'user@example.com, or *@example.com for a whole domain', example: '*@example.com' }),
    reason: reason.optional(),
    note: z.string().max(500).optional(),
    expires_at: futureTimestamp.optional(),
  })
  .openapi('SuppressionCreate');
const importReport = z
  .object({ rows: z.number(), imported: z.number(), duplicates: z.number(), errors: z.array(z.object({ line: z.number(), reason: z.string() })) })
  .openapi('SuppressionImportReport');
const listQuery = pageQuery.extend({ contains: z.string().max(320).optional(), reason: reason.optional() });
const suppressionId = z.object({ suppression_id: z.string().regex(/^\d{1,18}$/, 'a suppression id').openapi({ param: { name: 'suppression_id', in: 'path' } }) });

interface Scope {
  base: string;
  tags: string[];
  params: z.ZodObject<z.ZodRawShape> | null;
  tenantOf: (params: Record<string, string>) => string | null;
  read: MiddlewareHandler<HonoEnv>;
  write: MiddlewareHandler<HonoEnv>;
  label: string;
}

function register(app: App, s: Scope): void {
  const security = [{ bearer: [] }];
  const params = s.params ?? z.object({});
  const withId = params.extend(suppressionId.shape);
  app.openapi(
    createRoute({
      method: 'get', path: s.base, tags: s.tags, security, middleware: [s.read] as const, summary: `List ${s.label} suppressions`,
      request: { params, query: listQuery },
      responses: { 200: json(page(suppressionSchema, `SuppressionPage${s.label === 'global' ? 'Global' : ''}`), 'A page of suppressions'), ...errorResponses },
    }),
    async (c) => c.json(await listSuppressions(c.var.ctx, s.tenantOf(c.req.param() as Record<string, string>), c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: s.base, tags: s.tags, security, middleware: [s.write] as const, summary: `Add a ${s.label} suppression (an address or *@domain)`,
      request: { params, body: { content: { 'application/json': { schema: addBody } }, required: true } },
      responses: { 201: json(suppressionSchema, 'Added'), ...errorResponses },
    }),
    async (c) => c.json(await addSuppression(c.var.ctx, callerOf(c), s.tenantOf(c.req.param() as Record<string, string>), c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'delete', path: `${s.base}/{suppression_id}`, tags: s.tags, security, middleware: [s.write] as const, summary: `Remove a ${s.label} suppression`,
      request: { params: withId },
      responses: { 204: { description: 'Removed' }, ...errorResponses },
    }),
    async (c) => {
      const p = c.req.param() as Record<string, string>;
      await removeSuppression(c.var.ctx, callerOf(c), s.tenantOf(p), p.suppression_id!);
      return c.body(null, 204);
    },
  );
  app.openapi(
    createRoute({
      method: 'post', path: `${s.base}/import`, tags: s.tags, security, middleware: [s.write] as const,
      summary: `Import ${s.label} suppressions from CSV (pattern[,reason[,note]]; a header row is skipped)`,
      request: { params, body: { content: { 'text/csv': { schema: z.string() } }, required: true } },
      responses: { 200: json(importReport, 'Imported, with per-line errors'), ...errorResponses },
    }),
    async (c) => c.json(await importSuppressions(c.var.ctx, callerOf(c), s.tenantOf(c.req.param() as Record<string, string>), await c.req.text()), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: `${s.base}/export`, tags: s.tags, security, middleware: [s.read] as const, summary: `Export ${s.label} suppressions as CSV`,
      request: { params },
      responses: { 200: { description: 'CSV', content: { 'text/csv': { schema: z.string() } } }, ...errorResponses },
    }),
    async (c) => {
      const csv = await exportSuppressions(c.var.ctx, s.tenantOf(c.req.param() as Record<string, string>));
      return c.body(csv, 200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': 'attachment; filename="suppressions.csv"' });
    },
  );
}

export function registerSuppressionRoutes(app: App): void {
  register(app, {
    base: '/v1/tenants/{tenant_id}/suppressions',
    tags: ['suppressions'],
    params: idParam('tenant_id'),
    tenantOf: (p) => p.tenant_id!,
    read: requireAuth('read', { tenantParam: 'tenant_id' }),
    write: requireAuth('write'),
    label: 'tenant',
  });
  register(app, {
    base: '/v1/suppressions',
    tags: ['suppressions'],
    params: null,
    tenantOf: () => null,
    read: requireAuth('read'),
    write: requireAuth('admin'),
    label: 'global',
  });
}
