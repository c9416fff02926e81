/**
 * The append-only audit log. Every operator change writes its entry in the same transaction as the
 * change itself, so the log can never claim a change that rolled back or miss one that committed.
 * Details hold before/after images with secrets already removed by the caller.
 */
import { sql } from 'kysely';
import type { Selectable } from 'kysely';
import type { Db, Tx } from '../adapters/pg/database.js';
import type { AuditLogTable } from '../adapters/pg/tables.js';
import type { Caller } from './actor.js';
import { cursorId, pageById, type Page } from './pagination.js';


export interface AuditEntryInput {
  action: string;
  targetType: string;
  targetId: string | null;
  tenantId?: string | null;
  details?: Record<string, unknown>;
}

export async function writeAudit(tx: Tx | Db, caller: Caller, e: AuditEntryInput): Promise<void> {
  const a = caller.actor;
  await tx
    .insertInto('audit_log')
    .values({
      actor_type: a.kind,
      actor_id: a.kind === 'operator' ? a.operatorId : a.kind === 'tenant' ? a.tenantId : a.kind === 'node' ? a.nodeId : a.name,
      action: e.action,
      target_type: e.targetType,
      target_id: e.targetId,
      tenant_id: e.tenantId ?? null,
      request_id: caller.requestId,
      details: JSON.stringify(e.details ?? {}),
    })
    .execute();
}

/** An audit entry as stored; `details` is the JSON written with it. */
export type AuditRow = Omit<Selectable<AuditLogTable>, 'details'> & { details: Record<string, unknown> };

export interface AuditFilter {
  targetType?: string | undefined;
  targetId?: string | undefined;
  tenantId?: string | undefined;
  action?: string | undefined;
  limit: number;
  cursor?: string | undefined;
}

/** Newest first, keyset-paginated on the identity column. */
export async function listAudit(db: Db, f: AuditFilter): Promise<Page<AuditRow>> {
  let q = db.selectFrom('audit_log').selectAll();
  if (f.targetType) q = q.where('target_type', '=', f.targetType);
  if (f.targetId) q = q.where('target_id', '=', f.targetId);
  if (f.tenantId) q = q.where('tenant_id', '=', f.tenantId);
  if (f.action) q = q.where('action', '=', f.action);
  const after = cursorId(f.cursor);
  if (after) q = q.where('id', '<', sql<string>`${after}::bigint`);

  return pageById((await q.orderBy('id', 'desc').limit(f.limit + 1).execute()) as unknown as AuditRow[], f.limit);
}
