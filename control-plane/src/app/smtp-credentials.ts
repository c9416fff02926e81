/** SMTP submission credentials. The password is generated here and shown exactly once. */
import type { AppContext } from '../context.js';
import { inTransaction } from '../adapters/pg/database.js';
import { hashPassword } from '../adapters/crypto/password-hash.js';
import { randomBase62 } from '../adapters/crypto/tokens.js';
import { notFound } from '../domain/shared/errors.js';
import type { Caller } from './actor.js';
import { writeAudit } from './audit.js';
import { afterCursor, sortKey, toPage, type Page } from './pagination.js';
import { iso, isoOrNull } from './views.js';

export interface CredentialView {
  id: string;
  tenant_id: string;
  username: string;
  description: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

const COLUMNS = ['id', 'tenant_id', 'username', 'description', 'created_at', 'last_used_at', 'revoked_at'] as const;

type Row = { id: string; tenant_id: string; username: string; description: string; created_at: Date; last_used_at: Date | null; revoked_at: Date | null };

const view = (r: Row): CredentialView => ({
  id: r.id,
  tenant_id: r.tenant_id,
  username: r.username,
  description: r.description,
  created_at: iso(r.created_at),
  last_used_at: isoOrNull(r.last_used_at),
  revoked_at: isoOrNull(r.revoked_at),
});

export async function createCredential(
  ctx: AppContext,
  caller: Caller,
  tenantId: string,
  input: { username?: string | undefined; description?: string | undefined },
): Promise<CredentialView & { password: string }> {
  const tenant = await ctx.db.selectFrom('tenants').select(['id', 'slug']).where('id', '=', tenantId).executeTakeFirst();
  if (!tenant) throw notFound('tenant', tenantId);
  const password = randomBase62(32);
  const passwordHash = await hashPassword(password);
  const username = input.username ?? `${tenant.slug}-${randomBase62(8).toLowerCase()}`;
  return inTransaction(ctx.db, async (tx) => {
    const row = await tx
      .insertInto('smtp_credentials')
      .values({ tenant_id: tenantId, username, password_hash: passwordHash, description: input.description ?? '', created_at: ctx.now() })
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    await writeAudit(tx, caller, { action: 'smtp_credential.create', targetType: 'smtp_credential', targetId: row.id, tenantId, details: { after: view(row) } });
    return { ...view(row), password };
  });
}

export async function listCredentials(ctx: AppContext, tenantId: string, q: { limit: number; cursor?: string | undefined }): Promise<Page<CredentialView>> {
  let query = ctx.db.selectFrom('smtp_credentials').select(COLUMNS).select(sortKey('smtp_credentials').as('_k')).where('tenant_id', '=', tenantId);
  const after = afterCursor('smtp_credentials', q.cursor);
  if (after) query = query.where(after);
  const page = toPage(await query.orderBy('created_at').orderBy('id').limit(q.limit + 1).execute(), q.limit);
  return { items: page.items.map(view), next_cursor: page.next_cursor };
}

/** Revoked, not deleted: the row keeps the history of who could submit when. */
export async function revokeCredential(ctx: AppContext, caller: Caller, tenantId: string, id: string): Promise<CredentialView> {
  return inTransaction(ctx.db, async (tx) => {
    const row = await tx
      .updateTable('smtp_credentials')
      .set((eb) => ({ revoked_at: eb.fn.coalesce('revoked_at', eb.val(ctx.now())) }))
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .returning(COLUMNS)
      .executeTakeFirst();
    if (!row) throw notFound('smtp credential', id);
    await writeAudit(tx, caller, { action: 'smtp_credential.revoke', targetType: 'smtp_credential', targetId: id, tenantId, details: { after: view(row) } });
    return view(row);
  });
}
