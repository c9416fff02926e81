/** The checkout's root (where schema.sql lives), found from this file so it works from src/ and dist/. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function projectRoot(): string {
  if (cached) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'schema.sql')) && existsSync(path.join(dir, 'package.json'))) return (cached = dir);
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the project root (schema.sql) above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}
