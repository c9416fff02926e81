/**
 * Operator command line for what must work before any API token exists.
 *   cli operator:create --email a@b.c --name "A B" [--scopes admin]   prints a new token once
 */
import { parseArgs } from 'node:util';
import { createContext } from '../context.js';
import { createOperator, createOperatorToken } from '../app/api-tokens.js';
import { systemCaller } from '../app/actor.js';
import type { TokenScope } from '../adapters/pg/tables.js';
import { loadConfigOrExit } from './load-config.js';

const [command, ...rest] = process.argv.slice(2);
if (command !== 'operator:create') {
  process.stderr.write('usage: cli operator:create --email EMAIL --name NAME [--scopes read,write,admin]\n');
  process.exit(2);
}
const { values } = parseArgs({ args: rest, options: { email: { type: 'string' }, name: { type: 'string' }, scopes: { type: 'string', default: 'admin' } } });
if (!values.email || !values.name) {
  process.stderr.write('--email and --name are required\n');
  process.exit(2);
}
const scopes = values.scopes.split(',') as TokenScope[];
if (scopes.some((s) => !['read', 'write', 'admin'].includes(s))) {
  process.stderr.write('--scopes takes read, write and/or admin\n');
  process.exit(2);
}
const ctx = await createContext(loadConfigOrExit(), {});
try {
  const caller = systemCaller('cli');
  const op = await createOperator(ctx, caller, { email: values.email, name: values.name });
  const token = await createOperatorToken(ctx, caller, op.id, { name: 'cli', scopes });
  process.stdout.write(`operator ${op.id} created; token (shown once):\n${token.token}\n`);
} finally {
  await ctx.close();
}
