/**
 * Operators and API tokens. Tokens are shown once at creation; only their SHA-256 is kept. Lookup is
 * by hash (a unique index), so a token check is one indexed read and reveals nothing through timing
 * about other tokens. `last_used_at` is written at most once a minute per token to keep reads cheap.
 */
import { sql } from 'kysely';
import { writeFile } from 'node:fs/promises';
import type { AppContext } from '../context.js';
import { inTransaction } from '../adapters/pg/database.js';
import type { TokenScope } from '../adapters/pg/tables.js';
import { issueToken, sha256 } from '../adapters/crypto/tokens.js';
import { AppError, notFound } from '../domain/shared/errors.js';
import type { Actor, Caller } from './actor.js';
import { writeAudit } from './audit.js';
import { afterCursor, sortKey, toPage, type Page } from './pagination.js';
import { iso, isoOrNull } from './views.js';

export interface OperatorView {
  id: string;
  email: string;
  name: string;
  created_at: string;
  disabled_at: string | null;
}

export interface TokenView {
  id: string;
  name: string;
  prefix: string;
  owner: { type: 'operator'; operator_id: string } | { type: 'tenant'; tenant_id: string };
  scopes: TokenScope[];
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

type OperatorRow = { id: string; email: string; name: string; created_at: Date; disabled_at: Date | null };
type TokenRow = {
  id: string;
  name: string;
  prefix: string;
  operator_id: string | null;
  tenant_id: string | null;
  scopes: TokenScope[] | string;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
};

const operatorView = (r: OperatorRow): OperatorView => ({
  id: r.id,
  email: r.email,
  name: r.name,
  created_at: iso(r.created_at),
  disabled_at: isoOrNull(r.disabled_at),
});

/** pg hands enum arrays back as the literal `{read,write}` */
const parseScopes = (s: TokenScope[] | string): TokenScope[] =>
  Array.isArray(s) ? s : (s.replace(/^\{|\}$/g, '').split(',').filter(Boolean) as TokenScope[]);

const tokenView = (r: TokenRow): TokenView => ({
  id: r.id,
  name: r.name,
  prefix: r.prefix,
  owner: r.operator_id ? { type: 'operator', operator_id: r.operator_id } : { type: 'tenant', tenant_id: r.tenant_id! },
  scopes: parseScopes(r.scopes),
  created_at: iso(r.created_at),
  expires_at: isoOrNull(r.expires_at),
  last_used_at: isoOrNull(r.last_used_at),
  revoked_at: isoOrNull(r.revoked_at),
});

const TOKEN_COLUMNS = ['id', 'name', 'prefix', 'operator_id', 'tenant_id', 'scopes', 'created_at', 'expires_at', 'last_used_at', 'revoked_at'] as const;
const scopeArray = (scopes: TokenScope[]) => sql<string>`${`{${[...new Set(scopes)].sort().join(',')}}`}::token_scope[]`;

export async function createOperator(ctx: AppContext, caller: Caller, input: { email: string; name: string }): Promise<OperatorView> {
  return inTransaction(ctx.db, async (tx) => {
    const row = await tx.insertInto('operators').values({ email: input.email.toLowerCase(), name: input.name, created_at: ctx.now() }).returningAll().executeTakeFirstOrThrow();
    await writeAudit(tx, caller, { action: 'operator.create', targetType: 'operator', targetId: row.id, details: { after: operatorView(row) } });
    return operatorView(row);
  });
}

export async function listOperators(ctx: AppContext, q: { limit: number; cursor?: string | undefined }): Promise<Page<OperatorView>> {
  let query = ctx.db.selectFrom('operators').selectAll().select(sortKey('operators').as('_k'));
  const after = afterCursor('operators', q.cursor);
  if (after) query = query.where(after);
  const page = toPage(await query.orderBy('created_at').orderBy('id').limit(q.limit + 1).execute(), q.limit);
  return { items: page.items.map(operatorView), next_cursor: page.next_cursor };
}

export async function setOperatorDisabled(ctx: AppContext, caller: Caller, id: string, disabled: boolean): Promise<OperatorView> {
  if (disabled && caller.actor.kind === 'operator' && caller.actor.operatorId === id) {
    throw new AppError('CONFLICT', 'an operator cannot disable itself');
  }
  return inTransaction(ctx.db, async (tx) => {
    const row = await tx
      .updateTable('operators')
      .set({ disabled_at: disabled ? ctx.now() : null })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (!row) throw notFound('operator', id);
    await writeAudit(tx, caller, { action: disabled ? 'operator.disable' : 'operator.enable', targetType: 'operator', targetId: id, details: { after: operatorView(row) } });
    return operatorView(row);
  });
}

export interface CreateTokenInput {
  name: string;
  scopes: TokenScope[];
  expires_at?: string | undefined;
}

export async function createOperatorToken(ctx: AppContext, caller: Caller, operatorId: string, input: CreateTokenInput): Promise<TokenView & { token: string }> {
  return inTransaction(ctx.db, async (tx) => {
    const op = await tx.selectFrom('operators').select('id').where('id', '=', operatorId).executeTakeFirst();
    if (!op) throw notFound('operator', operatorId);
    const t = issueToken('kcp');
    const row = await tx
      .insertInto('api_tokens')
      .values({ operator_id: operatorId, tenant_id: null, name: input.name, prefix: t.prefix, token_sha256: t.sha256, scopes: scopeArray(input.scopes), expires_at: input.expires_at ?? null, created_at: ctx.now() })
      .returning(TOKEN_COLUMNS)
      .executeTakeFirstOrThrow();
    await writeAudit(tx, caller, { action: 'api_token.create', targetType: 'api_token', targetId: row.id, details: { after: tokenView(row) } });
    return { ...tokenView(row), token: t.token };
  });
}

export async function createTenantToken(
  ctx: AppContext,
  caller: Caller,
  tenantId: string,
  input: { name: string; expires_at?: string | undefined },
): Promise<TokenView & { token: string }> {
  return inTransaction(ctx.db, async (tx) => {
    const tenant = await tx.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst();
    if (!tenant) throw notFound('tenant', tenantId);
    const t = issueToken('kct');
    const row = await tx
      .insertInto('api_tokens')
      .values({ operator_id: null, tenant_id: tenantId, name: input.name, prefix: t.prefix, token_sha256: t.sha256, scopes: scopeArray(['read']), expires_at: input.expires_at ?? null, created_at: ctx.now() })
      .returning(TOKEN_COLUMNS)
      .executeTakeFirstOrThrow();
    await writeAudit(tx, caller, { action: 'api_token.create', targetType: 'api_token', targetId: row.id, tenantId, details: { after: tokenView(row) } });
    return { ...tokenView(row), token: t.token };
  });
}

export async function listTokens(
  ctx: AppContext,
  owner: { operatorId: string } | { tenantId: string },
  q: { limit: number; cursor?: string | undefined },
): Promise<Page<TokenView>> {
  let query = ctx.db.selectFrom('api_tokens').select(TOKEN_COLUMNS).select(sortKey('api_tokens').as('_k'));
  query = 'operatorId' in owner ? query.where('operator_id', '=', owner.operatorId) : query.where('tenant_id', '=', owner.tenantId);
  const after = afterCursor('api_tokens', q.cursor);
  if (after) query = query.where(after);
  const page = toPage(await query.orderBy('created_at').orderBy('id').limit(q.limit + 1).execute(), q.limit);
  return { items: page.items.map(tokenView), next_cursor: page.next_cursor };
}

export async function revokeToken(ctx: AppContext, caller: Caller, tokenId: string): Promise<TokenView> {
  return inTransaction(ctx.db, async (tx) => {
    const row = await tx
      .updateTable('api_tokens')
      .set((eb) => ({ revoked_at: eb.fn.coalesce('revoked_at', eb.val(ctx.now())) }))
      .where('id', '=', tokenId)
      .returning(TOKEN_COLUMNS)
      .executeTakeFirst();
    if (!row) throw notFound('api token', tokenId);
    await writeAudit(tx, caller, { action: 'api_token.revoke', targetType: 'api_token', targetId: tokenId, tenantId: row.tenant_id, details: { after: tokenView(row) } });
    return tokenView(row);
  });
}

/** The actor behind a bearer token, or null for anything unknown, revoked, expired or disabled. */
export async function authenticateBearer(ctx: AppContext, token: string): Promise<Actor | null> {
  if (!/^(kcp|kct)_[0-9A-Za-z]{40}$/.test(token)) return null;
  const now = ctx.now();
  const row = await ctx.db
    .selectFrom('api_tokens')
    .leftJoin('operators', 'operators.id', 'api_tokens.operator_id')
    .select(['api_tokens.id', 'api_tokens.operator_id', 'api_tokens.tenant_id', 'api_tokens.scopes', 'api_tokens.expires_at', 'api_tokens.revoked_at', 'api_tokens.last_used_at', 'operators.disabled_at'])
    .where('api_tokens.token_sha256', '=', sha256(token))
    .executeTakeFirst();
  if (!row || row.revoked_at || (row.expires_at && row.expires_at <= now) || row.disabled_at) return null;
  if (!row.last_used_at || now.getTime() - row.last_used_at.getTime() > 60_000) {
    await ctx.db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', row.id).execute();
  }
  if (row.operator_id) return { kind: 'operator', operatorId: row.operator_id, tokenId: row.id, scopes: parseScopes(row.scopes) };
  return { kind: 'tenant', tenantId: row.tenant_id!, tokenId: row.id, scopes: ['read'] };
}

/**
 * First start: with no operator at all, create `admin@localhost` with an admin token and write the
 * token to a 0600 file, so the README's run command yields a usable API without a chicken-and-egg step.
 * Returns the file written, or null when operators already exist.
 */
export async function bootstrapFirstOperator(ctx: AppContext, file: string): Promise<string | null> {
  const any = await ctx.db.selectFrom('operators').select('id').limit(1).executeTakeFirst();
  if (any) return null;
  const caller: Caller = { actor: { kind: 'system', name: 'bootstrap' }, requestId: null };
  const op = await createOperator(ctx, caller, { email: 'admin@localhost', name: 'Bootstrap administrator' });
  const t = await createOperatorToken(ctx, caller, op.id, { name: 'bootstrap', scopes: ['admin'] });
  await writeFile(file, `${t.token}\n`, { mode: 0o600 });
  return file;
}
