/**
 * The pure core stays pure: domain/ imports nothing that does I/O and nothing from the outer layers,
 * so it can be tested with tables and properties alone. Checked on the import lines of every file.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/project-root.js';

const src = path.join(projectRoot(), 'control-plane', 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function imports(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

const FORBIDDEN_IN_CORE = [/^pg$/, /^kysely/, /^ioredis/, /^hono/, /^@hono\//, /^pino/, /^undici/, /^smtp-server/, /^nodemailer/, /^mailparser/, /^node:(fs|net|http|https|tls|dgram|child_process|worker_threads)/];

describe('architecture', () => {
  // the pure core: domain logic and the policy renderer
  const core = [...files(path.join(src, 'domain')), ...files(path.join(src, 'render'))].filter((f) => !f.endsWith('.test.ts'));

  it('finds the core files (the check is not vacuous)', () => {
    expect(core.length).toBeGreaterThan(5);
  });

  it.each(core.map((f) => [path.relative(src, f)]))('%s imports no I/O and no outer layer', (rel) => {
    const file = path.join(src, rel);
    for (const spec of imports(file)) {
      expect(FORBIDDEN_IN_CORE.some((re) => re.test(spec)), `${rel} imports ${spec}`).toBe(false);
      if (spec.startsWith('.')) {
        const target = path.relative(src, path.resolve(path.dirname(file), spec));
        const inside = target.startsWith('domain') || (rel.startsWith('render') && target.startsWith('render'));
        expect(inside, `${rel} reaches outside the core: ${spec}`).toBe(true);
      }
    }
  });

  it('the core reads no clock and no randomness directly', () => {
    for (const f of core) {
      const text = readFileSync(f, 'utf8');
      expect(/\bDate\.now\(|new Date\(\)|Math\.random\(|randomBytes|randomUUID/.test(text), path.relative(src, f)).toBe(false);
    }
  });

  it('http routes never import a database or Redis driver', () => {
    for (const f of files(path.join(src, 'http'))) {
      for (const spec of imports(f)) expect(/^(pg|kysely|ioredis)$/.test(spec), `${path.relative(src, f)} imports ${spec}`).toBe(false);
    }
  });
});
