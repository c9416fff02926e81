/** Tenants: the customers whose mail the platform sends. */
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../context.js';
import { inTransaction } from '../adapters/pg/database.js';
import { derivePseudonym } from '../domain/tenancy/pseudonym.js';
import { AppError, notFound } from '../domain/shared/errors.js';
import type { Caller } from './actor.js';
import { writeAudit } from './audit.js';
import { afterCursor, sortKey, toPage, type Page } from './pagination.js';
import { iso } from './views.js';
import { rescoreTenants } from './trust/rescore.js';
import type { TenantsTable } from '../adapters/pg/tables.js';
import type { Selectable } from 'kysely';
import type { EngagementKey } from '../domain/trust/components.js';

export interface TenantView {
  id: string;
  slug: string;
  display_name: string;
  pseudonym: string;
  status: 'active' | 'suspended';
  leaderboard_opt_out: boolean;
  engagement_reported: string[];
  created_at: string;
  updated_at: string;
}

const view = (t: Selectable<TenantsTable>): TenantView => ({
  id: t.id,
  slug: t.slug,
  display_name: t.display_name,
  pseudonym: t.pseudonym,
  status: t.status,
  leaderboard_opt_out: t.leaderboard_opt_out,
  engagement_reported: [...t.engagement_reported].sort(),
  created_at: iso(t.created_at),
  updated_at: iso(t.updated_at),
});

export interface CreateTenantInput {
  slug: string;
  display_name: string;
  leaderboard_opt_out?: boolean | undefined;
  engagement_reported?: EngagementKey[] | undefined;
}

export async function createTenant(ctx: AppContext, caller: Caller, input: CreateTenantInput): Promise<TenantView> {
  const id = randomUUID();
  // a pseudonym collision (1 in a million per pair) moves to the next derived name, never to a random one
  for (let attempt = 0; attempt < 20; attempt++) {
    const pseudonym = derivePseudonym(ctx.config.pseudonymKey, id, attempt);
    const taken = await ctx.db.selectFrom('tenants').select('id').where('pseudonym', '=', pseudonym).executeTakeFirst();
    if (taken) continue;
    return inTransaction(ctx.db, async (tx) => {
      const row = await tx
        .insertInto('tenants')
        .values({
          id,
          slug: input.slug,
          display_name: input.display_name,
          pseudonym,
          leaderboard_opt_out: input.leaderboard_opt_out ?? false,
          engagement_reported: [...new Set(input.engagement_reported ?? [])].sort(),
          updated_at: ctx.now(),
          created_at: ctx.now(),
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await writeAudit(tx, caller, { action: 'tenant.create', targetType: 'tenant', targetId: id, tenantId: id, details: { after: view(row) } });
      // every tenant has a trust state from the start (locked until its domain is authenticated)
      await rescoreTenants(tx, [id], ctx.now());
      return view(row);
    });
  }
  throw new AppError('INTERNAL', 'could not derive a free pseudonym');
}

export async function getTenant(ctx: AppContext, id: string): Promise<TenantView> {
  const row = await ctx.db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('tenant', id);
  return view(row);
}

export async function listTenants(
  ctx: AppContext,
  q: { limit: number; cursor?: string | undefined; status?: 'active' | 'suspended' | undefined },
): Promise<Page<TenantView>> {
  let query = ctx.db.selectFrom('tenants').selectAll().select(sortKey('tenants').as('_k'));
  if (q.status) query = query.where('status', '=', q.status);
  const after = afterCursor('tenants', q.cursor);
  if (after) query = query.where(after);
  const rows = await query.orderBy('created_at').orderBy('id').limit(q.limit + 1).execute();
  const page = toPage(rows, q.limit);
  return { items: page.items.map(view), next_cursor: page.next_cursor };
}

export interface UpdateTenantInput {
  display_name?: string | undefined;
  status?: 'active' | 'suspended' | undefined;
  leaderboard_opt_out?: boolean | undefined;
  engagement_reported?: EngagementKey[] | undefined;
}

export async function updateTenant(ctx: AppContext, caller: Caller, id: string, patch: UpdateTenantInput): Promise<TenantView> {
  return inTransaction(ctx.db, async (tx) => {
    const before = await tx.selectFrom('tenants').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    if (!before) throw notFound('tenant', id);
    const { engagement_reported, ...rest } = patch;
    const row = await tx
      .updateTable('tenants')
      .set({ ...definedOnly(rest), ...(engagement_reported ? { engagement_reported: [...new Set(engagement_reported)].sort() } : {}), updated_at: ctx.now() })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await writeAudit(tx, caller, { action: 'tenant.update', targetType: 'tenant', targetId: id, tenantId: id, details: { before: view(before), after: view(row) } });
    // what the tenant reports changes how its score is computed: at once, not at the next hourly rescore
    if (engagement_reported) await rescoreTenants(tx, [id], ctx.now());
    return view(row);
  });
}

export async function deleteTenant(ctx: AppContext, caller: Caller, id: string): Promise<void> {
  await inTransaction(ctx.db, async (tx) => {
    const before = await tx.deleteFrom('tenants').where('id', '=', id).returningAll().executeTakeFirst();
    if (!before) throw notFound('tenant', id);
    await writeAudit(tx, caller, { action: 'tenant.delete', targetType: 'tenant', targetId: id, tenantId: id, details: { before: view(before) } });
  });
}

/** Drop keys whose value is undefined, so a PATCH touches only what the client sent. */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
