import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { errorResponses, futureTimestamp, idParam, json, page, pageQuery, timestamp } from '../schemas.js';
import {
  createOperator, createOperatorToken, createTenantToken, listOperators, listTokens, revokeToken, setOperatorDisabled,
} from '../../app/api-tokens.js';
import { AppError } from '../../domain/shared/errors.js';

const operatorSchema = z
  .object({ id: z.string(), email: z.string(), name: z.string(), created_at: timestamp, disabled_at: timestamp.nullable() })
  .openapi('Operator');
const scope = z.enum(['read', 'write', 'admin']);
const tokenSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    prefix: z.string(),
    owner: z.union([
      z.object({ type: z.literal('operator'), operator_id: z.string() }),
      z.object({ type: z.literal('tenant'), tenant_id: z.string() }),
    ]),
    scopes: z.array(scope),
    created_at: timestamp,
    expires_at: timestamp.nullable(),
    last_used_at: timestamp.nullable(),
    revoked_at: timestamp.nullable(),
  })
  .openapi('ApiToken');
const createdToken = tokenSchema.extend({ token: z.string().openapi({ description: 'Shown only in this response.' }) }).openapi('ApiTokenCreated');
const whoAmI = z
  .object({ kind: z.enum(['operator', 'tenant']), operator_id: z.string().optional(), tenant_id: z.string().optional(), token_id: z.string(), scopes: z.array(scope) })
  .openapi('WhoAmI');

const name = z.string().trim().min(1).max(200);
const operatorBody = z.strictObject({ email: z.email().max(320), name }).openapi('OperatorCreate');
const operatorPatch = z.strictObject({ disabled: z.boolean() }).openapi('OperatorUpdate');
const tokenBody = z.strictObject({ name, scopes: z.array(scope).min(1), expires_at: futureTimestamp.optional() }).openapi('ApiTokenCreate');
const tenantTokenBody = z.strictObject({ name, expires_at: futureTimestamp.optional() }).openapi('TenantTokenCreate');
const security = [{ bearer: [] }];

function assertFuture(expiresAt: string | undefined, now: Date): void {
  if (expiresAt !== undefined && new Date(expiresAt) <= now) {
    throw new AppError('VALIDATION_FAILED', 'expires_at must be in the future', { fields: [{ path: 'json.expires_at', message: 'must be in the future' }] });
  }
}

export function registerOperatorRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/me', tags: ['auth'], security, summary: 'Who this token belongs to', middleware: [requireAuth('read', { anyTenant: true })] as const,
      responses: { 200: json(whoAmI, 'The caller'), ...errorResponses },
    }),
    (c) => {
      const a = c.var.actor;
      return c.json(
        a.kind === 'operator'
          ? { kind: 'operator' as const, operator_id: a.operatorId, token_id: a.tokenId, scopes: a.scopes }
          : { kind: 'tenant' as const, tenant_id: a.tenantId, token_id: a.tokenId, scopes: a.scopes },
        200,
      );
    },
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/operators', tags: ['auth'], security, summary: 'Add an operator', middleware: [requireAuth('admin')] as const,
      request: { body: { content: { 'application/json': { schema: operatorBody } }, required: true } },
      responses: { 201: json(operatorSchema, 'Created'), ...errorResponses },
    }),
    async (c) => c.json(await createOperator(c.var.ctx, callerOf(c), c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/operators', tags: ['auth'], security, summary: 'List operators', middleware: [requireAuth('admin')] as const,
      request: { query: pageQuery },
      responses: { 200: json(page(operatorSchema, 'OperatorPage'), 'A page of operators'), ...errorResponses },
    }),
    async (c) => c.json(await listOperators(c.var.ctx, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'patch', path: '/v1/operators/{operator_id}', tags: ['auth'], security, summary: 'Disable or re-enable an operator (its tokens stop working while disabled)',
      middleware: [requireAuth('admin')] as const,
      request: { params: idParam('operator_id'), body: { content: { 'application/json': { schema: operatorPatch } }, required: true } },
      responses: { 200: json(operatorSchema, 'Updated'), ...errorResponses },
    }),
    async (c) => c.json(await setOperatorDisabled(c.var.ctx, callerOf(c), c.req.valid('param').operator_id, c.req.valid('json').disabled), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/operators/{operator_id}/tokens', tags: ['auth'], security, summary: 'Issue an operator API token (returned once)',
      middleware: [requireAuth('admin')] as const,
      request: { params: idParam('operator_id'), body: { content: { 'application/json': { schema: tokenBody } }, required: true } },
      responses: { 201: json(createdToken, 'Created'), ...errorResponses },
    }),
    async (c) => {
      const body = c.req.valid('json');
      assertFuture(body.expires_at, c.var.ctx.now());
      c.header('cache-control', 'no-store');
      return c.json(await createOperatorToken(c.var.ctx, callerOf(c), c.req.valid('param').operator_id, body), 201);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/operators/{operator_id}/tokens', tags: ['auth'], security, summary: 'List an operator\'s tokens', middleware: [requireAuth('admin')] as const,
      request: { params: idParam('operator_id'), query: pageQuery },
      responses: { 200: json(page(tokenSchema, 'ApiTokenPage'), 'A page of tokens'), ...errorResponses },
    }),
    async (c) => c.json(await listTokens(c.var.ctx, { operatorId: c.req.valid('param').operator_id }, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/tenants/{tenant_id}/tokens', tags: ['auth'], security, summary: 'Issue a read-only token bound to one tenant (returned once)',
      middleware: [requireAuth('write')] as const,
      request: { params: idParam('tenant_id'), body: { content: { 'application/json': { schema: tenantTokenBody } }, required: true } },
      responses: { 201: json(createdToken, 'Created'), ...errorResponses },
    }),
    async (c) => {
      const body = c.req.valid('json');
      assertFuture(body.expires_at, c.var.ctx.now());
      c.header('cache-control', 'no-store');
      return c.json(await createTenantToken(c.var.ctx, callerOf(c), c.req.valid('param').tenant_id, body), 201);
    },
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/tenants/{tenant_id}/tokens', tags: ['auth'], security, summary: 'List a tenant\'s tokens', middleware: [requireAuth('write')] as const,
      request: { params: idParam('tenant_id'), query: pageQuery },
      responses: { 200: json(page(tokenSchema, 'TenantTokenPage'), 'A page of tokens'), ...errorResponses },
    }),
    async (c) => c.json(await listTokens(c.var.ctx, { tenantId: c.req.valid('param').tenant_id }, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'delete', path: '/v1/tokens/{token_id}', tags: ['auth'], security, summary: 'Revoke a token (operator or tenant)', middleware: [requireAuth('admin')] as const,
      request: { params: idParam('token_id') },
      responses: { 200: json(tokenSchema, 'Revoked'), ...errorResponses },
    }),
    async (c) => c.json(await revokeToken(c.var.ctx, callerOf(c), c.req.valid('param').token_id), 200),
  );
}
