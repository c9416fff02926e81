/** Tenant mailboxes on their own verified-or-pending sending domains (warming-network members later). */
import type { AppContext } from '../context.js';
import { inTransaction } from '../adapters/pg/database.js';
import { notFound } from '../domain/shared/errors.js';
import type { Caller } from './actor.js';
import { writeAudit } from './audit.js';
import { afterCursor, sortKey, toPage, type Page } from './pagination.js';
import { iso } from './views.js';

export interface MailboxView {
  id: string;
  tenant_id: string;
  domain_id: string;
  address: string;
  display_name: string;
  created_at: string;
}

type Row = { id: string; tenant_id: string; domain_id: string; local_part: string; domain: string; display_name: string; created_at: Date };

const view = (r: Row): MailboxView => ({
  id: r.id,
  tenant_id: r.tenant_id,
  domain_id: r.domain_id,
  address: `${r.local_part}@${r.domain}`,
  display_name: r.display_name,
  created_at: iso(r.created_at),
});

function baseQuery(ctx: AppContext, tenantId: string) {
  return ctx.db
    .selectFrom('mailboxes')
    .innerJoin('sending_domains', 'sending_domains.id', 'mailboxes.domain_id')
    .select(['mailboxes.id', 'mailboxes.tenant_id', 'mailboxes.domain_id', 'mailboxes.local_part', 'sending_domains.domain', 'mailboxes.display_name', 'mailboxes.created_at'])
    .where('mailboxes.tenant_id', '=', tenantId);
}

export async function createMailbox(
  ctx: AppContext,
  caller: Caller,
  tenantId: string,
  input: { domain_id: string; local_part: string; display_name?: string | undefined },
): Promise<MailboxView> {
  return inTransaction(ctx.db, async (tx) => {
    // the composite foreign key would refuse another tenant's domain too; this gives the clearer 404
    const domain = await tx.selectFrom('sending_domains').select('domain').where('tenant_id', '=', tenantId).where('id', '=', input.domain_id).executeTakeFirst();
    if (!domain) throw notFound('sending domain', input.domain_id);
    const row = await tx
      .insertInto('mailboxes')
      .values({ tenant_id: tenantId, domain_id: input.domain_id, local_part: input.local_part, display_name: input.display_name ?? '', created_at: ctx.now() })
      .returningAll()
      .executeTakeFirstOrThrow();
    const v = view({ ...row, domain: domain.domain });
    await writeAudit(tx, caller, { action: 'mailbox.create', targetType: 'mailbox', targetId: row.id, tenantId, details: { after: v } });
    return v;
  });
}

export async function listMailboxes(ctx: AppContext, tenantId: string, q: { limit: number; cursor?: string | undefined }): Promise<Page<MailboxView>> {
  let query = baseQuery(ctx, tenantId).select(sortKey('mailboxes').as('_k'));
  const after = afterCursor('mailboxes', q.cursor);
  if (after) query = query.where(after);
  const page = toPage(await query.orderBy('mailboxes.created_at').orderBy('mailboxes.id').limit(q.limit + 1).execute(), q.limit);
  return { items: page.items.map(view), next_cursor: page.next_cursor };
}

export async function getMailbox(ctx: AppContext, tenantId: string, id: string): Promise<MailboxView> {
  const row = await baseQuery(ctx, tenantId).where('mailboxes.id', '=', id).executeTakeFirst();
  if (!row) throw notFound('mailbox', id);
  return view(row);
}

export async function deleteMailbox(ctx: AppContext, caller: Caller, tenantId: string, id: string): Promise<void> {
  const before = await getMailbox(ctx, tenantId, id);
  await inTransaction(ctx.db, async (tx) => {
    await tx.deleteFrom('mailboxes').where('tenant_id', '=', tenantId).where('id', '=', id).execute();
    await writeAudit(tx, caller, { action: 'mailbox.delete', targetType: 'mailbox', targetId: id, tenantId, details: { before } });
  });
}
