/**
 * Keyset pagination. The cursor is opaque to clients (base64url of the last row's sort key), stable
 * under concurrent inserts, and costs one index range scan however deep the page. Timestamps travel
 * as integer microseconds because a JS Date would round PostgreSQL's precision away and skip rows
 * created in the same millisecond (every row of one transaction shares its now()).
 */
import { sql, type RawBuilder } from 'kysely';
import { AppError } from '../domain/shared/errors.js';

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** Select this as `_k` next to a (created_at, id)-ordered list. */
export const sortKey = (table: string): RawBuilder<string> =>
  sql<string>`(extract(epoch from ${sql.ref(`${table}.created_at`)}) * 1000000)::bigint::text`;

function keysetBound(table: string, cursor: string | undefined, op: '>' | '<'): RawBuilder<boolean> | null {
  const c = decodeCursor(cursor);
  if (!c) return null;
  return sql<boolean>`(${sql.ref(`${table}.created_at`)}, ${sql.ref(`${table}.id`)}) ${sql.raw(op)} (timestamptz 'epoch' + ${c[0]}::bigint * interval '1 microsecond', ${c[1]}::uuid)`;
}

/** `(created_at, id) > cursor`, or null for the first page. */
export const afterCursor = (table: string, cursor: string | undefined): RawBuilder<boolean> | null => keysetBound(table, cursor, '>');

/** `(created_at, id) < cursor`, for lists shown newest first; null for the first page. */
export const beforeCursor = (table: string, cursor: string | undefined): RawBuilder<boolean> | null => keysetBound(table, cursor, '<');

export function encodeCursor(key: string, id: string): string {
  return Buffer.from(JSON.stringify([key, id]), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): [string, string] | null {
  if (!cursor) return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && /^-?\d{1,20}$/.test(v[0]) && typeof v[1] === 'string' && /^[0-9a-f-]{1,36}$/.test(v[1])) {
      return [v[0], v[1]];
    }
  } catch {
    // fall through to the typed error
  }
  throw new AppError('VALIDATION_FAILED', 'cursor is not one this API issued', { fields: [{ path: 'query.cursor', message: 'invalid cursor' }] });
}

/** Rows fetched as `limit + 1`, each with its `_k`; returns the page without `_k`. */
export function toPage<T extends { id: string; _k: string }>(rows: T[], limit: number): Page<Omit<T, '_k'>> {
  const more = rows.length > limit;
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items: items.map(({ _k, ...rest }) => rest),
    next_cursor: more && last ? encodeCursor(last._k, last.id) : null,
  };
}

/** For append-only tables keyed by a bigint identity: the id after which (or before which) to continue. */
export function cursorId(cursor: string | undefined): string | null {
  const c = decodeCursor(cursor);
  return c ? c[1] : null;
}

/** Rows fetched as `limit + 1` in id order: the page and the cursor for the next one. */
export function pageById<T extends { id: string | number }>(rows: T[], limit: number): { items: T[]; next_cursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, next_cursor: rows.length > limit && last ? encodeCursor('0', String(last.id)) : null };
}
