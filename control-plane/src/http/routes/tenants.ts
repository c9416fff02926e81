import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { errorResponses, idParam, json, page, pageQuery, slug, timestamp } from '../schemas.js';
import { createTenant, deleteTenant, getTenant, listTenants, updateTenant } from '../../app/tenants.js';
import { ENGAGEMENT_KEYS, type EngagementKey } from '../../domain/trust/components.js';

const engagementReported = z
  .array(z.enum(ENGAGEMENT_KEYS as [EngagementKey, ...EngagementKey[]]))
  .max(ENGAGEMENT_KEYS.length)
  .openapi({ description: `the engagement the tenant reports for its external mail (${ENGAGEMENT_KEYS.join(', ')}); a term it does not report is taken at its prior (trust settings), never as zero` });

export const tenantSchema = z
  .object({
    id: z.string(),
    slug: z.string(),
    display_name: z.string(),
    pseudonym: z.string().openapi({ example: 'Sender_048842' }),
    status: z.enum(['active', 'suspended']),
    leaderboard_opt_out: z.boolean(),
    engagement_reported: z.array(z.string()),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .openapi('Tenant');

const displayName = z.string().trim().min(1).max(200);
const createBody = z.strictObject({ slug, display_name: displayName, leaderboard_opt_out: z.boolean().optional(), engagement_reported: engagementReported.optional() }).openapi('TenantCreate');
const patchBody = z
  .strictObject({
    display_name: displayName.optional(),
    status: z.enum(['active', 'suspended']).optional(),
    leaderboard_opt_out: z.boolean().optional(),
    engagement_reported: engagementReported.optional(),
  })
  .openapi('TenantUpdate');
const tenantPath = idParam('tenant_id');
const tags = ['tenants'];
const security = [{ bearer: [] }];

export function registerTenantRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/tenants', tags, security, summary: 'Create a tenant', middleware: [requireAuth('write')] as const,
      request: { body: { content: { 'application/json': { schema: createBody } }, required: true } },
      responses: { 201: json(tenantSchema, 'Created'), ...errorResponses },
    }),
    async (c) => c.json(await createTenant(c.var.ctx, callerOf(c), c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/tenants', tags, security, summary: 'List tenants', middleware: [requireAuth('read')] as const,
      request: { query: pageQuery.extend({ status: z.enum(['active', 'suspended']).optional() }) },
      responses: { 200: json(page(tenantSchema, 'TenantPage'), 'A page of tenants'), ...errorResponses },
    }),
    async (c) => c.json(await listTenants(c.var.ctx, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/tenants/{tenant_id}', tags, security, summary: 'Get a tenant', middleware: [requireAuth('read', { tenantParam: 'tenant_id' })] as const,
      request: { params: tenantPath },
      responses: { 200: json(tenantSchema, 'The tenant'), ...errorResponses },
    }),
    async (c) => c.json(await getTenant(c.var.ctx, c.req.valid('param').tenant_id), 200),
  );
  app.openapi(
    createRoute({
      method: 'patch', path: '/v1/tenants/{tenant_id}', tags, security, summary: 'Update a tenant', middleware: [requireAuth('write')] as const,
      request: { params: tenantPath, body: { content: { 'application/json': { schema: patchBody } }, required: true } },
      responses: { 200: json(tenantSchema, 'Updated'), ...errorResponses },
    }),
    async (c) => c.json(await updateTenant(c.var.ctx, callerOf(c), c.req.valid('param').tenant_id, c.req.valid('json')), 200),
  );
  app.openapi(
    createRoute({
      method: 'delete', path: '/v1/tenants/{tenant_id}', tags, security, summary: 'Delete a tenant and everything it owns', middleware: [requireAuth('admin')] as const,
      request: { params: tenantPath },
      responses: { 204: { description: 'Deleted' }, ...errorResponses },
    }),
    async (c) => {
      await deleteTenant(c.var.ctx, callerOf(c), c.req.valid('param').tenant_id);
      return c.body(null, 204);
    },
  );
}
