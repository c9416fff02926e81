/** Every 15 s, a round trip to PostgreSQL and to Redis: their latency and whether they answer. */
import { sql } from 'kysely';
import type { AppContext } from '../../context.js';

export async function probeDependencies(ctx: AppContext): Promise<void> {
  const probe = async (dependency: 'postgresql' | 'redis', fn: () => Promise<unknown>) => {
    const t0 = performance.now();
    try {
      await fn();
      ctx.metrics.dependencyLatency.observe({ dependency }, (performance.now() - t0) / 1000);
      ctx.metrics.dependencyUp.set({ dependency }, 1);
    } catch {
      ctx.metrics.dependencyUp.set({ dependency }, 0);
    }
  };
  await Promise.all([probe('postgresql', () => sql`SELECT 1`.execute(ctx.db)), probe('redis', () => (ctx.redis.status === 'ready' ? ctx.redis.ping() : Promise.reject(new Error('not connected'))))]);
}

export function startDependencyProbe(ctx: AppContext, everyMs = 15_000): () => void {
  void probeDependencies(ctx);
  const timer = setInterval(() => void probeDependencies(ctx), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
