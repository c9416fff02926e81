/** Members of the warming network: tenant mailboxes that joined, and the platform's golden seeds. */
import type { Selectable } from 'kysely';
import type { AppContext } from '../../context.js';
import { inTransaction } from '../../adapters/pg/database.js';
import type { WarmingMembersTable } from '../../adapters/pg/tables.js';
import { providerOf } from '../../domain/fleet/naming.js';
import { AppError, notFound } from '../../domain/shared/errors.js';
import type { Caller } from '../actor.js';
import { writeAudit } from '../audit.js';
import { iso, isoOrNull, numOrNull } from '../views.js';

export interface WarmingMemberView {
  id: string;
  kind: 'peer' | 'golden_seed';
  address: string;
  provider: string;
  tenant_id: string | null;
  mailbox_id: string | null;
  weight: number;
  monthly_cost_usd: number | null;
  state: string;
  ramp: { kind: 'new' | 'prewarmed'; started_on: string | null } | null;
  listed: boolean;
  paused_until: string | null;
  risk_reason: string | null;
  cut_pct: number;
  joined_at: string;
}

type Row = Selectable<WarmingMembersTable>;
export const memberView = (r: Row): WarmingMemberView => ({
  id: r.id,
  kind: r.kind,
  address: r.address,
  provider: r.provider,
  tenant_id: r.tenant_id,
  mailbox_id: r.mailbox_id,
  weight: Number(r.weight),
  monthly_cost_usd: numOrNull(r.monthly_cost_usd),
  state: r.state,
  ramp: r.kind === 'peer' ? { kind: r.ramp_kind, started_on: r.ramp_started_on } : null,
  listed: r.listed,
  paused_until: isoOrNull(r.paused_until),
  risk_reason: r.risk_reason,
  cut_pct: Number(r.cut_pct),
  joined_at: iso(r.joined_at),
});

const today = (now: Date) => now.toISOString().slice(0, 10);

export async function addGoldenSeed(
  ctx: AppContext,
  caller: Caller,
  input: { address: string; provider?: 'gmail' | 'microsoft' | 'yahoo' | 'other' | undefined; weight?: number | undefined; monthly_cost_usd?: number | null | undefined },
): Promise<WarmingMemberView> {
  const address = input.address.toLowerCase();
  return inTransaction(ctx.db, async (tx) => {
    const row = await tx
      .insertInto('warming_members')
      .values({ kind: 'golden_seed', address, provider: input.provider ?? providerOf(address.split('@')[1] ?? ''), weight: input.weight ?? 3, monthly_cost_usd: input.monthly_cost_usd ?? null, joined_at: ctx.now() })
      .returningAll()
      .executeTakeFirstOrThrow();
    await writeAudit(tx, caller, { action: 'warming_member.create', targetType: 'warming_member', targetId: row.id, details: { after: memberView(row) } });
    return memberView(row);
  });
}

/** A tenant mailbox joins: new mailboxes ramp from 20-30 a day, pre-warmed imports from 5. */
export async function joinPeer(ctx: AppContext, caller: Caller, input: { mailbox_id: string; ramp?: 'new' | 'prewarmed' | undefined }): Promise<WarmingMemberView> {
  return inTransaction(ctx.db, async (tx) => {
    const mb = await tx
      .selectFrom('mailboxes as m')
      .innerJoin('sending_domains as d', 'd.id', 'm.domain_id')
      .select(['m.id', 'm.tenant_id', 'm.local_part', 'd.domain', 'd.verified_at'])
      .where('m.id', '=', input.mailbox_id)
      .executeTakeFirst();
    if (!mb) throw notFound('mailbox', input.mailbox_id);
    if (!mb.verified_at) throw new AppError('INVALID_STATE_TRANSITION', `the mailbox's domain ${mb.domain} is not verified: warming mail could not be signed`);
    const address = `${mb.local_part}@${mb.domain}`.toLowerCase();
    const row = await tx
      .insertInto('warming_members')
      .values({ kind: 'peer', address, provider: providerOf(mb.domain), tenant_id: mb.tenant_id, mailbox_id: mb.id, ramp_kind: input.ramp ?? 'new', ramp_started_on: today(ctx.now()), joined_at: ctx.now() })
      .returningAll()
      .executeTakeFirstOrThrow();
    await writeAudit(tx, caller, { action: 'warming_member.join', targetType: 'warming_member', targetId: row.id, tenantId: mb.tenant_id, details: { after: memberView(row) } });
    return memberView(row);
  });
}

export async function listMembers(ctx: AppContext, q: { kind?: 'peer' | 'golden_seed' | undefined; tenant_id?: string | undefined }): Promise<WarmingMemberView[]> {
  let query = ctx.db.selectFrom('warming_members').selectAll();
  if (q.kind) query = query.where('kind', '=', q.kind);
  if (q.tenant_id) query = query.where('tenant_id', '=', q.tenant_id);
  return (await query.orderBy('joined_at').orderBy('id').limit(5000).execute()).map(memberView);
}

export async function updateMember(
  ctx: AppContext,
  caller: Caller,
  id: string,
  patch: { state?: 'active' | 'paused' | 'isolated' | 'retired' | undefined; listed?: boolean | undefined; weight?: number | undefined; monthly_cost_usd?: number | null | undefined; paused_until?: string | null | undefined },
): Promise<WarmingMemberView> {
  return inTransaction(ctx.db, async (tx) => {
    const before = await tx.selectFrom('warming_members').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    if (!before) throw notFound('warming member', id);
    const set = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    const row = Object.keys(set).length > 0 ? await tx.updateTable('warming_members').set(set).where('id', '=', id).returningAll().executeTakeFirstOrThrow() : before;
    await writeAudit(tx, caller, { action: 'warming_member.update', targetType: 'warming_member', targetId: id, tenantId: row.tenant_id, details: { before: memberView(before), after: memberView(row) } });
    return memberView(row);
  });
}
