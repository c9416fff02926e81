/**
 * Database scopes: the one module that knows how the row-level security of migration 0011 is told
 * whose rows a statement may touch. Every table with a tenant's rows has two policies, keyed on two
 * settings:
 *
 *   kcp.scope = 'platform'   every tenant's rows. For code that spans tenants by what it is: operators'
 *                            requests, the worker, the node channel, the gateway's lookups (a username
 *                            or a network names the tenant), the migrator. Set for a whole session at
 *                            connection start-up by `sessionOptions('platform')`, which only the process
 *                            pool (createDb, `scope: 'platform'`) and the migrator use.
 *   kcp.tenant_id = <uuid>   that tenant's rows only, and no platform scope: `inTenantScope`, a read-only
 *                            transaction around a tenant-token API request.
 *
 * A connection of the application role that sets neither sees no tenant's rows and can write none.
 * These settings guard against a query that forgets its WHERE, not against SQL the application chooses
 * to run (any session may SET them; every query is parameterised, so no caller's text becomes SQL).
 */
import { sql } from 'kysely';
import type { Db, Tx } from './database.js';

export const SCOPE_SETTING = 'kcp.scope';
export const TENANT_SETTING = 'kcp.tenant_id';

/** The scope a whole session can have; a tenant's is only ever a transaction's (`inTenantScope`). */
export type DbScope = 'platform';

/** pg's `options` start-up parameter that gives a connection's whole session `scope`. */
export function sessionOptions(scope: DbScope): string {
  return `-c ${SCOPE_SETTING}=${scope}`;
}

/**
 * Run `fn` in a read-only transaction that sees only `tenantId`'s rows: the platform scope of the
 * pooled session is switched off and the tenant set, both for this transaction only (SET LOCAL ends
 * with it, committed or not, so nothing outlives the request on the pooled connection).
 */
export async function inTenantScope<T>(db: Db, tenantId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db
    .transaction()
    .setAccessMode('read only')
    .execute(async (tx) => {
      await sql`SELECT set_config(${SCOPE_SETTING}, 'tenant', true), set_config(${TENANT_SETTING}, ${tenantId}, true)`.execute(tx);
      return fn(tx);
    });
}

/**
 * Whether this connection's role skips row-level security (a superuser, or BYPASSRLS): then tenant
 * isolation is the application's alone, which start-up warns about.
 */
export async function rowSecurityBypassed(db: Db): Promise<boolean> {
  const r = await sql<{ bypassed: boolean }>`SELECT rolsuper OR rolbypassrls AS bypassed FROM pg_roles WHERE rolname = current_user`.execute(db);
  return r.rows[0]?.bypassed ?? false;
}
