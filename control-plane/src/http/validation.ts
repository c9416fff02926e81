/**
 * The answer to a request that does not validate: one problem document listing every bad field. A
 * request that does validate is also refused (400) when it holds text PostgreSQL cannot store (a NUL
 * character, which neither text nor jsonb accepts): checked here for every route, so that no route
 * can forget it and no NUL reaches a query as a 500.
 *
 * The one exception is a body whose items are validated one by one (KumoMTA's log records): there a
 * bad item must cost only itself, so the route uses `validationHook({ storableText: false })` and its
 * parser refuses such an item with its index.
 */
import type { Hook } from '@hono/zod-openapi';
import type { FieldProblem } from '../domain/shared/errors.js';
import type { HonoEnv } from './env.js';
import { problem } from './problem.js';

/** Where `value` holds a NUL character, as paths like those of validation problems. */
export function unstorableTextPaths(value: unknown, path: string, out: string[] = []): string[] {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) out.push(path);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => unstorableTextPaths(v, `${path}.${i}`, out));
  } else if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    for (const [k, v] of Object.entries(value)) {
      if (k.includes('\u0000')) out.push(`${path}.${k.replace(/\u0000/g, '\\u0000')}`);
      unstorableTextPaths(v, `${path}.${k}`, out);
    }
  }
  return out;
}

/** The hook for every route (its input type differs per route, hence any). */
export function validationHook(opts: { storableText: boolean }): Hook<any, HonoEnv, any, any> {
  return (result, c) => {
    const fields: FieldProblem[] = result.success
      ? opts.storableText
        ? unstorableTextPaths(result.data, result.target).map((path) => ({ path, message: 'contains a NUL character, which cannot be stored' }))
        : []
      : result.error.issues.map((i) => ({ path: [result.target, ...i.path.map(String)].join('.'), message: i.message }));
    if (fields.length === 0) return undefined;
    const doc = problem('VALIDATION_FAILED', fields.length === 1 ? `${fields[0]!.path}: ${fields[0]!.message}` : `${fields.length} fields are invalid`, c.req.path, c.var.requestId ?? null, { errors: fields });
    return c.json(doc, 400, { 'content-type': 'application/problem+json' });
  };
}
