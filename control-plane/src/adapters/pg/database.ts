/**
 * PostgreSQL access: one pg pool per process wrapped by Kysely, plus the translation of driver errors
 * into typed AppErrors (unique violations become 409 CONFLICT, check violations 400, and so on), so
 * the API never leaks a raw driver message.
 */
import { Kysely, PostgresDialect, type Transaction } from 'kysely';
import pg from 'pg';
import { AppError } from '../../domain/shared/errors.js';
import type { Database } from './tables.js';

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;

// int8 (bigint identities, counts) as string keeps precision; the API layer converts where safe
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => v);
// a calendar day is a day, not a midnight in this process's time zone
pg.types.setTypeParser(pg.types.builtins.DATE, (v: string) => v);

export function createDb(url: string, max: number, onQuery?: (seconds: number) => void): { db: Db; pool: pg.Pool } {
  const pool = new pg.Pool({ connectionString: url, max, idleTimeoutMillis: 30_000, application_name: 'kumo-control-plane' });
  // an idle client losing its connection must not crash the process; the pool replaces it
  pool.on('error', () => {});
  return {
    db: new Kysely<Database>({
      dialect: new PostgresDialect({ pool }),
      // every query's duration, errors included, for kcp_db_query_duration_seconds
      ...(onQuery ? { log: (event: { queryDurationMillis: number }) => onQuery(event.queryDurationMillis / 1000) } : {}),
    }),
    pool,
  };
}

interface PgError {
  code?: string;
  constraint?: string;
  detail?: string;
  table?: string;
  column?: string;
}

/** Map a PostgreSQL error to an AppError where it describes the caller's mistake; rethrow otherwise. */
export function translatePgError(e: unknown): never {
  const pgErr = e as PgError;
  switch (pgErr?.code) {
    case '23505':
      throw new AppError('CONFLICT', `already exists (${pgErr.constraint ?? 'unique constraint'})`, {
        context: { constraint: pgErr.constraint },
        cause: e,
      });
    case '23P01':
      // an exclusion constraint (overlapping submission networks); which row it overlaps may belong
      // to another tenant, so it is not named
      throw new AppError('CONFLICT', `overlaps an existing entry (${pgErr.constraint ?? 'exclusion constraint'})`, {
        context: { constraint: pgErr.constraint },
        cause: e,
      });
    case '23503':
      throw new AppError('CONFLICT', `still referenced, or refers to something missing (${pgErr.constraint ?? 'foreign key'})`, {
        context: { constraint: pgErr.constraint },
        cause: e,
      });
    case '23514':
    case '23502':
    case '22P02':
    case '22001':
      throw new AppError('VALIDATION_FAILED', `rejected by the database (${pgErr.constraint ?? pgErr.column ?? pgErr.code})`, {
        context: { constraint: pgErr.constraint },
        cause: e,
      });
    case '57014':
    case '57P01':
    case '08006':
    case '08001':
      throw new AppError('DEPENDENCY_UNAVAILABLE', 'PostgreSQL is unavailable', { cause: e });
    default:
      throw e;
  }
}

/** Run `fn` in a transaction, translating constraint violations. */
export async function inTransaction<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  try {
    return await db.transaction().execute(fn);
  } catch (e) {
    if (e instanceof AppError) throw e;
    translatePgError(e);
  }
}
