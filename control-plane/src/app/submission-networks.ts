/**
 * Networks a tenant's application servers submit from without SMTP AUTH. A connecting address maps to
 * at most one tenant (the table refuses overlaps), so the gateway never has to guess.
 */
import type { AppContext } from '../context.js';
import { inTransaction } from '../adapters/pg/database.js';
import { notFound } from '../domain/shared/errors.js';
import type { Caller } from './actor.js';
import { writeAudit } from './audit.js';
import { afterCursor, sortKey, toPage, type Page } from './pagination.js';
import { iso } from './views.js';

export interface SubmissionNetworkView {
  id: string;
  tenant_id: string;
  network: string;
  description: string;
  created_at: string;
}

const COLUMNS = ['id', 'tenant_id', 'network', 'description', 'created_at'] as const;
type Row = { id: string; tenant_id: string; network: string; description: string; created_at: Date };
const view = (r: Row): SubmissionNetworkView => ({ id: r.id, tenant_id: r.tenant_id, network: r.network, description: r.description, created_at: iso(r.created_at) });

export async function addSubmissionNetwork(
  ctx: AppContext,
  caller: Caller,
  tenantId: string,
  input: { network: string; description?: string | undefined },
): Promise<SubmissionNetworkView> {
  return inTransaction(ctx.db, async (tx) => {
    const tenant = await tx.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst();
    if (!tenant) throw notFound('tenant', tenantId);
    const row = await tx
      .insertInto('submission_networks')
      .values({ tenant_id: tenantId, network: input.network, description: input.description ?? '', created_at: ctx.now() })
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    await writeAudit(tx, caller, { action: 'submission_network.create', targetType: 'submission_network', targetId: row.id, tenantId, details: { after: view(row) } });
    return view(row);
  });
}

export async function listSubmissionNetworks(ctx: AppContext, tenantId: string, q: { limit: number; cursor?: string | undefined }): Promise<Page<SubmissionNetworkView>> {
  let query = ctx.db.selectFrom('submission_networks').select(COLUMNS).select(sortKey('submission_networks').as('_k')).where('tenant_id', '=', tenantId);
  const after = afterCursor('submission_networks', q.cursor);
  if (after) query = query.where(after);
  const page = toPage(await query.orderBy('created_at').orderBy('id').limit(q.limit + 1).execute(), q.limit);
  return { items: page.items.map(view), next_cursor: page.next_cursor };
}

export async function removeSubmissionNetwork(ctx: AppContext, caller: Caller, tenantId: string, id: string): Promise<void> {
  await inTransaction(ctx.db, async (tx) => {
    const row = await tx.deleteFrom('submission_networks').where('tenant_id', '=', tenantId).where('id', '=', id).returning(COLUMNS).executeTakeFirst();
    if (!row) throw notFound('submission network', id);
    await writeAudit(tx, caller, { action: 'submission_network.delete', targetType: 'submission_network', targetId: id, tenantId, details: { before: view(row) } });
  });
}
