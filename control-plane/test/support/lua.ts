/**
 * Runs Lua chunks in a real Lua 5.4 (Debian's lua5.4, installed by scripts/ensure-test-tools.sh) and
 * brings back what they return as JSON, so tests compare rendered Lua with the values it came from.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/project-root.js';
import { kumoRelease } from './kumo-release.js';

export const LUA = process.env.LUA_BIN ?? 'lua5.4';

export interface LuaRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run a Lua 5.4 script with the double and the node runtime on its path, and KumoMTA's policy-extras
 * of the release under test (kumoRelease().shareDir) when there is one.
 */
export function runLua(script: string, args: string[] = [], env: Record<string, string> = {}): LuaRun {
  const dir = mkdtempSync(path.join(tmpdir(), 'kcp-lua-'));
  const file = path.join(dir, 'main.lua');
  writeFileSync(file, script);
  const share = kumoRelease().shareDir;
  const paths = [path.join(projectRoot(), 'lua-policy', 'test', '?.lua'), path.join(projectRoot(), 'lua-policy', 'src', '?.lua'), ...(share ? [path.join(share, '?.lua')] : [])];
  const r = spawnSync(LUA, [file, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env, LUA_PATH: `${paths.join(';')};;` },
  });
  if (r.error) throw new Error(`cannot run ${LUA}: ${r.error.message} (bash scripts/ensure-test-tools.sh installs it)`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Evaluate `return <chunk>` (a data module) in Lua 5.4 and decode the value it returns. */
export function evalLuaData(chunk: string): unknown {
  const dir = mkdtempSync(path.join(tmpdir(), 'kcp-lua-'));
  const mod = path.join(dir, 'data.lua');
  writeFileSync(mod, chunk);
  const r = runLua(
    `local json = require 'json'
     local f = assert(loadfile(arg[1], 't', {}))
     io.write(json.encode(f()))`,
    [mod],
  );
  if (r.status !== 0) throw new Error(`lua5.4 failed: ${r.stderr}`);
  return JSON.parse(r.stdout, (_k, v) => (v && typeof v === 'object' && '$float' in v ? { float: v.$float } : v));
}
