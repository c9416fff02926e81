/**
 * Recompute the trust score of some tenants from their window rollups, store the current state, and
 * keep a snapshot whenever the score or the lock changes. Runs inside the caller's transaction, so an
 * ingest batch and the scores it moves commit together.
 */
import type { Db, Tx } from '../../adapters/pg/database.js';
import { readSettings } from '../settings.js';
import { assessTrust, type PreviousTrustState, type TrustAssessment, type TrustSettings } from '../../domain/trust/trust-score.js';
import { ENGAGEMENT_KEYS, TRUST_COMPONENTS, type EngagementKey, type TrustComponent, type TrustCounts } from '../../domain/trust/components.js';
import { toTrustCounts, utcDay } from '../../domain/trust/rollup.js';
import { networkWarmingCounts, readWindowCounts, type LaneCounts } from './daily-metrics.js';

/** Below this many warming deliveries across the network, its engagement says too little to plan with. */
const MIN_NETWORK_WARMING_SAMPLE = 100;

/** How warming mail engages, per engagement term, from the network's warming lane; nothing without a sample. */
export function warmingEngagementPct(network: TrustCounts): Partial<Record<EngagementKey, number>> {
  if (network.delivered < MIN_NETWORK_WARMING_SAMPLE) return {};
  const out: Partial<Record<EngagementKey, number>> = {};
  for (const c of TRUST_COMPONENTS as readonly TrustComponent[]) {
    if (c.prior && network[c.denominator] > 0) out[c.key as EngagementKey] = (100 * network[c.count]) / network[c.denominator];
  }
  return out;
}

export interface Rescored {
  tenantId: string;
  assessment: TrustAssessment;
  lanes: LaneCounts;
  /** the engagement terms the tenant reports (the others took their prior) */
  reported: EngagementKey[];
  changed: boolean;
}

export function windowStartDay(now: Date, windowDays: number): string {
  // the window is whole UTC days: today and the windowDays - 1 before it
  return utcDay(new Date(now.getTime() - (windowDays - 1) * 86_400_000));
}

/** Assess without writing anything (what the read API shows). */
export async function assessTenants(db: Db | Tx, tenantIds: string[], now: Date, trustSettings?: TrustSettings): Promise<Rescored[]> {
  const ids = [...new Set(tenantIds)].sort();
  if (ids.length === 0) return [];
  const settings = trustSettings ?? (await readSettings(db)).trust;
  const fromDay = windowStartDay(now, settings.window_days);
  const [counts, authRows, prevRows, tenantRows, network] = await Promise.all([
    readWindowCounts(db, ids, fromDay),
    db.selectFrom('sending_domains').select('tenant_id').distinct().where('tenant_id', 'in', ids).where('verified_at', 'is not', null).execute(),
    db.selectFrom('tenant_trust').selectAll().where('tenant_id', 'in', ids).execute(),
    db.selectFrom('tenants').select(['id', 'engagement_reported']).where('id', 'in', ids).execute(),
    networkWarmingCounts(db, fromDay),
  ]);
  const expected = warmingEngagementPct(toTrustCounts([network]));
  const authenticated = new Set(authRows.map((r) => r.tenant_id));
  const previous = new Map(prevRows.map((r) => [r.tenant_id, r]));
  const reported = new Map(tenantRows.map((r) => [r.id, new Set(r.engagement_reported.filter((k): k is EngagementKey => (ENGAGEMENT_KEYS as string[]).includes(k)))]));

  const results: Rescored[] = [];
  for (const id of ids) {
    const lanes = counts.get(id)!;
    const prev = previous.get(id);
    const prevState: PreviousTrustState | null = prev
      ? { locked: prev.locked, lockKind: prev.lock_kind, lockedAt: prev.locked_at, lockReason: prev.lock_reason, rehabTargetSends: prev.rehab_target_sends }
      : null;
    const assessment = assessTrust(
      {
        lanes: { external: toTrustCounts([lanes.external]), warming: toTrustCounts([lanes.warming]) },
        reported: reported.get(id) ?? new Set(),
        warmingEngagementPct: expected,
        authenticated: authenticated.has(id),
        previous: prevState,
        now,
      },
      settings,
    );
    const changed = !prev || Number(prev.score) !== assessment.score || prev.lock_kind !== assessment.lock_kind || prev.basis !== assessment.basis;
    results.push({ tenantId: id, assessment, lanes, reported: [...(reported.get(id) ?? [])].sort(), changed });
  }
  return results;
}

export async function rescoreTenants(db: Db | Tx, tenantIds: string[], now: Date): Promise<Rescored[]> {
  if (tenantIds.length === 0) return [];
  const settings = (await readSettings(db)).trust;
  const results = await assessTenants(db, tenantIds, now, settings);
  const windowDays = settings.window_days;

  const rows = results.map(({ tenantId, assessment: a }) => ({
    tenant_id: tenantId,
    score: a.score,
    basis: a.basis,
    locked: a.locked,
    lock_kind: a.lock_kind,
    locked_at: a.locked_at,
    lock_reason: a.lock_reason,
    rehab_target_sends: a.rehabilitation?.target_at_lock ?? null,
    rehab_remaining_sends: a.rehabilitation?.clean_sends_needed ?? null,
    computed_at: now,
  }));
  await db
    .insertInto('tenant_trust')
    .values(rows)
    .onConflict((oc) =>
      oc.column('tenant_id').doUpdateSet((eb) => ({
        score: eb.ref('excluded.score'),
        basis: eb.ref('excluded.basis'),
        locked: eb.ref('excluded.locked'),
        lock_kind: eb.ref('excluded.lock_kind'),
        locked_at: eb.ref('excluded.locked_at'),
        lock_reason: eb.ref('excluded.lock_reason'),
        rehab_target_sends: eb.ref('excluded.rehab_target_sends'),
        rehab_remaining_sends: eb.ref('excluded.rehab_remaining_sends'),
        computed_at: eb.ref('excluded.computed_at'),
      })),
    )
    .execute();

  const snapshots = results.filter((r) => r.changed);
  if (snapshots.length > 0) {
    await db
      .insertInto('trust_score_snapshots')
      .values(
        snapshots.map(({ tenantId, assessment: a, lanes }) => ({
          tenant_id: tenantId,
          computed_at: now,
          score: a.score,
          components: JSON.stringify(snapshotComponents(a, lanes)),
          locked: a.locked,
          lock_reason: a.locked ? a.lock_reason : a.lock_changed ? 'unlocked' : null,
          window_days: windowDays,
        })),
      )
      .execute();
  }
  return results;
}

/** What a snapshot keeps: every term, rate, sample size and threshold, so history explains itself. */
export function snapshotComponents(a: TrustAssessment, lanes: LaneCounts): Record<string, unknown> {
  return {
    contributions: a.contributions,
    rates: a.rates,
    counts: a.counts,
    sample: a.sample,
    basis: a.basis,
    authenticated: a.authenticated,
    thresholds: a.thresholds,
    lock_changed: a.lock_changed,
    rehabilitation: a.rehabilitation,
    lanes,
  };
}

/** Every tenant: the window slides daily, so scores move even without new events. */
export async function rescoreAllTenants(db: Db | Tx, now: Date, batchSize = 500): Promise<number> {
  let after = '00000000-0000-0000-0000-000000000000';
  let total = 0;
  for (;;) {
    const ids = (await db.selectFrom('tenants').select('id').where('id', '>', after).orderBy('id').limit(batchSize).execute()).map((r) => r.id);
    if (ids.length === 0) return total;
    await rescoreTenants(db, ids, now);
    total += ids.length;
    after = ids[ids.length - 1]!;
  }
}
