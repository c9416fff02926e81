import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { errorResponses, idParam, json, page, pageQuery, timestamp } from '../schemas.js';
import { addSubmissionNetwork, listSubmissionNetworks, removeSubmissionNetwork } from '../../app/submission-networks.js';
import { submissionNetworkProblem } from '../../domain/submission/submission-networks.js';

const networkSchema = z
  .object({ id: z.string(), tenant_id: z.string(), network: z.string(), description: z.string(), created_at: timestamp })
  .openapi('SubmissionNetwork');
const createBody = z
  .strictObject({
    network: z
      .string()
      .superRefine((v, ctx) => {
        const problem = submissionNetworkProblem(v);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .openapi({ example: '203.0.113.0/28', description: 'CIDR with its host bits zero, no wider than /16 (IPv4) or /48 (IPv6)' }),
    description: z.string().max(200).optional(),
  })
  .openapi('SubmissionNetworkCreate');
const tenantPath = idParam('tenant_id');
const tags = ['submission networks'];
const security = [{ bearer: [] }];

export function registerSubmissionNetworkRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/tenants/{tenant_id}/submission-networks', tags, security, middleware: [requireAuth('write')] as const,
      summary: 'Let a network submit for this tenant without SMTP AUTH (networks may not overlap across the platform)',
      request: { params: tenantPath, body: { content: { 'application/json': { schema: createBody } }, required: true } },
      responses: { 201: json(networkSchema, 'Created'), ...errorResponses },
    }),
    async (c) => c.json(await addSubmissionNetwork(c.var.ctx, callerOf(c), c.req.valid('param').tenant_id, c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/tenants/{tenant_id}/submission-networks', tags, security, summary: "List the tenant's submission networks",
      middleware: [requireAuth('read', { tenantParam: 'tenant_id' })] as const,
      request: { params: tenantPath, query: pageQuery },
      responses: { 200: json(page(networkSchema, 'SubmissionNetworkPage'), 'A page of networks'), ...errorResponses },
    }),
    async (c) => c.json(await listSubmissionNetworks(c.var.ctx, c.req.valid('param').tenant_id, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'delete', path: '/v1/tenants/{tenant_id}/submission-networks/{network_id}', tags, security, summary: 'Remove a submission network',
      middleware: [requireAuth('write')] as const,
      request: { params: tenantPath.extend(idParam('network_id').shape) },
      responses: { 204: { description: 'Removed' }, ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid('param');
      await removeSubmissionNetwork(c.var.ctx, callerOf(c), p.tenant_id, p.network_id);
      return c.body(null, 204);
    },
  );
}
