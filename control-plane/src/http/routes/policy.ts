/** Node policy: nodes pull theirs (node token, ETag/304); operators publish, promote, roll back, diff. */
import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { requireNode } from '../middleware/node-auth.js';
import { errorResponses, idParam, json, page, pageQuery, timestamp, uuid } from '../schemas.js';
import { diffVersions, fleetPolicyStatus, listVersions, publishPolicy, rollbackPolicy, servePolicy, versionText } from '../../app/policy/policy-versions.js';
import { AppError, validationFailed } from '../../domain/shared/errors.js';
import { parseNodeReport, RUNNING_COPIES } from '../../domain/policy/node-policy-state.js';
import { dkimKeysForNode } from '../../app/policy/dkim-keys.js';
import { autopilotView, forceRollout, getRollout, listRollouts, pauseAutopilot, resumeAutopilot, skipRollout } from '../../app/policy/autopilot.js';

const reload = z.object({ ok: z.boolean(), status: z.number().nullable(), error: z.string().nullable(), ms: z.number() }).nullable();
const publishResult = z.object({ node_id: z.string(), node: z.string(), version: z.number(), content_sha256: z.string(), changed: z.boolean(), reload }).openapi('PolicyPublishResult');
const versionSchema = z
  .object({ id: z.string(), node_id: z.string(), version: z.number(), content_sha256: z.string(), model_sha256: z.string(), signature: z.string(), created_at: z.string(), published_at: z.string().nullable(), rolled_back_at: z.string().nullable(), current: z.boolean() })
  .openapi('PolicyVersion');
const nodeStatus = z
  .object({
    node_id: z.string(), node: z.string(), canary: z.boolean(),
    state: z.enum(['no_policy', 'not_pulling', 'up_to_date', 'applying', 'stale']).openapi({ description: 'up_to_date: runs its current version; applying: published less than CP_NODE_STALE_MS ago and not running yet; stale: longer; not_pulling: no pull for CP_NODE_STALE_MS' }),
    fallback: z.boolean().openapi({ description: 'the node runs its last known good copy' }),
    reason: z.string(),
    current_version: z.number().nullable(), served_version: z.number().nullable(), served_at: z.string().nullable(),
    applied_version: z.number().nullable(), applied_sha256: z.string().nullable(), applied_at: z.string().nullable(),
    running_copy: z.enum(RUNNING_COPIES).nullable(), install_error: z.string().nullable(), install_error_at: z.string().nullable(),
    last_pull_at: z.string().nullable(), up_to_date: z.boolean(),
  })
  .openapi('NodePolicyStatus');
const rolloutSchema = z
  .object({
    id: z.string(),
    state: z.enum(['canary', 'soaking', 'promoting', 'done', 'rolled_back', 'skipped', 'superseded']),
    urgent: z.boolean(),
    reason: z.string(),
    canary_nodes: z.array(z.string()),
    nodes: z.array(z.object({ node_id: z.string(), node: z.string(), version: z.number(), canary: z.boolean(), runs_it: z.boolean().openapi({ description: 'the node reports it runs this version now' }) })),
    render_sha256: z.string(),
    health: z.unknown().openapi({ description: 'the canaries\' rates against their baseline, as judged' }),
    created_at: timestamp,
    canary_applied_at: timestamp.nullable(),
    promoted_at: timestamp.nullable(),
    finished_at: timestamp.nullable(),
    outcome: z.string().nullable(),
  })
  .openapi('PolicyRollout');
const autopilotSchema = z
  .object({
    paused: z.boolean(),
    paused_at: timestamp.nullable(),
    paused_reason: z.string().nullable(),
    skipped_render_sha256: z.string().nullable(),
    pending: z.object({ render_sha256: z.string(), since: timestamp, changed_at: timestamp }).nullable().openapi({ description: 'a fleet state waiting to go out (debounce)' }),
    active_rollout: rolloutSchema.nullable(),
  })
  .openapi('PolicyAutopilot');
const nodePath = idParam('node_id');
const lua = { 'text/x-lua': { schema: z.string() } };
const security = [{ bearer: [] }];
const tags = ['policy'];

export function registerPolicyRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/nodes/{node_id}/policy', tags, security, middleware: [requireNode({ self: true })] as const,
      summary: 'The node\'s current policy module (node token; If-None-Match gives 304; X-KCP-Signature is Ed25519 over the body). The node reports what it runs in X-KCP-Running-SHA256, X-KCP-Running-Copy and X-KCP-Install-Error, and the messages its kumod holds in X-KCP-Queued-Messages',
      request: { params: nodePath },
      responses: { 200: { description: 'The module', content: lua }, 304: { description: 'Unchanged' }, ...errorResponses },
    }),
    async (c) => {
      const report = parseNodeReport((name) => c.req.header(name));
      if (report && 'problems' in report) throw validationFailed(report.problems);
      const served = await servePolicy(c.var.ctx, c.var.node, c.req.header('if-none-match'), report);
      c.header('etag', served.etag);
      c.header('x-kcp-policy-version', String(served.version));
      c.header('cache-control', 'no-cache');
      if (served.status === 304) return c.body(null, 304);
      c.header('x-kcp-signature', served.signature);
      c.header('x-kcp-model-sha256', served.modelSha256);
      return c.body(served.text, 200, { 'content-type': 'text/x-lua; charset=utf-8' });
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/nodes/{node_id}/dkim-keys', tags, security, middleware: [requireNode({ self: true })] as const,
      summary: 'DKIM private keys for the node to write as separate 0600 files (node token; audited)',
      request: { params: nodePath },
      responses: {
        200: json(z.object({ keys: z.array(z.object({ domain: z.string(), selector: z.string(), algorithm: z.string(), path: z.string(), private_key_pem: z.string() })) }).openapi('NodeDkimKeys'), 'Keys'),
        ...errorResponses,
      },
    }),
    async (c) => {
      c.header('cache-control', 'no-store');
      return c.json({ keys: await dkimKeysForNode(c.var.ctx, c.var.node) }, 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/policy/publish', tags, security, middleware: [requireAuth('admin')] as const,
      summary: 'Render and publish policy: to the listed nodes (a canary), or to every node; then ask each to reload',
      request: { body: { content: { 'application/json': { schema: z.strictObject({ node_ids: z.array(uuid).max(1000).optional() }).openapi('PolicyPublish') } }, required: true } },
      responses: { 200: json(z.object({ results: z.array(publishResult) }), 'Per node'), ...errorResponses },
    }),
    async (c) => c.json({ results: await publishPolicy(c.var.ctx, callerOf(c), c.req.valid('json').node_ids ?? []) }, 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/policy/promote', tags, security, middleware: [requireAuth('admin')] as const,
      summary: 'Publish to the whole fleet once the canary node reports it runs its current version',
      request: { body: { content: { 'application/json': { schema: z.strictObject({ canary_node_id: uuid }).openapi('PolicyPromote') } }, required: true } },
      responses: { 200: json(z.object({ results: z.array(publishResult) }), 'Per node'), ...errorResponses },
    }),
    async (c) => {
      const ctx = c.var.ctx;
      const canary = (await fleetPolicyStatus(ctx)).find((n) => n.node_id === c.req.valid('json').canary_node_id);
      if (!canary) throw new AppError('NOT_FOUND', 'no such canary node');
      if (!canary.up_to_date) {
        throw new AppError('PRECONDITION_FAILED', `the canary ${canary.node} does not run its current version ${canary.current_version ?? 'none'} (${canary.reason}): promote once it reports it applied it`);
      }
      return c.json({ results: await publishPolicy(ctx, callerOf(c), []) }, 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/nodes/{node_id}/policy/rollback', tags, security, middleware: [requireAuth('admin')] as const,
      summary: 'Withdraw the node\'s current version; the previous one is served again, and the node is asked to reload',
      request: { params: nodePath },
      responses: { 200: json(publishResult, 'Now current'), ...errorResponses },
    }),
    async (c) => c.json(await rollbackPolicy(c.var.ctx, callerOf(c), c.req.valid('param').node_id), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/nodes/{node_id}/policy/versions', tags, security, middleware: [requireAuth('read')] as const, summary: 'The node\'s policy versions, newest first',
      request: { params: nodePath, query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) }) },
      responses: { 200: json(z.object({ items: z.array(versionSchema) }), 'Versions'), ...errorResponses },
    }),
    async (c) => c.json({ items: await listVersions(c.var.ctx, c.req.valid('param').node_id, c.req.valid('query').limit) }, 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/nodes/{node_id}/policy/versions/{version}', tags, security, middleware: [requireAuth('read')] as const, summary: 'One version\'s module text',
      request: { params: nodePath.extend({ version: z.coerce.number().int().min(1).openapi({ param: { name: 'version', in: 'path' } }) }) },
      responses: { 200: { description: 'The module', content: lua }, ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.body(await versionText(c.var.ctx, p.node_id, p.version), 200, { 'content-type': 'text/x-lua; charset=utf-8' });
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/nodes/{node_id}/policy/diff', tags, security, middleware: [requireAuth('read')] as const, summary: 'Unified diff between two versions',
      request: { params: nodePath, query: z.object({ from: z.coerce.number().int().min(1), to: z.coerce.number().int().min(1) }) },
      responses: { 200: { description: 'Unified diff', content: { 'text/plain': { schema: z.string() } } }, ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid('query');
      return c.text(await diffVersions(c.var.ctx, c.req.valid('param').node_id, q.from, q.to), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/policy/status', tags, security, middleware: [requireAuth('read')] as const, summary: 'What every node should run, was served and runs (as it reports), with the time of each and a verdict',
      responses: { 200: json(z.object({ nodes: z.array(nodeStatus), autopilot: autopilotSchema }), 'Fleet'), ...errorResponses },
    }),
    async (c) => {
      const [nodes, autopilot] = await Promise.all([fleetPolicyStatus(c.var.ctx), autopilotView(c.var.ctx)]);
      return c.json({ nodes, autopilot }, 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/policy/autopilot', tags, security, middleware: [requireAuth('read')] as const, summary: 'The policy autopilot: paused or not, the change pending, the rollout in progress',
      responses: { 200: json(autopilotSchema, 'Autopilot'), ...errorResponses },
    }),
    async (c) => c.json(await autopilotView(c.var.ctx), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/policy/autopilot/pause', tags, security, middleware: [requireAuth('admin')] as const, summary: 'Pause the autopilot: nothing new is published or promoted (a failing canary is still rolled back)',
      request: { body: { content: { 'application/json': { schema: z.strictObject({ reason: z.string().min(1).max(2000) }).openapi('AutopilotPause') } }, required: true } },
      responses: { 200: json(autopilotSchema, 'Autopilot'), ...errorResponses },
    }),
    async (c) => c.json(await pauseAutopilot(c.var.ctx, callerOf(c), c.req.valid('json').reason), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/policy/autopilot/resume', tags, security, middleware: [requireAuth('admin')] as const, summary: 'Resume the autopilot',
      responses: { 200: json(autopilotSchema, 'Autopilot'), ...errorResponses },
    }),
    async (c) => c.json(await resumeAutopilot(c.var.ctx, callerOf(c)), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/policy/autopilot/force', tags, security, middleware: [requireAuth('admin')] as const,
      summary: 'Force: the rollout in progress goes to every node now (the rest of its soak skipped); with none, the pending change goes to every node it changes, without a canary',
      responses: { 200: json(autopilotSchema, 'Autopilot'), ...errorResponses },
    }),
    async (c) => c.json(await forceRollout(c.var.ctx, callerOf(c)), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/policy/autopilot/skip', tags, security, middleware: [requireAuth('admin')] as const,
      summary: 'Skip: the rollout in progress stops and its canaries go back; that fleet state (or the pending one) is not rolled out until the state changes again',
      responses: { 200: json(autopilotSchema, 'Autopilot'), ...errorResponses },
    }),
    async (c) => c.json(await skipRollout(c.var.ctx, callerOf(c)), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/policy/rollouts', tags, security, middleware: [requireAuth('read')] as const, summary: 'Autopilot rollouts, newest first',
      request: { query: pageQuery },
      responses: { 200: json(page(rolloutSchema, 'PolicyRolloutPage'), 'Rollouts'), ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid('query');
      return c.json(await listRollouts(c.var.ctx, q.limit, q.cursor), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/policy/rollouts/{rollout_id}', tags, security, middleware: [requireAuth('read')] as const, summary: 'One rollout, with every node and whether it runs its version',
      request: { params: z.object({ rollout_id: z.string().max(20).openapi({ param: { name: 'rollout_id', in: 'path' } }) }) },
      responses: { 200: json(rolloutSchema, 'Rollout'), ...errorResponses },
    }),
    async (c) => c.json(await getRollout(c.var.ctx, c.req.valid('param').rollout_id), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/policy/public-key', tags, security, middleware: [requireAuth('read')] as const, summary: 'The Ed25519 public key nodes pin to verify policy modules',
      responses: { 200: json(z.object({ algorithm: z.literal('ed25519'), public_key_base64: z.string(), public_key_hex: z.string() }), 'Key'), ...errorResponses },
    }),
    (c) => {
      const k = c.var.ctx.policySigner.publicKeyRaw;
      return c.json({ algorithm: 'ed25519' as const, public_key_base64: k.toString('base64'), public_key_hex: k.toString('hex') }, 200);
    },
  );
}
