/**
 * Suppression lists: per tenant, and global (tenant_id NULL). Automatic entries come from hard
 * bounces and complaints at ingest; operators add, remove, import and export them here.
 */
import { sql } from 'kysely';
import type { AppContext } from '../context.js';
import { inTransaction, type Db } from '../adapters/pg/database.js';
import type { SuppressionReason } from '../adapters/pg/tables.js';
import { AppError, notFound } from '../domain/shared/errors.js';
import { parseCsv, toCsv } from '../domain/suppression/csv.js';
import { normalisePattern, patternsFor } from '../domain/suppression/pattern.js';
import type { Caller } from './actor.js';
import { writeAudit } from './audit.js';
import { cursorId, pageById, type Page } from './pagination.js';
import { iso, isoOrNull } from './views.js';

export interface SuppressionView {
  id: string;
  scope: 'tenant' | 'global';
  tenant_id: string | null;
  pattern: string;
  reason: SuppressionReason;
  note: string;
  created_at: string;
  expires_at: string | null;
}

type Row = { id: string; tenant_id: string | null; pattern: string; reason: SuppressionReason; note: string; created_at: Date; expires_at: Date | null };

const view = (r: Row): SuppressionView => ({
  id: String(r.id),
  scope: r.tenant_id ? 'tenant' : 'global',
  tenant_id: r.tenant_id,
  pattern: r.pattern,
  reason: r.reason,
  note: r.note,
  created_at: iso(r.created_at),
  expires_at: isoOrNull(r.expires_at),
});

const REASONS: SuppressionReason[] = ['hard_bounce', 'complaint', 'unsubscribe', 'manual', 'import'];
export const MAX_IMPORT_ROWS = 100_000;

function scoped(db: Db, tenantId: string | null) {
  const q = db.selectFrom('suppressions').selectAll();
  return tenantId ? q.where('tenant_id', '=', tenantId) : q.where('tenant_id', 'is', null);
}

async function assertTenant(ctx: AppContext, tenantId: string | null): Promise<void> {
  if (!tenantId) return;
  const t = await ctx.db.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst();
  if (!t) throw notFound('tenant', tenantId);
}

export async function listSuppressions(
  ctx: AppContext,
  tenantId: string | null,
  q: { limit: number; cursor?: string | undefined; contains?: string | undefined; reason?: SuppressionReason | undefined },
): Promise<Page<SuppressionView>> {
  await assertTenant(ctx, tenantId);
  let query = scoped(ctx.db, tenantId);
  if (q.contains) query = query.where('pattern', 'like', `%${q.contains.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  if (q.reason) query = query.where('reason', '=', q.reason);
  const after = cursorId(q.cursor);
  if (after) query = query.where('id', '>', sql<string>`${after}::bigint`);
  const page = pageById(await query.orderBy('id').limit(q.limit + 1).execute(), q.limit);
  return { items: page.items.map(view), next_cursor: page.next_cursor };
}

export interface AddSuppressionInput {
  pattern: string;
  reason?: SuppressionReason | undefined;
  note?: string | undefined;
  expires_at?: string | undefined;
}

export async function addSuppression(ctx: AppContext, caller: Caller, tenantId: string | null, input: AddSuppressionInput): Promise<SuppressionView> {
  await assertTenant(ctx, tenantId);
  const pattern = normalisePattern(input.pattern);
  if (!pattern) {
    throw new AppError('VALIDATION_FAILED', 'pattern must be an address (user@example.com) or a domain (*@example.com)', {
      fields: [{ path: 'json.pattern', message: 'not an address or domain pattern' }],
    });
  }
  return inTransaction(ctx.db, async (tx) => {
    const row = await tx
      .insertInto('suppressions')
      .values({ tenant_id: tenantId, pattern, reason: input.reason ?? 'manual', note: input.note ?? '', expires_at: input.expires_at ?? null })
      .returningAll()
      .executeTakeFirstOrThrow();
    await writeAudit(tx, caller, { action: 'suppression.add', targetType: 'suppression', targetId: String(row.id), tenantId, details: { after: view(row) } });
    return view(row);
  });
}

export async function removeSuppression(ctx: AppContext, caller: Caller, tenantId: string | null, id: string): Promise<void> {
  await inTransaction(ctx.db, async (tx) => {
    let q = tx.deleteFrom('suppressions').where('id', '=', id);
    q = tenantId ? q.where('tenant_id', '=', tenantId) : q.where('tenant_id', 'is', null);
    const gone = await q.returningAll().executeTakeFirst();
    if (!gone) throw notFound('suppression', id);
    await writeAudit(tx, caller, { action: 'suppression.remove', targetType: 'suppression', targetId: id, tenantId, details: { before: view(gone) } });
  });
}

export interface ImportReport {
  rows: number;
  imported: number;
  duplicates: number;
  errors: { line: number; reason: string }[];
}

/**
 * CSV with columns pattern (or address), reason, note; a header row is recognised and skipped.
 * Bad lines are reported by number and skipped; good lines are imported in one statement.
 */
export async function importSuppressions(ctx: AppContext, caller: Caller, tenantId: string | null, csv: string): Promise<ImportReport> {
  await assertTenant(ctx, tenantId);
  const rows = parseCsv(csv);
  if (rows.length > MAX_IMPORT_ROWS + 1) throw new AppError('PAYLOAD_TOO_LARGE', `at most ${MAX_IMPORT_ROWS} rows per import`);
  const errors: ImportReport['errors'] = [];
  const good = new Map<string, { reason: SuppressionReason; note: string }>();
  rows.forEach((cells, i) => {
    const line = i + 1;
    const first = (cells[0] ?? '').trim();
    if (i === 0 && /^(pattern|address|email)$/i.test(first)) return;
    const pattern = normalisePattern(first);
    if (!pattern) return void errors.push({ line, reason: `not an address or domain: ${JSON.stringify(first.slice(0, 80))}` });
    const reasonCell = (cells[1] ?? '').trim().toLowerCase();
    const reason = (reasonCell === '' ? 'import' : reasonCell) as SuppressionReason;
    if (!REASONS.includes(reason)) return void errors.push({ line, reason: `unknown reason ${JSON.stringify(reasonCell.slice(0, 40))} (use ${REASONS.join(', ')})` });
    const note = (cells[2] ?? '').slice(0, 500);
    if (!good.has(pattern)) good.set(pattern, { reason, note });
  });
  const patterns = [...good.keys()];
  return inTransaction(ctx.db, async (tx) => {
    let imported = 0;
    if (patterns.length > 0) {
      const { rows: inserted } = await sql<{ id: string }>`
        INSERT INTO suppressions (tenant_id, pattern, reason, note)
        SELECT ${tenantId}::uuid, p, r::suppression_reason, n
        FROM unnest(${patterns}::text[], ${patterns.map((p) => good.get(p)!.reason)}::text[], ${patterns.map((p) => good.get(p)!.note)}::text[]) AS x(p, r, n)
        ON CONFLICT (tenant_id, pattern) DO NOTHING
        RETURNING id`.execute(tx);
      imported = inserted.length;
    }
    const report = { rows: rows.length, imported, duplicates: patterns.length - imported, errors };
    await writeAudit(tx, caller, { action: 'suppression.import', targetType: 'suppression', targetId: null, tenantId, details: { imported, duplicates: report.duplicates, errors: errors.length } });
    return report;
  });
}

export async function exportSuppressions(ctx: AppContext, tenantId: string | null): Promise<string> {
  await assertTenant(ctx, tenantId);
  const rows = await scoped(ctx.db, tenantId).orderBy('id').execute();
  return toCsv([['pattern', 'reason', 'note', 'created_at', 'expires_at'], ...rows.map((r) => [r.pattern, r.reason, r.note, iso(r.created_at), isoOrNull(r.expires_at)])]);
}

/** Whether mail from `tenantId` to `address` is suppressed, by the tenant's list or the global one. */
export async function findSuppression(db: Db, tenantId: string, address: string, now: Date): Promise<SuppressionView | null> {
  const row = await db
    .selectFrom('suppressions')
    .selectAll()
    .where((eb) => eb.or([eb('tenant_id', '=', tenantId), eb('tenant_id', 'is', null)]))
    .where('pattern', 'in', patternsFor(address))
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .orderBy('tenant_id', 'asc')
    .limit(1)
    .executeTakeFirst();
  return row ? view(row) : null;
}
