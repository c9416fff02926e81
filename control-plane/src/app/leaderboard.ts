/**
 * The anonymised leaderboard: pseudonyms and scores only. Never a name, slug, id, domain, IP or address;
 * tenants that opted out, are suspended, or have too little volume for a real score are left out
 * (the database function tenant_leaderboard applies those rules).
 */
import { sql } from 'kysely';
import type { AppContext } from '../context.js';

export interface LeaderboardEntry {
  rank: number;
  pseudonym: string;
  score: number;
}

export async function leaderboard(ctx: AppContext, limit: number): Promise<{ entries: LeaderboardEntry[]; computed_at: string }> {
  // across tenants, so through the one query a tenant's scope may run on every tenant's rows
  // (tenant_leaderboard, migration 0011): pseudonyms and scores, best first
  const { rows } = await sql<{ pseudonym: string; score: string }>`SELECT pseudonym, score FROM tenant_leaderboard(${limit})`.execute(ctx.db);
  // equal scores share a rank (1, 2, 2, 4)
  const entries: LeaderboardEntry[] = [];
  rows.forEach((r, i) => {
    const score = Number(r.score);
    const rank = i > 0 && entries[i - 1]!.score === score ? entries[i - 1]!.rank : i + 1;
    entries.push({ rank, pseudonym: r.pseudonym, score });
  });
  return { entries, computed_at: ctx.now().toISOString() };
}
