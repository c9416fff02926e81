import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { errorResponses, idParam, ipAddress, json, page, pageQuery, slug, timestamp } from '../schemas.js';
import { createNode, deleteNode, getNode, listNodes, rotateNodeToken, updateNode } from '../../app/nodes.js';

const label = z.string().regex(/^[a-z0-9-]{1,40}$/, 'lower-case letters, digits and "-", at most 40');
const cost = z.number().min(0).max(100000).multipleOf(0.01).nullable();
const relayHost = z
  .string()
  .regex(/^[A-Za-z0-9.:-]{1,253}$/, 'a host name or IP address')
  .nullable()
  .openapi({ description: "Where the submission gateway relays this node's mail (kumod's SMTP listener). null: the public address." });
const relayPort = z.number().int().min(1).max(65535).openapi({ description: "Port of the node's relay listener, relay_listen in its node_settings.lua (default 2525, the bootstrap's; 25 is its inbound listener, which relays nothing)." });
const adminUrl = z.url({ protocol: /^https?$/ }).max(500).nullable();

export const nodeSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    provider: z.string(),
    region: z.string(),
    public_address: z.string(),
    admin_url: z.string().nullable(),
    relay_host: z.string().nullable(),
    relay_port: z.number(),
    token_prefix: z.string(),
    monthly_cost_usd: z.number().nullable().openapi({ description: 'null: the settings baseline applies' }),
    last_seen_at: timestamp.nullable(),
    last_pull_at: timestamp.nullable().openapi({ description: "the node's last policy pull" }),
    canary: z.boolean().openapi({ description: 'autopilot rollouts go to canary nodes first' }),
    served_policy_version_id: z.string().nullable().openapi({ description: 'the version last sent to the node' }),
    served_at: timestamp.nullable(),
    applied_policy_version_id: z.string().nullable().openapi({ description: 'the version the node reports it runs' }),
    applied_at: timestamp.nullable(),
    provider_project_id: z.string().nullable().openapi({ description: 'bought through this provider project (POST /v1/nodes/provision); null: registered by hand' }),
    provider_server_id: z.string().nullable(),
    port25_probe: z
      .object({ connected: z.boolean(), at: timestamp, detail: z.string().nullable().openapi({ description: 'what the last probe tried and saw, e.g. "greeted mx.example:25 (192.0.2.7)"; also set by an inconclusive probe' }) })
      .nullable()
      .openapi({ description: "the node's last conclusive port-25 probe; external mail on provisioned nodes needs a successful one" }),
    queued_messages: z
      .object({ count: z.number(), at: timestamp })
      .nullable()
      .openapi({ description: "the messages the node's kumod held at its last pull that said (its message_count gauge); a bought node's server is deleted only once it is 0" }),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .openapi('Node');
const withToken = nodeSchema.extend({ token: z.string().openapi({ description: 'Shown only in this response.' }) }).openapi('NodeWithToken');
const canary = z.boolean().openapi({ description: 'autopilot rollouts go to canary nodes first (default false)' });
const createBody = z
  .strictObject({ name: slug, provider: label.optional(), region: label, public_address: ipAddress, admin_url: adminUrl.optional(), relay_host: relayHost.optional(), relay_port: relayPort.optional(), monthly_cost_usd: cost.optional(), canary: canary.optional() })
  .openapi('NodeCreate');
const patchBody = z
  .strictObject({ provider: label.optional(), region: label.optional(), public_address: ipAddress.optional(), admin_url: adminUrl.optional(), relay_host: relayHost.optional(), relay_port: relayPort.optional(), monthly_cost_usd: cost.optional(), canary: canary.optional() })
  .openapi('NodeUpdate');
const nodePath = idParam('node_id');
const tags = ['nodes'];
const security = [{ bearer: [] }];

export function registerNodeRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/nodes', tags, security, summary: 'Register a KumoMTA node (its token is returned once)', middleware: [requireAuth('admin')] as const,
      request: { body: { content: { 'application/json': { schema: createBody } }, required: true } },
      responses: { 201: json(withToken, 'Created'), ...errorResponses },
    }),
    async (c) => {
      c.header('cache-control', 'no-store');
      return c.json(await createNode(c.var.ctx, callerOf(c), c.req.valid('json')), 201);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/nodes', tags, security, summary: 'List nodes', middleware: [requireAuth('read')] as const,
      request: { query: pageQuery },
      responses: { 200: json(page(nodeSchema, 'NodePage'), 'A page of nodes'), ...errorResponses },
    }),
    async (c) => c.json(await listNodes(c.var.ctx, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/nodes/{node_id}', tags, security, summary: 'Get a node', middleware: [requireAuth('read')] as const,
      request: { params: nodePath },
      responses: { 200: json(nodeSchema, 'The node'), ...errorResponses },
    }),
    async (c) => c.json(await getNode(c.var.ctx, c.req.valid('param').node_id), 200),
  );
  app.openapi(
    createRoute({
      method: 'patch', path: '/v1/nodes/{node_id}', tags, security, summary: 'Update a node', middleware: [requireAuth('write')] as const,
      request: { params: nodePath, body: { content: { 'application/json': { schema: patchBody } }, required: true } },
      responses: { 200: json(nodeSchema, 'Updated'), ...errorResponses },
    }),
    async (c) => c.json(await updateNode(c.var.ctx, callerOf(c), c.req.valid('param').node_id, c.req.valid('json')), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/nodes/{node_id}/token/rotate', tags, security, summary: 'Issue a new node token; the old one stops working', middleware: [requireAuth('admin')] as const,
      request: { params: nodePath },
      responses: { 200: json(withToken, 'Rotated'), ...errorResponses },
    }),
    async (c) => {
      c.header('cache-control', 'no-store');
      return c.json(await rotateNodeToken(c.var.ctx, callerOf(c), c.req.valid('param').node_id), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'delete', path: '/v1/nodes/{node_id}', tags, security, summary: 'Remove a node registered by hand (it must have no IPs left); a bought node: POST /v1/nodes/{node_id}/retire-from-provider', middleware: [requireAuth('admin')] as const,
      request: { params: nodePath },
      responses: { 204: { description: 'Deleted' }, ...errorResponses },
    }),
    async (c) => {
      await deleteNode(c.var.ctx, callerOf(c), c.req.valid('param').node_id);
      return c.body(null, 204);
    },
  );
}
