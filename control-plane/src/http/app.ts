/**
 * The HTTP application: middleware, error mapping, routes, and the OpenAPI document built from the
 * same schemas that validate requests. `newApp(ctx)` is used identically by the server and the tests.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { requestId } from 'hono/request-id';
import { HTTPException } from 'hono/http-exception';
import type { AppContext } from '../context.js';
import { appErrorFromPg } from '../adapters/pg/database.js';
import { appErrorFromRedis } from '../adapters/redis/redis.js';
import { AppError } from '../domain/shared/errors.js';
import type { HonoEnv } from './env.js';
import { problem, STATUS_BY_CODE } from './problem.js';
import { validationHook } from './validation.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerTenantRoutes } from './routes/tenants.js';
import { registerDomainRoutes } from './routes/sending-domains.js';
import { registerCredentialRoutes } from './routes/smtp-credentials.js';
import { registerMailboxRoutes } from './routes/mailboxes.js';
import { registerNodeRoutes } from './routes/nodes.js';
import { registerProvisioningRoutes } from './routes/provider-projects.js';
import { registerIpRoutes } from './routes/ip-addresses.js';
import { registerPoolRoutes } from './routes/ip-pools.js';
import { registerSettingsRoutes } from './routes/settings.js';
import { registerAuditRoutes } from './routes/audit-log.js';
import { registerOperatorRoutes } from './routes/operators.js';
import { registerEventRoutes } from './routes/events.js';
import { registerTrustRoutes } from './routes/trust.js';
import { registerSuppressionRoutes } from './routes/suppressions.js';
import { registerPlacementRoutes } from './routes/placements.js';
import { registerPolicyRoutes } from './routes/policy.js';
import { registerSubmissionNetworkRoutes } from './routes/submission-networks.js';
import { registerWarmingRoutes } from './routes/warming.js';
import { registerMetricsRoute } from './routes/metrics.js';

export type App = OpenAPIHono<HonoEnv>;

export function newApp(ctx: AppContext): App {
  const app = new OpenAPIHono<HonoEnv>({
    // request validation failures become one problem document listing every bad field
    defaultHook: validationHook({ storableText: true }),
  });

  app.use('*', requestId({ headerName: 'x-request-id', limitLength: 100 }));
  app.use('*', async (c, next) => {
    c.set('ctx', ctx);
    const log = ctx.log.child({ req_id: c.var.requestId });
    c.set('log', log);
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    // the route pattern, not the path: ids in paths would make a series per tenant
    const route = c.req.routePath || 'unmatched';
    ctx.metrics.httpRequests.inc({ method: c.req.method, route, status: String(c.res.status) });
    ctx.metrics.httpDuration.observe({ method: c.req.method, route }, seconds);
    // path only: query strings may carry cursors, never secrets, but keep lines short
    if (route !== '/metrics') c.var.log.info({ method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(seconds * 10000) / 10 }, 'request');
  });
  app.use(
    '*',
    bodyLimit({
      maxSize: ctx.config.http.bodyLimitBytes,
      onError: () => {
        throw new AppError('PAYLOAD_TOO_LARGE', `request bodies are limited to ${ctx.config.http.bodyLimitBytes} bytes`);
      },
    }),
  );

  app.onError((thrown, c) => {
    const requestId = c.var.requestId ?? null;
    const log = c.var.log ?? ctx.log;
    // a database or Redis failure that reached here untranslated is still an outage or a bad value,
    // not a bug: 503 or 400, never 500
    const e = thrown instanceof AppError ? thrown : (appErrorFromRedis(thrown) ?? appErrorFromPg(thrown) ?? thrown);
    if (e instanceof AppError) {
      const status = STATUS_BY_CODE[e.code];
      // an outage is news for operators, not a stack trace; the cause's message names no secret
      if (e.code === 'DEPENDENCY_UNAVAILABLE') log.warn({ code: e.code, cause: (e.cause as Error | undefined)?.message }, e.detail);
      else if (status >= 500) log.error({ err: e, code: e.code }, e.detail);
      return c.json(problem(e.code, e.detail, c.req.path, requestId, { errors: e.fields, context: e.context }), status as 400, {
        'content-type': 'application/problem+json',
      });
    }
    if (e instanceof HTTPException && e.status < 500) {
      // hono's own 4xx (for example a body that is not JSON)
      const code = e.status === 413 ? 'PAYLOAD_TOO_LARGE' : 'VALIDATION_FAILED';
      return c.json(problem(code, e.message || 'malformed request', c.req.path, requestId), e.status as 400, {
        'content-type': 'application/problem+json',
      });
    }
    log.error({ err: e }, 'unhandled error');
    return c.json(problem('INTERNAL', 'an internal error occurred; the request id identifies it in the logs', c.req.path, requestId), 500, {
      'content-type': 'application/problem+json',
    });
  });

  app.notFound((c) =>
    c.json(problem('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`, c.req.path, c.var.requestId ?? null), 404, {
      'content-type': 'application/problem+json',
    }),
  );

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'Operator token (kcp_…) with read, write or admin scope, or a tenant read-only token (kct_…).',
  });

  registerHealthRoutes(app);
  registerMetricsRoute(app);
  registerOperatorRoutes(app);
  registerTenantRoutes(app);
  registerDomainRoutes(app);
  registerCredentialRoutes(app);
  registerSubmissionNetworkRoutes(app);
  registerMailboxRoutes(app);
  registerProvisioningRoutes(app);
  registerNodeRoutes(app);
  registerIpRoutes(app);
  registerPoolRoutes(app);
  registerSettingsRoutes(app);
  registerAuditRoutes(app);
  registerEventRoutes(app);
  registerTrustRoutes(app);
  registerSuppressionRoutes(app);
  registerPlacementRoutes(app);
  registerPolicyRoutes(app);
  registerWarmingRoutes(app);

  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Kumo control plane admin API',
      version: '0.1.0',
      description: 'Operators manage tenants, domains, credentials, nodes, IPs, pools and settings. Errors are application/problem+json with a stable `code`.',
    },
  });
  return app;
}
