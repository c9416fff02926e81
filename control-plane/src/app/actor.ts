/** Who is calling. Operators carry scopes; tenant tokens are read-only and bound to one tenant. */
import type { TokenScope } from '../adapters/pg/tables.js';
import { inTenantScope } from '../adapters/pg/scope.js';
import type { AppContext } from '../context.js';

export type Actor =
  | { kind: 'operator'; operatorId: string; tokenId: string; scopes: TokenScope[] }
  | { kind: 'tenant'; tenantId: string; tokenId: string; scopes: ['read'] };

/** Scopes nest: admin implies write, write implies read. */
const RANK: Record<TokenScope, number> = { read: 1, write: 2, admin: 3 };

export function hasScope(actor: Actor, needed: TokenScope): boolean {
  return actor.scopes.some((s) => RANK[s] >= RANK[needed]);
}

/**
 * Run `fn` with the context an actor's request gets. Operators span tenants: the process's pool as it
 * is (platform scope). A tenant token gets a context whose `db` is a read-only transaction that sees
 * only its tenant's rows (adapters/pg/scope.ts), so a query that forgets its WHERE still returns
 * nothing of another tenant's.
 */
export async function inActorScope<T>(ctx: AppContext, actor: Actor, fn: (ctx: AppContext) => Promise<T>): Promise<T> {
  if (actor.kind !== 'tenant') return fn(ctx);
  return inTenantScope(ctx.db, actor.tenantId, (db) => fn({ ...ctx, db }));
}

/** Who did it and under which request, for the audit log. */
export interface Caller {
  actor: Actor | { kind: 'system'; name: string } | { kind: 'node'; nodeId: string };
  requestId: string | null;
}

export const systemCaller = (name: string): Caller => ({ actor: { kind: 'system', name }, requestId: null });
