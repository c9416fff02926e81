/**
 * Provisioning on a cloud provider (operators, admin scope): provider projects and their port-25
 * egress, nodes and sending IPs bought through them. Provider failures are problem+json with the
 * provisioning code in `context.provider_code` (e.g. PROVIDER_TOKEN_READ_ONLY, PROVIDER_RATE_LIMITED).
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { errorResponses, idParam, json, slug, timestamp } from '../schemas.js';
import { ipSchema } from './ip-addresses.js';
import { nodeSchema } from './nodes.js';
import { getProviderProject, listProviderProjects, recordEgressEvent, registerProviderProject } from '../../app/provisioning/provider-projects.js';
import { provisionNode } from '../../app/provisioning/provision-node.js';
import { provisionIp, retireIpFromProvider, verifyIpRdns } from '../../app/provisioning/provision-ip.js';

const problem = { content: errorResponses[400].content };
const providerErrors = {
  ...errorResponses,
  412: { description: 'Not possible as things are (no catalog match, no zone, not a provisioned node or IP)', ...problem },
  503: { description: 'The provider failed or did not answer (context.provider_code says how)', ...problem },
} as const;

const egress = z.enum(['blocked', 'requested', 'open']).openapi({ description: 'port-25 egress of the project: blocked (new account), requested (limit request filed), open' });
const projectSchema = z
  .object({
    id: z.string(),
    provider: z.literal('hetzner'),
    name: z.string(),
    api_url: z.string(),
    token_read_only: z.boolean().openapi({ description: 'the provider refused a write with this token: provisioning needs a Read & Write token' }),
    port25_egress: egress,
    port25_changed_at: timestamp,
    port25_note: z.string().nullable(),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .openapi('ProviderProject');
const createBody = z
  .strictObject({
    name: slug,
    token: z.string().min(1).max(500).openapi({ description: 'the project API token (Read & Write to provision); sealed at rest, never shown again' }),
    api_url: z.string().max(500).optional().openapi({ description: 'default CP_HETZNER_API_URL' }),
    port25_egress: egress.optional(),
  })
  .openapi('ProviderProjectCreate');
const note = z.string().max(500).optional();
const egressBody = z
  .discriminatedUnion('event', [
    z.strictObject({ event: z.enum(['limit_requested', 'limit_granted', 'limit_denied']), note }),
    z.strictObject({ event: z.literal('probe'), node_id: z.uuid(), connected: z.boolean().openapi({ description: 'the node connected to a public MX on port 25' }), note }),
  ])
  .openapi('EgressEvent');
const provisionNodeBody = z
  .strictObject({
    project_id: z.uuid(),
    name: slug,
    locations: z.array(z.string().regex(/^[a-z0-9-]{1,40}$/)).min(1).max(20).optional().openapi({ description: 'acceptable locations in order of preference (default CP_NODE_LOCATIONS)' }),
    relay_port: z.number().int().min(1).max(65535).optional(),
    canary: z.boolean().optional(),
  })
  .openapi('NodeProvision');
const cost = z.object({ amount_usd: z.number().nullable(), source: z.enum(['provider', 'fallback']) });
const provisionedNode = z
  .object({ node: nodeSchema, token: z.string().openapi({ description: 'Shown only in this response.' }), provider_server_id: z.string(), server_type: z.string(), location: z.string(), adopted: z.boolean(), monthly_cost: cost })
  .openapi('ProvisionedNode');
const provisionIpBody = z
  .strictObject({ rdns_zone: z.string().regex(/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/).optional().openapi({ description: 'zone of the PTR name (default CP_IP_RDNS_ZONE)' }) })
  .openapi('IpProvision');
const provisionedIp = z
  .object({ ip: ipSchema, provider_floating_ip_id: z.string(), ptr_name: z.string(), rdns_verified: z.boolean().openapi({ description: 'forward-confirmed reverse DNS holds; until it does the IP carries no mail' }), adopted: z.boolean(), monthly_cost: cost })
  .openapi('ProvisionedIp');

const tags = ['provisioning'];
const security = [{ bearer: [] }];


export function registerProvisioningRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/provider-projects', tags, security, summary: 'Register a provider project (its token is checked with one read)', middleware: [requireAuth('admin')] as const,
      request: { body: { content: { 'application/json': { schema: createBody } }, required: true } },
      responses: { 201: json(projectSchema, 'Registered'), ...providerErrors },
    }),
    async (c) => c.json(await registerProviderProject(c.var.ctx, callerOf(c), c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/provider-projects', tags, security, summary: 'List provider projects', middleware: [requireAuth('admin')] as const,
      responses: { 200: json(z.object({ items: z.array(projectSchema) }), 'Provider projects'), ...errorResponses },
    }),
    async (c) => c.json(await listProviderProjects(c.var.ctx), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/provider-projects/{project_id}', tags, security, summary: 'Get a provider project', middleware: [requireAuth('admin')] as const,
      request: { params: idParam('project_id') },
      responses: { 200: json(projectSchema, 'The project'), ...errorResponses },
    }),
    async (c) => c.json(await getProviderProject(c.var.ctx, c.req.valid('param').project_id), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/provider-projects/{project_id}/egress', tags, security, summary: 'Record a port-25 egress event (limit request filed, granted, denied; a node probe)', middleware: [requireAuth('admin')] as const,
      request: { params: idParam('project_id'), body: { content: { 'application/json': { schema: egressBody } }, required: true } },
      responses: {
        200: json(projectSchema.extend({ node_probe: z.object({ node_id: z.string(), connected: z.boolean(), at: timestamp }).optional() }).openapi('ProviderProjectEgress'), 'The project after the event'),
        ...errorResponses,
      },
    }),
    async (c) => c.json(await recordEgressEvent(c.var.ctx, callerOf(c), c.req.valid('param').project_id, c.req.valid('json')), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/nodes/provision', tags, security, summary: 'Buy a node server (type and location from the catalog) that enrols itself; re-running after a failure adopts what was created', middleware: [requireAuth('admin')] as const,
      request: { body: { content: { 'application/json': { schema: provisionNodeBody } }, required: true } },
      responses: { 201: json(provisionedNode, 'Provisioned'), ...providerErrors },
    }),
    async (c) => {
      c.header('cache-control', 'no-store');
      return c.json(await provisionNode(c.var.ctx, callerOf(c), c.req.valid('json')), 201);
    },
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/nodes/{node_id}/ips/provision', tags, security, summary: 'Buy a sending IP for a provisioned node: Floating IP, assigned, PTR set, FCrDNS checked', middleware: [requireAuth('admin')] as const,
      request: { params: idParam('node_id'), body: { content: { 'application/json': { schema: provisionIpBody } }, required: false } },
      responses: { 201: json(provisionedIp, 'Bought'), ...providerErrors },
    }),
    async (c) => c.json(await provisionIp(c.var.ctx, callerOf(c), c.req.valid('param').node_id, (c.req.valid('json') as { rdns_zone?: string } | undefined) ?? {}), 201),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/ips/{ip_id}/rdns/verify', tags, security, summary: 'Check forward-confirmed reverse DNS of a bought IP again (it carries mail only while it holds)', middleware: [requireAuth('admin')] as const,
      request: { params: idParam('ip_id') },
      responses: { 200: json(z.object({ ip: ipSchema, rdns_verified: z.boolean(), ptr_name: z.string().nullable() }).openapi('IpRdnsCheck'), 'Checked'), ...providerErrors },
    }),
    async (c) => c.json(await verifyIpRdns(c.var.ctx, callerOf(c), c.req.valid('param').ip_id), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/ips/{ip_id}/retire-from-provider', tags, security, summary: 'Retire a bought IP and release it at the provider (PTR reset, unassigned, deleted)', middleware: [requireAuth('admin')] as const,
      request: { params: idParam('ip_id') },
      responses: { 200: json(z.object({ ip: ipSchema, released: z.boolean() }).openapi('IpRelease'), 'Released'), ...providerErrors },
    }),
    async (c) => c.json(await retireIpFromProvider(c.var.ctx, callerOf(c), c.req.valid('param').ip_id), 200),
  );
}
