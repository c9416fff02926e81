/** The README is part of the contract: every setting documented, and CI runs the README's test command. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config/config.js';
import { projectRoot } from '../../src/project-root.js';

const readme = readFileSync(path.join(projectRoot(), 'README.md'), 'utf8');

describe('README', () => {
  it.each(Object.keys(SETTINGS))('documents %s in the configuration table', (name) => {
    expect(readme).toMatch(new RegExp(`^\\| \`${name}\` \\|`, 'm'));
  });

  it('documents no setting that does not exist', () => {
    const documented = [...readme.matchAll(/^\| `((?:CP_|DATABASE_|REDIS_)[A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(SETTINGS).sort());
  });

  it('names the test command that .ci/run runs', () => {
    const ci = readFileSync(path.join(projectRoot(), '.ci', 'run'), 'utf8');
    expect(readme).toContain('bash scripts/test.sh');
    expect(ci).toMatch(/^exec bash scripts\/test\.sh$/m);
  });
});
