import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { errorResponses, hostname, idParam, ipAddress, json, page, pageQuery, timestamp, uuid } from '../schemas.js';
import { createIp, deleteIp, getIp, listIps, updateIp } from '../../app/ip-addresses.js';
import { IP_STATES } from '../../domain/fleet/ip-lifecycle.js';

const ipState = z.enum(IP_STATES);
const cost = z.number().min(0).max(100000).multipleOf(0.01).nullable();

export const ipSchema = z
  .object({
    id: z.string(),
    address: z.string(),
    node_id: z.string(),
    state: ipState,
    warmup_day: z.number().int(),
    rdns_name: z.string(),
    monthly_cost_usd: z.number().nullable().openapi({ description: 'null: the settings baseline applies' }),
    pool_id: z.string().nullable(),
    provider_floating_ip_id: z.string().nullable().openapi({ description: 'bought through a provider project (POST /v1/nodes/{id}/ips/provision); null: registered by hand' }),
    rdns_verified_at: timestamp.nullable().openapi({ description: 'when forward-confirmed reverse DNS last held; a bought IP carries no mail without it' }),
    state_changed_at: timestamp,
    last_sent_at: timestamp.nullable(),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .openapi('IpAddress');
const createBody = z
  .strictObject({ address: ipAddress, node_id: uuid, rdns_name: hostname, state: z.enum(['warming', 'active']).optional(), monthly_cost_usd: cost.optional() })
  .openapi('IpAddressCreate');
const patchBody = z
  .strictObject({
    rdns_name: hostname.optional(),
    monthly_cost_usd: cost.optional(),
    state: ipState.optional().openapi({ description: 'warming -> active -> quarantined -> retired; quarantined and active may go back to warming' }),
    reason: z.string().max(500).optional(),
  })
  .openapi('IpAddressUpdate');
const ipPath = idParam('ip_id');
const tags = ['ip addresses'];
const security = [{ bearer: [] }];

export function registerIpRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/ips', tags, security, summary: 'Add a sending IP to a node', middleware: [requireAuth('write')] as const,
      request: { body: { content: { 'application/json': { schema: createBody } }, required: true } },
      responses: { 201: json(ipSchema, 'Created'), ...errorResponses },
    }),
    async (c) => c.json(await createIp(c.var.ctx, callerOf(c), c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/ips', tags, security, summary: 'List IPs', middleware: [requireAuth('read')] as const,
      request: { query: pageQuery.extend({ node_id: uuid.optional(), state: ipState.optional() }) },
      responses: { 200: json(page(ipSchema, 'IpAddressPage'), 'A page of IPs'), ...errorResponses },
    }),
    async (c) => c.json(await listIps(c.var.ctx, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/ips/{ip_id}', tags, security, summary: 'Get an IP', middleware: [requireAuth('read')] as const,
      request: { params: ipPath },
      responses: { 200: json(ipSchema, 'The IP'), ...errorResponses },
    }),
    async (c) => c.json(await getIp(c.var.ctx, c.req.valid('param').ip_id), 200),
  );
  app.openapi(
    createRoute({
      method: 'patch', path: '/v1/ips/{ip_id}', tags, security, summary: 'Update an IP or move it through its lifecycle', middleware: [requireAuth('write')] as const,
      request: { params: ipPath, body: { content: { 'application/json': { schema: patchBody } }, required: true } },
      responses: { 200: json(ipSchema, 'Updated'), ...errorResponses },
    }),
    async (c) => c.json(await updateIp(c.var.ctx, callerOf(c), c.req.valid('param').ip_id, c.req.valid('json')), 200),
  );
  app.openapi(
    createRoute({
      method: 'delete', path: '/v1/ips/{ip_id}', tags, security, summary: 'Forget an IP (it must not be in a pool)', middleware: [requireAuth('admin')] as const,
      request: { params: ipPath },
      responses: { 204: { description: 'Deleted' }, ...errorResponses },
    }),
    async (c) => {
      await deleteIp(c.var.ctx, callerOf(c), c.req.valid('param').ip_id);
      return c.body(null, 204);
    },
  );
}
