import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { errorResponses, idParam, json, page, pageQuery, timestamp } from '../schemas.js';
import { createCredential, listCredentials, revokeCredential } from '../../app/smtp-credentials.js';

const credentialSchema = z
  .object({
    id: z.string(),
    tenant_id: z.string(),
    username: z.string(),
    description: z.string(),
    created_at: timestamp,
    last_used_at: timestamp.nullable(),
    revoked_at: timestamp.nullable(),
  })
  .openapi('SmtpCredential');
const createdSchema = credentialSchema.extend({ password: z.string().openapi({ description: 'Shown only in this response; store it now.' }) }).openapi('SmtpCredentialCreated');
const createBody = z
  .strictObject({
    username: z.string().regex(/^[A-Za-z0-9._@+-]{3,128}$/, '3-128 characters of letters, digits and . _ @ + -').optional(),
    description: z.string().max(200).optional(),
  })
  .openapi('SmtpCredentialCreate');
const tenantPath = idParam('tenant_id');
const tags = ['smtp credentials'];
const security = [{ bearer: [] }];

export function registerCredentialRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/tenants/{tenant_id}/smtp-credentials', tags, security, middleware: [requireAuth('write')] as const,
      summary: 'Create SMTP submission credentials (the password is returned once)',
      request: { params: tenantPath, body: { content: { 'application/json': { schema: createBody } }, required: false } },
      responses: { 201: json(createdSchema, 'Created'), ...errorResponses },
    }),
    async (c) => {
      c.header('cache-control', 'no-store');
      return c.json(await createCredential(c.var.ctx, callerOf(c), c.req.valid('param').tenant_id, c.req.valid('json') ?? {}), 201);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/tenants/{tenant_id}/smtp-credentials', tags, security, summary: 'List SMTP credentials (never the password)',
      middleware: [requireAuth('read', { tenantParam: 'tenant_id' })] as const,
      request: { params: tenantPath, query: pageQuery },
      responses: { 200: json(page(credentialSchema, 'SmtpCredentialPage'), 'A page of credentials'), ...errorResponses },
    }),
    async (c) => c.json(await listCredentials(c.var.ctx, c.req.valid('param').tenant_id, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'delete', path: '/v1/tenants/{tenant_id}/smtp-credentials/{credential_id}', tags, security, summary: 'Revoke SMTP credentials',
      middleware: [requireAuth('write')] as const,
      request: { params: tenantPath.extend(idParam('credential_id').shape) },
      responses: { 200: json(credentialSchema, 'Revoked'), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.json(await revokeCredential(c.var.ctx, callerOf(c), p.tenant_id, p.credential_id), 200);
    },
  );
}
