/**
 * The anonymised leaderboard: pseudonyms and scores only. Never a name, slug, id, domain, IP or address;
 * tenants that opted out, are suspended, or have too little volume for a real score are left out.
 */
import type { AppContext } from '../context.js';

export interface LeaderboardEntry {
  rank: number;
  pseudonym: string;
  score: number;
}

export async function leaderboard(ctx: AppContext, limit: number): Promise<{ entries: LeaderboardEntry[]; computed_at: string }> {
  const rows = await ctx.db
    .selectFrom('tenant_trust')
    .innerJoin('tenants', 'tenants.id', 'tenant_trust.tenant_id')
    .select(['tenants.pseudonym', 'tenant_trust.score'])
    .where('tenants.leaderboard_opt_out', '=', false)
    .where('tenants.status', '=', 'active')
    .where('tenant_trust.basis', '=', 'wilson_interval')
    .orderBy('tenant_trust.score', 'desc')
    .orderBy('tenants.pseudonym')
    .limit(limit)
    .execute();
  // equal scores share a rank (1, 2, 2, 4)
  const entries: LeaderboardEntry[] = [];
  rows.forEach((r, i) => {
    const score = Number(r.score);
    const rank = i > 0 && entries[i - 1]!.score === score ? entries[i - 1]!.rank : i + 1;
    entries.push({ rank, pseudonym: r.pseudonym, score });
  });
  return { entries, computed_at: ctx.now().toISOString() };
}
