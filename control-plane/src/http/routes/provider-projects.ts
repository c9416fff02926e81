/**
 * Provisioning on a cloud provider (operators, admin scope): provider projects and their port-25
 * egress, nodes and sending IPs bought through them. Provider failures are problem+json with the
 * provisioning code in `context.provider_code` (e.g. PROVIDER_TOKEN_READ_ONLY, PROVIDER_RATE_LIMITED).
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { requireNode } from '../middleware/node-auth.js';
import { PROBE_OUTCOMES } from '../../domain/provisioning/egress.js';
import { recordNodeProbe } from '../../app/provisioning/egress-probes.js';
import { errorResponses, idParam, json, page, pageQuery, slug, timestamp } from '../schemas.js';
import { ipSchema } from './ip-addresses.js';
import { nodeSchema } from './nodes.js';
import { getProviderProject, listProviderProjects, recordEgressEvent, registerProviderProject } from '../../app/provisioning/provider-projects.js';
import { provisionNode } from '../../app/provisioning/provision-node.js';
import { provisionIp, retireIpFromProvider, verifyIpRdns } from '../../app/provisioning/provision-ip.js';
import { cancelProvisioningIntent, listProvisioningIntents } from '../../app/provisioning/intents.js';
import { retireNodeFromProvider } from '../../app/provisioning/retire-node.js';

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

const probeBody = z
  .strictObject({
    attempts: z
      .array(
        z.strictObject({
          host: z.string().regex(/^[A-Za-z0-9.:-]{1,253}$/, 'a host name or IP address'),
          port: z.number().int().min(1).max(65535),
          address: z.string().regex(/^[0-9A-Fa-f.:]{2,45}$/, 'an IP address').optional(),
          outcome: z.enum(PROBE_OUTCOMES).openapi({ description: 'greeted (an SMTP reply), connected (handshake, no reply), timed_out, refused, unreachable, no_address (did not resolve), error' }),
          // a remote MX's greeting is anyone's text: printable only, so none of it can steer a log or a terminal
          detail: z.string().max(200).regex(/^[^\p{Cc}]*$/u, 'printable characters only').optional().openapi({ description: "the greeting's first line or the socket error" }),
        }),
      )
      .min(1)
      .max(10),
  })
  .openapi('EgressProbe');
const probeResult = z
  .object({
    node_id: z.string(),
    verdict: z.enum(['connected', 'blocked', 'inconclusive']).openapi({ description: 'connected: an MX answered in SMTP; blocked: none did and some connection was refused or never answered; inconclusive: neither (changes nothing)' }),
    port25_probe: z.object({ connected: z.boolean(), at: timestamp }).nullable(),
    project_egress: egress.nullable().openapi({ description: "the node's provider project after the probe; null for a node registered by hand" }),
  })
  .openapi('EgressProbeResult');

const retireNodeBody = z
  .strictObject({ force: z.boolean().optional().openapi({ description: 'delete the server even though the node holds mail or has not reported its queue: whatever it holds is lost (audited)' }) })
  .openapi('NodeRetire');

const tags = ['provisioning'];
const security = [{ bearer: [] }];

const releasedIp = z.object({
  ip_id: z.string().nullable().openapi({ description: 'null: a Floating IP a crashed purchase left without an IP row' }),
  address: z.string(),
  provider_floating_ip_id: z.string(),
  released: z.boolean().openapi({ description: 'false: it was already gone at the provider' }),
});
const retiredNode = z
  .object({
    node_id: z.string(),
    name: z.string(),
    provider_server_id: z.string(),
    server_deleted: z.boolean().openapi({ description: 'false: the server was already gone (a re-run after a crash)' }),
    released_ips: z.array(releasedIp),
    removed_ip_ids: z.array(z.string()).openapi({ description: 'the retired IP rows removed with the node' }),
  })
  .openapi('NodeRetirement');
const intentStatus = z.enum(['pending', 'done', 'cancelled']);
const intentSchema = z
  .object({
    id: z.string(),
    kind: z.enum(['server', 'floating_ip']),
    project_id: z.string(),
    project_name: z.string(),
    node_id: z.string().nullable(),
    node_name: z.string().nullable(),
    idempotency_key: z.string().openapi({ description: 'the label (kcp.intent) the provider resources of this intent carry' }),
    status: intentStatus,
    spec: z.record(z.string(), z.unknown()).openapi({ description: 'what it buys (server type, location; or home location, rDNS zone)' }),
    resource_id: z.string().nullable().openapi({ description: 'the provider id of what it created, once done' }),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .openapi('ProvisioningIntent');
const intentQuery = pageQuery.extend({ status: intentStatus.optional().openapi({ param: { name: 'status', in: 'query' } }) });
const cancelledIntent = z
  .object({
    intent: intentSchema,
    deleted_servers: z.array(z.string()),
    released_floating_ips: z.array(z.object({ id: z.string(), address: z.string() })),
  })
  .openapi('ProvisioningIntentCancel');


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
      method: 'post', path: '/v1/nodes/{node_id}/egress-probe', tags, security, summary: "A node's own port-25 probe (mta-nodes/bin/kcp-egress-probe), with its node token; the verdict is drawn here", middleware: [requireNode({ self: true })] as const,
      request: { params: idParam('node_id'), body: { content: { 'application/json': { schema: probeBody } }, required: true } },
      responses: { 200: json(probeResult, 'Recorded'), ...errorResponses },
    }),
    async (c) => c.json(await recordNodeProbe(c.var.ctx, c.var.node.id, c.var.requestId, c.req.valid('json').attempts), 200),
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
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/nodes/{node_id}/retire-from-provider', tags, security, summary: 'Retire a bought node: its retired IPs released, its server deleted at the provider, then the node removed (409 while an IP is not retired, or while the node holds mail or has not said recently that it holds none)', middleware: [requireAuth('admin')] as const,
      request: { params: idParam('node_id'), body: { content: { 'application/json': { schema: retireNodeBody } }, required: false } },
      responses: { 200: json(retiredNode, 'Retired and removed'), ...providerErrors },
    }),
    async (c) => c.json(await retireNodeFromProvider(c.var.ctx, callerOf(c), c.req.valid('param').node_id, (c.req.valid('json') as { force?: boolean } | undefined) ?? {}), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/provisioning-intents', tags, security, summary: 'List provisioning intents, newest first (never their sealed node tokens)', middleware: [requireAuth('admin')] as const,
      request: { query: intentQuery },
      responses: { 200: json(page(intentSchema, 'ProvisioningIntentPage'), 'Intents'), ...errorResponses },
    }),
    async (c) => c.json(await listProvisioningIntents(c.var.ctx, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/provisioning-intents/{intent_id}/cancel', tags, security, summary: 'Give up a pending provisioning: what the provider holds under its key is deleted, the intent cancelled (409 unless pending)', middleware: [requireAuth('admin')] as const,
      request: { params: idParam('intent_id') },
      responses: { 200: json(cancelledIntent, 'Cancelled'), ...providerErrors },
    }),
    async (c) => c.json(await cancelProvisioningIntent(c.var.ctx, callerOf(c), c.req.valid('param').intent_id), 200),
  );
}
