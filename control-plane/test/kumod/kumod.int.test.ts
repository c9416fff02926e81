/**
 * The same bootstrap, runtime and generated module in a real kumod, when KUMOD_BIN names one:
 *   - `kumod --policy init.lua --validate` (runs init and every validate_config handler);
 *   - `kumod --policy script.lua --script`, whose `main` resolves queue configs, pools, sources and
 *     paths through kumod's own invoke_get_* functions, so kumod's type checks see our values.
 * KumoMTA cannot be built here, so without KUMOD_BIN this suite says loudly that it did not run.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/project-root.js';

const KUMOD = process.env.KUMOD_BIN;
if (!KUMOD) {
  process.stderr.write('\n[kumod] SKIPPED: KUMOD_BIN is not set, so the real-kumod checks (--validate of the node bootstrap, and a --script run resolving queue, pool, source and path configs through kumod) did not run. Point KUMOD_BIN at a kumod binary to run them.\n\n');
}

function stage(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'kcp-kumod-'));
  copyFileSync(path.join(projectRoot(), 'mta-nodes/policy/init.lua'), path.join(dir, 'init.lua'));
  copyFileSync(path.join(projectRoot(), 'lua-policy/src/cp_runtime.lua'), path.join(dir, 'cp_runtime.lua'));
  copyFileSync(path.join(projectRoot(), 'lua-policy/golden/small-fleet.lua'), path.join(dir, 'generated.lua'));
  return dir;
}

function kumod(dir: string, args: string[]) {
  return spawnSync(KUMOD!, ['--user', userInfo().username, ...args], {
    encoding: 'utf8',
    env: { ...process.env, KCP_POLICY_DIR: dir, KUMOD_LOG: 'error,lua=info' },
    timeout: 60_000,
  });
}

describe.skipIf(!KUMOD)('policy in a real kumod (KUMOD_BIN)', () => {
  it('--validate accepts the bootstrap with a generated module', () => {
    const dir = stage();
    const r = kumod(dir, ['--policy', path.join(dir, 'init.lua'), '--validate']);
    expect(r.status, r.stderr).toBe(0);
  });

  it('--script: kumod resolves our configs with its own types', () => {
    const dir = stage();
    writeFileSync(
      path.join(dir, 'script.lua'),
      `local kumo = require 'kumo'
dofile('${path.join(dir, 'init.lua')}')
kumo.on('main', function()
  local qc = kumo.invoke_get_queue_config('11111111-1111-4111-8111-111111111111@gmail.com')
  assert(tostring(qc.egress_pool):match('^premium%-'), 'premium pool expected')
  local pool = kumo.invoke_get_egress_pool(qc.egress_pool)
  local src = kumo.invoke_get_egress_source('ip-203-0-113-30')
  local path = kumo.invoke_get_egress_path_config('gmail.com', 'ip-203-0-113-30', 'gmail-smtp-in.l.google.com')
  print('ok', qc.egress_pool, pool ~= nil, src ~= nil, path ~= nil)
end)
`,
    );
    const r = kumod(dir, ['--policy', path.join(dir, 'script.lua'), '--script']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('ok');
  });
});
