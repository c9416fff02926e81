/**
 * Recompute the trust score of some tenants from their window rollups, store the current state, and
 * keep a snapshot whenever the score or the lock changes. Runs inside the caller's transaction, so an
 * ingest batch and the scores it moves commit together.
 */
import type { Db, Tx } from '../../adapters/pg/database.js';
import { readSettings } from '../settings.js';
import { assessTrust, type PreviousTrustState, type TrustAssessment, type TrustSettings } from '../../domain/trust/trust-score.js';
import { toTrustCounts, utcDay } from '../../domain/trust/rollup.js';
import { readWindowCounts, type LaneCounts } from './daily-metrics.js';

export interface Rescored {
  tenantId: string;
  assessment: TrustAssessment;
  lanes: LaneCounts;
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
  const [counts, authRows, prevRows] = await Promise.all([
    readWindowCounts(db, ids, fromDay),
    db.selectFrom('sending_domains').select('tenant_id').distinct().where('tenant_id', 'in', ids).where('verified_at', 'is not', null).execute(),
    db.selectFrom('tenant_trust').selectAll().where('tenant_id', 'in', ids).execute(),
  ]);
  const authenticated = new Set(authRows.map((r) => r.tenant_id));
  const previous = new Map(prevRows.map((r) => [r.tenant_id, r]));

  const results: Rescored[] = [];
  for (const id of ids) {
    const lanes = counts.get(id)!;
    const prev = previous.get(id);
    const prevState: PreviousTrustState | null = prev
      ? { locked: prev.locked, lockKind: prev.lock_kind, lockedAt: prev.locked_at, lockReason: prev.lock_reason, rehabTargetSends: prev.rehab_target_sends }
      : null;
    const assessment = assessTrust({ counts: toTrustCounts([lanes.external, lanes.warming]), authenticated: authenticated.has(id), previous: prevState, now }, settings);
    const changed = !prev || Number(prev.score) !== assessment.score || prev.lock_kind !== assessment.lock_kind || prev.basis !== assessment.basis;
    results.push({ tenantId: id, assessment, lanes, changed });
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
