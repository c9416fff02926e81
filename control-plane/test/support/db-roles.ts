/**
 * The database roles on a cluster the tests (and benchmarks) may administer: kcp_owner owns the schema
 * and runs the migrations, kcp_app is what the application connects as (no superuser, no BYPASSRLS,
 * owner of nothing, so row-level security holds for it). Roles are cluster-wide, so they are made
 * idempotently, with passwords derived from the superuser's: scripts/services.sh derives the same ones
 * for scripts/run.sh, and two test runs at once agree without sharing a file.
 */
import { createHmac } from 'node:crypto';
import pg from 'pg';

export const OWNER_ROLE = 'kcp_owner';
export const APP_ROLE = 'kcp_app';
export type DbRole = typeof OWNER_ROLE | typeof APP_ROLE;

/** The URL that administers the cluster: KCP_PG_ADMIN_URL (scripts/services.sh) or, as before it, DATABASE_URL. */
export function adminDatabaseUrl(): string | undefined {
  return process.env.KCP_PG_ADMIN_URL || process.env.DATABASE_URL;
}

/** HMAC-SHA256 of `kcp-role:<role>` under the superuser's password, hex (as scripts/services.sh). */
export function rolePassword(adminUrl: string, role: DbRole): string {
  return createHmac('sha256', decodeURIComponent(new URL(adminUrl).password)).update(`kcp-role:${role}`).digest('hex');
}

/** `adminUrl` as `role` on `database`. */
export function roleUrl(adminUrl: string, role: DbRole, database: string): string {
  const u = new URL(adminUrl);
  u.username = role;
  u.password = rolePassword(adminUrl, role);
  u.pathname = `/${database}`;
  return u.toString();
}

const LOCK_KEY = 0x6b637072; // 'kcpr'

/** Both roles exist with their derived passwords and no privilege that would skip row-level security. */
export async function ensureDbRoles(adminUrl: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    for (const role of [OWNER_ROLE, APP_ROLE] as const) {
      const exists = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
      if (exists.rowCount === 0) await c.query(`CREATE ROLE ${role}`);
      // the password is hex, so it needs no escaping beyond the quotes
      await c.query(`ALTER ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD '${rolePassword(adminUrl, role)}'`);
    }
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    await c.end();
  }
}
