/**
 * Bad-apple detection for a shared pool. A pool whose bounce or complaint rate crosses the review or
 * pause threshold (with a minimum sample) is examined: a tenant is a bad apple when its share of the
 * pool's bad events is at least `bad_apple_lift` times its share of the pool's volume, it caused a
 * minimum number of them, and its own rate is over the review line. An IP whose own rates crossed the
 * pause line is damaged: receivers judge reputation per IP, so it must rest. Pure.
 */
import type { Settings } from '../settings/settings.js';

export type PlacementSettings = Settings['placement'];

export interface Counts {
  sends: number;
  bounces: number;
  complaints: number;
}

export interface PoolAssessment {
  level: 'ok' | 'review' | 'pause';
  rates: { bounce_pct: number; complaint_pct: number };
  sample_sufficient: boolean;
  reasons: string[];
  bad_apples: BadApple[];
  damaged_ips: DamagedIp[];
}

export interface BadApple {
  tenant_id: string;
  metric: 'bounce' | 'complaint';
  share_of_bad_pct: number;
  share_of_volume_pct: number;
  lift: number;
  own_rate_pct: number;
  events: number;
  reason: string;
}

export interface DamagedIp {
  ip_id: string;
  bounce_pct: number;
  complaint_pct: number;
  reason: string;
}

const pct = (n: number, d: number): number => (d > 0 ? Math.round((n / d) * 100 * 1000) / 1000 : 0);

function level(rate: number, review: number, pause: number): 'ok' | 'review' | 'pause' {
  return rate >= pause ? 'pause' : rate >= review ? 'review' : 'ok';
}

export function assessPool(
  pool: Counts,
  tenants: readonly (Counts & { tenantId: string })[],
  ips: readonly (Counts & { ipId: string })[],
  s: PlacementSettings,
): PoolAssessment {
  const bounce = pct(pool.bounces, pool.sends);
  const complaint = pct(pool.complaints, pool.sends);
  const sufficient = pool.sends >= s.reputation_min_sample;
  const result: PoolAssessment = { level: 'ok', rates: { bounce_pct: bounce, complaint_pct: complaint }, sample_sufficient: sufficient, reasons: [], bad_apples: [], damaged_ips: [] };
  if (!sufficient) return result;

  const levels = { bounce: level(bounce, s.bounce_review_pct, s.bounce_pause_pct), complaint: level(complaint, s.complaint_review_pct, s.complaint_pause_pct) };
  const order = { ok: 0, review: 1, pause: 2 } as const;
  result.level = order[levels.bounce] >= order[levels.complaint] ? levels.bounce : levels.complaint;
  if (levels.bounce !== 'ok') result.reasons.push(`pool bounce rate ${bounce}% is at the ${levels.bounce} line (${levels.bounce === 'pause' ? s.bounce_pause_pct : s.bounce_review_pct}%)`);
  if (levels.complaint !== 'ok') result.reasons.push(`pool complaint rate ${complaint}% is at the ${levels.complaint} line (${levels.complaint === 'pause' ? s.complaint_pause_pct : s.complaint_review_pct}%)`);

  for (const metric of ['bounce', 'complaint'] as const) {
    if (levels[metric] === 'ok') continue;
    const poolBad = metric === 'bounce' ? pool.bounces : pool.complaints;
    const review = metric === 'bounce' ? s.bounce_review_pct : s.complaint_review_pct;
    for (const t of tenants) {
      const bad = metric === 'bounce' ? t.bounces : t.complaints;
      if (bad < s.bad_apple_min_events || t.sends === 0 || poolBad === 0) continue;
      const shareBad = bad / poolBad;
      const shareVol = t.sends / pool.sends;
      const lift = shareBad / shareVol;
      const own = pct(bad, t.sends);
      if (lift >= s.bad_apple_lift && own >= review) {
        result.bad_apples.push({
          tenant_id: t.tenantId,
          metric,
          share_of_bad_pct: Math.round(shareBad * 1000) / 10,
          share_of_volume_pct: Math.round(shareVol * 1000) / 10,
          lift: Math.round(lift * 100) / 100,
          own_rate_pct: own,
          events: bad,
          reason: `caused ${(shareBad * 100).toFixed(1)}% of the pool's ${metric === 'bounce' ? 'bounces' : 'complaints'} with ${(shareVol * 100).toFixed(1)}% of its volume (x${lift.toFixed(1)}; own rate ${own}%)`,
        });
      }
    }
  }
  result.bad_apples.sort((a, b) => b.lift - a.lift || (a.tenant_id < b.tenant_id ? -1 : 1));

  const ipMinSample = Math.max(50, Math.floor(s.reputation_min_sample / 4));
  for (const ip of ips) {
    if (ip.sends < ipMinSample) continue;
    const b = pct(ip.bounces, ip.sends);
    const c = pct(ip.complaints, ip.sends);
    if (b >= s.bounce_pause_pct || c >= s.complaint_pause_pct) {
      result.damaged_ips.push({ ip_id: ip.ipId, bounce_pct: b, complaint_pct: c, reason: `IP bounce rate ${b}% / complaint rate ${c}% crossed the pause line (${s.bounce_pause_pct}% / ${s.complaint_pause_pct}%) over ${ip.sends} sends` });
    }
  }
  result.damaged_ips.sort((a, b) => (a.ip_id < b.ip_id ? -1 : 1));
  return result;
}
