import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { dnsLabel, errorResponses, hostname, idParam, json, page, pageQuery, timestamp } from '../schemas.js';
import { createDomain, deleteDomain, getDomain, listDomains, rotateDkimKey, updateDomainVerification } from '../../app/sending-domains.js';

const verification = z.enum(['pending', 'verified', 'failed']);
const algorithm = z.enum(['rsa-sha256', 'ed25519-sha256']);

const dnsRecordSchema = z
  .object({
    type: z.enum(['TXT', 'MX']),
    name: z.string(),
    value: z.string(),
    zone_line: z.string(),
    purpose: z.enum(['spf', 'dkim', 'dmarc', 'return_path_mx']),
  })
  .openapi('DnsRecord');

export const domainSchema = z
  .object({
    id: z.string(),
    tenant_id: z.string(),
    domain: z.string(),
    dkim: z.object({ selector: z.string(), algorithm, public_key: z.string() }),
    verification: z.object({ spf: verification, dkim: verification, dmarc: verification, verified_at: timestamp.nullable() }),
    dns_records: z.array(dnsRecordSchema),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .openapi('SendingDomain');

const createBody = z.strictObject({ domain: hostname, dkim_selector: dnsLabel.optional(), dkim_algorithm: algorithm.optional() }).openapi('SendingDomainCreate');
const patchBody = z
  .strictObject({ spf_state: verification.optional(), dkim_state: verification.optional(), dmarc_state: verification.optional() })
  .openapi('SendingDomainVerification');
const rotateBody = z.strictObject({ dkim_selector: dnsLabel, dkim_algorithm: algorithm.optional() }).openapi('DkimRotate');
const tenantPath = idParam('tenant_id');
const domainPath = tenantPath.extend(idParam('domain_id').shape);
const tags = ['sending domains'];
const security = [{ bearer: [] }];
const readOwn = requireAuth('read', { tenantParam: 'tenant_id' });

export function registerDomainRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/tenants/{tenant_id}/domains', tags, security, middleware: [requireAuth('write')] as const,
      summary: 'Add a sending domain: generates its DKIM key pair and returns the DNS records to publish',
      request: { params: tenantPath, body: { content: { 'application/json': { schema: createBody } }, required: true } },
      responses: { 201: json(domainSchema, 'Created, with DNS records'), ...errorResponses },
    }),
    async (c) => c.json(await createDomain(c.var.ctx, callerOf(c), c.req.valid('param').tenant_id, c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/tenants/{tenant_id}/domains', tags, security, summary: 'List a tenant\'s sending domains', middleware: [readOwn] as const,
      request: { params: tenantPath, query: pageQuery },
      responses: { 200: json(page(domainSchema, 'SendingDomainPage'), 'A page of domains'), ...errorResponses },
    }),
    async (c) => c.json(await listDomains(c.var.ctx, c.req.valid('param').tenant_id, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/tenants/{tenant_id}/domains/{domain_id}', tags, security, summary: 'Get a sending domain and its DNS records', middleware: [readOwn] as const,
      request: { params: domainPath },
      responses: { 200: json(domainSchema, 'The domain'), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.json(await getDomain(c.var.ctx, p.tenant_id, p.domain_id), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'patch', path: '/v1/tenants/{tenant_id}/domains/{domain_id}', tags, security, summary: 'Record SPF/DKIM/DMARC verification state', middleware: [requireAuth('write')] as const,
      request: { params: domainPath, body: { content: { 'application/json': { schema: patchBody } }, required: true } },
      responses: { 200: json(domainSchema, 'Updated'), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.json(await updateDomainVerification(c.var.ctx, callerOf(c), p.tenant_id, p.domain_id, c.req.valid('json')), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/tenants/{tenant_id}/domains/{domain_id}/dkim/rotate', tags, security, summary: 'Replace the DKIM key under a new selector', middleware: [requireAuth('write')] as const,
      request: { params: domainPath, body: { content: { 'application/json': { schema: rotateBody } }, required: true } },
      responses: { 200: json(domainSchema, 'Rotated; publish the new DKIM record'), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.json(await rotateDkimKey(c.var.ctx, callerOf(c), p.tenant_id, p.domain_id, c.req.valid('json')), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'delete', path: '/v1/tenants/{tenant_id}/domains/{domain_id}', tags, security, summary: 'Remove a sending domain (and its mailboxes)', middleware: [requireAuth('write')] as const,
      request: { params: domainPath },
      responses: { 204: { description: 'Deleted' }, ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid('param');
      await deleteDomain(c.var.ctx, callerOf(c), p.tenant_id, p.domain_id);
      return c.body(null, 204);
    },
  );
}
