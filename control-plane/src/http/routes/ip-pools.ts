import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { errorResponses, idParam, json, page, pageQuery, slug, timestamp } from '../schemas.js';
import { createPool, deletePool, getPool, listPools, putPoolMember, removePoolMember, updatePool } from '../../app/ip-pools.js';

const tier = z.enum(['premium', 'standard', 'rehabilitation', 'quarantine']);
const poolSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    tier,
    description: z.string(),
    members: z.array(z.object({ ip_id: z.string(), address: z.string(), node_id: z.string(), state: z.string(), weight: z.number().int(), added_at: timestamp })),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .openapi('IpPool');
const createBody = z.strictObject({ name: slug, tier, description: z.string().max(500).optional() }).openapi('IpPoolCreate');
const patchBody = z.strictObject({ name: slug.optional(), description: z.string().max(500).optional() }).openapi('IpPoolUpdate');
const memberBody = z.strictObject({ weight: z.number().int().min(1).max(10000) }).openapi('IpPoolMember');
const poolPath = idParam('pool_id');
const memberPath = poolPath.extend(idParam('ip_id').shape);
const tags = ['ip pools'];
const security = [{ bearer: [] }];

export function registerPoolRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/pools', tags, security, summary: 'Create an IP pool of one tier', middleware: [requireAuth('write')] as const,
      request: { body: { content: { 'application/json': { schema: createBody } }, required: true } },
      responses: { 201: json(poolSchema, 'Created'), ...errorResponses },
    }),
    async (c) => c.json(await createPool(c.var.ctx, callerOf(c), c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/pools', tags, security, summary: 'List pools with their members', middleware: [requireAuth('read')] as const,
      request: { query: pageQuery.extend({ tier: tier.optional() }) },
      responses: { 200: json(page(poolSchema, 'IpPoolPage'), 'A page of pools'), ...errorResponses },
    }),
    async (c) => c.json(await listPools(c.var.ctx, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/pools/{pool_id}', tags, security, summary: 'Get a pool', middleware: [requireAuth('read')] as const,
      request: { params: poolPath },
      responses: { 200: json(poolSchema, 'The pool'), ...errorResponses },
    }),
    async (c) => c.json(await getPool(c.var.ctx, c.req.valid('param').pool_id), 200),
  );
  app.openapi(
    createRoute({
      method: 'patch', path: '/v1/pools/{pool_id}', tags, security, summary: 'Rename or describe a pool (the tier is fixed)', middleware: [requireAuth('write')] as const,
      request: { params: poolPath, body: { content: { 'application/json': { schema: patchBody } }, required: true } },
      responses: { 200: json(poolSchema, 'Updated'), ...errorResponses },
    }),
    async (c) => c.json(await updatePool(c.var.ctx, callerOf(c), c.req.valid('param').pool_id, c.req.valid('json')), 200),
  );
  app.openapi(
    createRoute({
      method: 'delete', path: '/v1/pools/{pool_id}', tags, security, summary: 'Delete a pool no tenant is placed in', middleware: [requireAuth('admin')] as const,
      request: { params: poolPath },
      responses: { 204: { description: 'Deleted' }, ...errorResponses },
    }),
    async (c) => {
      await deletePool(c.var.ctx, callerOf(c), c.req.valid('param').pool_id);
      return c.body(null, 204);
    },
  );
  app.openapi(
    createRoute({
      method: 'put', path: '/v1/pools/{pool_id}/members/{ip_id}', tags, security, summary: 'Add an IP to the pool, or set its weight', middleware: [requireAuth('write')] as const,
      request: { params: memberPath, body: { content: { 'application/json': { schema: memberBody } }, required: true } },
      responses: { 200: json(poolSchema, 'The pool with its members'), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.json(await putPoolMember(c.var.ctx, callerOf(c), p.pool_id, p.ip_id, c.req.valid('json').weight), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'delete', path: '/v1/pools/{pool_id}/members/{ip_id}', tags, security, summary: 'Remove an IP from the pool', middleware: [requireAuth('write')] as const,
      request: { params: memberPath },
      responses: { 200: json(poolSchema, 'The pool with its members'), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.json(await removePoolMember(c.var.ctx, callerOf(c), p.pool_id, p.ip_id), 200);
    },
  );
}
