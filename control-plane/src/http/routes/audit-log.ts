import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { requireAuth } from '../middleware/auth.js';
import { errorResponses, json, page, pageQuery, timestamp, uuid } from '../schemas.js';
import { listAudit } from '../../app/audit.js';

const entrySchema = z
  .object({
    id: z.string(),
    at: timestamp,
    actor_type: z.enum(['operator', 'tenant', 'node', 'system']),
    actor_id: z.string().nullable(),
    action: z.string().openapi({ example: 'tenant.update' }),
    target_type: z.string(),
    target_id: z.string().nullable(),
    tenant_id: z.string().nullable(),
    request_id: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
  })
  .openapi('AuditEntry');

export function registerAuditRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/audit-log', tags: ['audit'], security: [{ bearer: [] }], middleware: [requireAuth('read')] as const,
      summary: 'The append-only log of every change, newest first',
      request: {
        query: pageQuery.extend({
          target_type: z.string().regex(/^[a-z_]+$/).optional(),
          target_id: z.string().max(100).optional(),
          tenant_id: uuid.optional(),
          action: z.string().regex(/^[a-z_]+\.[a-z_.]+$/).optional(),
        }),
      },
      responses: { 200: json(page(entrySchema, 'AuditPage'), 'A page of entries'), ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const result = await listAudit(c.var.ctx.db, { ...q, targetType: q.target_type, targetId: q.target_id, tenantId: q.tenant_id });
      return c.json({ items: result.items.map((e) => ({ ...e, id: String(e.id), at: e.at.toISOString() })), next_cursor: result.next_cursor }, 200);
    },
  );
}
