/** Round trips to the dependencies, for the readiness endpoints. */
import { sql } from 'kysely';
import type { AppContext } from '../context.js';

export const pingDatabase = async (ctx: AppContext): Promise<void> => {
  await sql`SELECT 1`.execute(ctx.db);
};

export const pingRedis = async (ctx: AppContext): Promise<void> => {
  await ctx.redis.ping();
};
