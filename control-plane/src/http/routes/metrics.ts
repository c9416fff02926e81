/** GET /metrics: Prometheus text format. Open unless CP_METRICS_TOKEN is set (then a bearer token). */
import { timingSafeEqual } from 'node:crypto';
import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { errorResponses } from '../schemas.js';
import { AppError } from '../../domain/shared/errors.js';
import { refreshFleetGauges } from '../../app/observability/fleet-gauges.js';

export function registerMetricsRoute(app: App): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/metrics', tags: ['observability'], summary: 'Prometheus metrics (bearer token only when CP_METRICS_TOKEN is set)',
      responses: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: z.string() } } }, ...errorResponses },
    }),
    async (c) => {
      const ctx = c.var.ctx;
      const want = ctx.config.metricsToken;
      if (want) {
        const got = Buffer.from((c.req.header('authorization') ?? '').replace(/^Bearer\s+/i, ''));
        const w = Buffer.from(want);
        if (got.length !== w.length || !timingSafeEqual(got, w)) throw new AppError('UNAUTHENTICATED', 'a bearer token is required for /metrics');
      }
      await refreshFleetGauges(ctx);
      return c.text(await ctx.metrics.text(), 200, { 'content-type': ctx.metrics.contentType });
    },
  );
}
