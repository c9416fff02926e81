/** Who is calling. Operators carry scopes; tenant tokens are read-only and bound to one tenant. */
import type { TokenScope } from '../adapters/pg/tables.js';

export type Actor =
  | { kind: 'operator'; operatorId: string; tokenId: string; scopes: TokenScope[] }
  | { kind: 'tenant'; tenantId: string; tokenId: string; scopes: ['read'] };

/** Scopes nest: admin implies write, write implies read. */
const RANK: Record<TokenScope, number> = { read: 1, write: 2, admin: 3 };

export function hasScope(actor: Actor, needed: TokenScope): boolean {
  return actor.scopes.some((s) => RANK[s] >= RANK[needed]);
}

/** Who did it and under which request, for the audit log. */
export interface Caller {
  actor: Actor | { kind: 'system'; name: string } | { kind: 'node'; nodeId: string };
  requestId: string | null;
}

export const systemCaller = (name: string): Caller => ({ actor: { kind: 'system', name }, requestId: null });
