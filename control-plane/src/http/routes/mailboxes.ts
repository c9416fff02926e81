import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { errorResponses, idParam, json, localPart, page, pageQuery, timestamp, uuid } from '../schemas.js';
import { createMailbox, deleteMailbox, getMailbox, listMailboxes } from '../../app/mailboxes.js';

const mailboxSchema = z
  .object({ id: z.string(), tenant_id: z.string(), domain_id: z.string(), address: z.string(), display_name: z.string(), created_at: timestamp })
  .openapi('Mailbox');
const createBody = z.strictObject({ domain_id: uuid, local_part: localPart, display_name: z.string().max(200).optional() }).openapi('MailboxCreate');
const tenantPath = idParam('tenant_id');
const mailboxPath = tenantPath.extend(idParam('mailbox_id').shape);
const tags = ['mailboxes'];
const security = [{ bearer: [] }];
const readOwn = requireAuth('read', { tenantParam: 'tenant_id' });

export function registerMailboxRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/tenants/{tenant_id}/mailboxes', tags, security, summary: 'Create a mailbox on one of the tenant\'s domains', middleware: [requireAuth('write')] as const,
      request: { params: tenantPath, body: { content: { 'application/json': { schema: createBody } }, required: true } },
      responses: { 201: json(mailboxSchema, 'Created'), ...errorResponses },
    }),
    async (c) => c.json(await createMailbox(c.var.ctx, callerOf(c), c.req.valid('param').tenant_id, c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/tenants/{tenant_id}/mailboxes', tags, security, summary: 'List mailboxes', middleware: [readOwn] as const,
      request: { params: tenantPath, query: pageQuery },
      responses: { 200: json(page(mailboxSchema, 'MailboxPage'), 'A page of mailboxes'), ...errorResponses },
    }),
    async (c) => c.json(await listMailboxes(c.var.ctx, c.req.valid('param').tenant_id, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/tenants/{tenant_id}/mailboxes/{mailbox_id}', tags, security, summary: 'Get a mailbox', middleware: [readOwn] as const,
      request: { params: mailboxPath },
      responses: { 200: json(mailboxSchema, 'The mailbox'), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.json(await getMailbox(c.var.ctx, p.tenant_id, p.mailbox_id), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'delete', path: '/v1/tenants/{tenant_id}/mailboxes/{mailbox_id}', tags, security, summary: 'Delete a mailbox', middleware: [requireAuth('write')] as const,
      request: { params: mailboxPath },
      responses: { 204: { description: 'Deleted' }, ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid('param');
      await deleteMailbox(c.var.ctx, callerOf(c), p.tenant_id, p.mailbox_id);
      return c.body(null, 204);
    },
  );
}
