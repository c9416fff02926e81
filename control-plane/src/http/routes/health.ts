/** Liveness and readiness. Readiness answers 503 with the failure when a dependency is down. */
import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { pingDatabase, pingRedis } from '../../app/health.js';
import { json } from '../schemas.js';

const healthSchema = z.object({ status: z.enum(['ok', 'unavailable']), latency_ms: z.number().optional(), error: z.string().optional() }).openapi('Health');

async function timed(check: () => Promise<unknown>, timeoutMs: number): Promise<{ ok: boolean; ms: number; error?: string }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, ms: Math.round((performance.now() - started) * 100) / 100 };
  } catch (e) {
    return { ok: false, ms: Math.round(performance.now() - started), error: (e as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

export function registerHealthRoutes(app: App): void {
  app.openapi(
    createRoute({ method: 'get', path: '/health', tags: ['health'], summary: 'Liveness: the process answers', responses: { 200: json(healthSchema, 'Alive') } }),
    (c) => c.json({ status: 'ok' as const }, 200),
  );

  for (const [name, check] of [
    ['db', pingDatabase],
    ['redis', pingRedis],
  ] as const) {
    app.openapi(
      createRoute({
        method: 'get',
        path: `/health/${name}`,
        tags: ['health'],
        summary: `Readiness of ${name === 'db' ? 'PostgreSQL' : 'Redis'}, with round-trip latency`,
        responses: { 200: json(healthSchema, 'Reachable'), 503: json(healthSchema, 'Unreachable') },
      }),
      async (c) => {
        const r = await timed(() => check(c.var.ctx), 2000);
        if (r.ok) return c.json({ status: 'ok' as const, latency_ms: r.ms }, 200);
        c.var.log.warn({ dependency: name, error: r.error }, 'readiness check failed');
        return c.json({ status: 'unavailable' as const, latency_ms: r.ms, error: r.error ?? 'unknown' }, 503);
      },
    );
  }
}
