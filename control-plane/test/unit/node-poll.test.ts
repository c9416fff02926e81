/** The node's policy pull (cp_pull.poll_once) in Lua 5.4 against scripted control-plane answers. */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/project-root.js';
import { runLua } from '../support/lua.js';
import { kumoRelease } from '../support/kumo-release.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const rawPublic = (publicKey.export({ type: 'spki', format: 'der' }) as Buffer).subarray(12).toString('hex');
const OLD = readFileSync(path.join(projectRoot(), 'lua-policy/golden/small-fleet.lua'), 'utf8');
const NEW = readFileSync(path.join(projectRoot(), 'lua-policy/golden/standard-only-node.lua'), 'utf8');
const sha256 = (t: string) => createHash('sha256').update(t).digest('hex');
const share = kumoRelease().shareDir;

interface Answer {
  status?: number;
  body?: string;
  signature?: string | null;
  error?: string;
  /** the JSON the keys endpoint answers; when set, the pull also syncs DKIM keys */
  keys?: unknown;
}

interface Setup {
  /** what generated.lua holds before the pull, and whether its hash was recorded (it was verified) */
  current?: { text: string; verified: boolean } | null;
  /** a verified last known good copy */
  lkg?: string;
  /** the reason of the last failed install, which the pull reports */
  installError?: string;
}

function poll(answer: Answer, setup: Setup = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'kcp-poll-'));
  const current = setup.current === undefined ? { text: OLD, verified: true } : setup.current;
  if (current) {
    writeFileSync(path.join(dir, 'generated.lua'), current.text);
    if (current.verified) writeFileSync(path.join(dir, 'generated.lua.sha256'), `${sha256(current.text)}\n`);
  }
  if (setup.lkg) {
    writeFileSync(path.join(dir, 'last-known-good.lua'), setup.lkg);
    writeFileSync(path.join(dir, 'last-known-good.lua.sha256'), `${sha256(setup.lkg)}\n`);
  }
  const body = answer.body ?? NEW;
  writeFileSync(path.join(dir, 'answer.lua'), body);
  if (answer.keys !== undefined) writeFileSync(path.join(dir, 'keys.json'), JSON.stringify(answer.keys).replaceAll('DIR', dir));
  const signature = answer.signature === undefined ? sign(null, Buffer.from(body), privateKey).toString('base64') : answer.signature;
  const r = runLua(
    `local json = require 'json'
     local double = require 'kumo_double'
     local kumo = double.install()
     local cp_pull = require 'cp_pull'
     local dir = arg[1]
     local f = assert(io.open(dir .. '/answer.lua', 'rb')); local body = f:read('a'); f:close()
     local headers = { ETag = '"new-etag"' }
     ${signature === null ? '' : `headers['X-KCP-Signature'] = ${JSON.stringify(signature)}`}
     double.http_responses = { ${answer.error ? `{ error = '${answer.error}' }` : `{ status = ${answer.status ?? 200}, headers = headers, body = body }`} }
     ${answer.keys === undefined ? '' : `local kf = assert(io.open(dir .. '/keys.json')); table.insert(double.http_responses, { status = 200, body = kf:read('a') }); kf:close()`}
     local pk = ('${rawPublic}'):gsub('%x%x', function(h) return string.char(tonumber(h, 16)) end)
     local r = cp_pull.poll_once { url = 'https://cp.example/v1/nodes/n1/policy', token = 'node_abc', public_key = pk,
       generated = dir .. '/generated.lua', last_known_good = dir .. '/last-known-good.lua',
       ${answer.keys === undefined ? '' : "keys_url = 'https://cp.example/v1/nodes/n1/dkim-keys', key_dir = dir .. '/dkim',"}
       ${setup.installError === undefined ? '' : `install_error = ${JSON.stringify(setup.installError)},`} }
     local bumps = 0
     for _, c in ipairs(double.calls) do if c.name == 'bump_config_epoch' then bumps = bumps + 1 end end
     io.write(json.encode { result = r, request = double.requests[1], bumps = bumps })`,
    [dir],
  );
  if (r.status !== 0) throw new Error(r.stderr);
  const out = JSON.parse(r.stdout);
  const read = (f: string) => (existsSync(path.join(dir, f)) ? readFileSync(path.join(dir, f), 'utf8') : null);
  return { ...out, dir, generated: read('generated.lua'), generatedHash: read('generated.lua.sha256'), lkg: read('last-known-good.lua'), lkgHash: read('last-known-good.lua.sha256') };
}

describe.skipIf(!share)('node policy pull', () => {
  it('installs a correctly signed module atomically with its hash, keeps the verified previous one as last known good, and reloads', () => {
    const r = poll({});
    expect(r.result).toEqual({ status: 'updated' });
    // the ETag of what it runs: the content hash the control plane uses too
    expect(r.request).toEqual({
      url: 'https://cp.example/v1/nodes/n1/policy',
      method: 'GET',
      // and what it runs, which is what the control plane counts as applied
      headers: { Authorization: 'Bearer node_abc', 'If-None-Match': `"${sha256(OLD)}"`, 'X-KCP-Running-SHA256': sha256(OLD), 'X-KCP-Running-Copy': 'generated' },
    });
    expect(r.generated).toBe(NEW);
    expect(r.generatedHash).toBe(`${sha256(NEW)}\n`);
    expect(r.lkg).toBe(OLD);
    expect(r.lkgHash).toBe(`${sha256(OLD)}\n`);
    expect(r.bumps).toBe(1);
  });

  it.each<[string, Setup, string, string | null]>([
    ['the installed module', {}, 'generated', sha256(OLD)],
    ['its last known good copy when the installed one was altered', { current: { text: `${OLD}-- altered`, verified: false }, lkg: NEW }, 'last_known_good', sha256(NEW)],
    ['none when nothing verified is on disk', { current: { text: OLD, verified: false } }, 'none', null],
  ])('reports as running %s', (_n, setup, copy, hash) => {
    const r = poll({ status: 304 }, setup);
    expect(r.request.headers['X-KCP-Running-Copy']).toBe(copy);
    expect(r.request.headers['X-KCP-Running-SHA256']).toBe(hash ?? 'none');
  });

  it("reports how many messages its kumod holds, from its own /metrics, and pulls without it when that cannot be read", () => {
    const pull = (metrics: string) =>
      runLua(
        `local json = require 'json'
         local double = require 'kumo_double'
         local kumo = double.install()
         local cp_pull = require 'cp_pull'
         double.http_responses = { ${metrics}, { status = 304 } }
         local r = cp_pull.poll_once { url = 'https://cp.example/v1/nodes/n1/policy', token = 'node_abc', public_key = ('\\0'):rep(32),
           generated = '/nonexistent/generated.lua', last_known_good = '/nonexistent/lkg.lua', metrics_url = 'http://127.0.0.1:8000/metrics' }
         io.write(json.encode { result = r, requests = double.requests })`,
      );
    const ok = pull("{ status = 200, body = '# HELP message_count total number of Message objects\\n# TYPE message_count gauge\\nmessage_count 7\\n' }");
    expect(ok.status, ok.stderr).toBe(0);
    const out = JSON.parse(ok.stdout);
    expect(out.requests.map((r: { url: string }) => r.url)).toEqual(['http://127.0.0.1:8000/metrics', 'https://cp.example/v1/nodes/n1/policy']);
    // the token goes to the control plane only
    expect(out.requests[0].headers.Authorization).toBeUndefined();
    expect(out.requests[1].headers['X-KCP-Queued-Messages']).toBe('7');
    expect(out.result.status).toBe('unchanged');
    const broken = JSON.parse(pull("{ status = 500, body = 'oops' }").stdout);
    expect(broken.requests[1].headers['X-KCP-Queued-Messages']).toBeUndefined();
    expect(broken.result.status).toBe('unchanged');
  });

  it('the pull loop reads the queue count on its first pull and then every 30 s, not on every pull', () => {
    const r = runLua(
      `local json = require 'json'
       local double = require 'kumo_double'
       double.install()
       local cp_pull = require 'cp_pull'
       double.http_responses = { { status = 200, body = 'message_count 3\\n' }, { status = 304 }, { status = 304 }, { status = 304 } }
       local sleeps = 0
       double.on_sleep = function() sleeps = sleeps + 1; if sleeps == 3 then error('stop') end end
       pcall(cp_pull.run, { url = 'https://cp/v1/nodes/n1/policy', token = 't', public_key_hex = '00', interval_seconds = 5,
         metrics_url = 'http://127.0.0.1:8000/metrics', generated = '/nonexistent/g.lua', last_known_good = '/nonexistent/l.lua' })
       io.write(json.encode { requests = double.requests })`,
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { requests: { url: string; headers: Record<string, string> }[] };
    // three pulls within a second: one read of /metrics, before the first
    expect(out.requests.map((q) => q.url)).toEqual(['http://127.0.0.1:8000/metrics', 'https://cp/v1/nodes/n1/policy', 'https://cp/v1/nodes/n1/policy', 'https://cp/v1/nodes/n1/policy']);
    expect(out.requests.map((q) => q.headers['X-KCP-Queued-Messages'] ?? null)).toEqual([null, '3', null, null]);
  });

  it('reports why its last install failed, as one printable line', () => {
    const r = poll({ status: 304 }, { installError: 'module refused: tenant t1: bad\ntier \t\u00e9 x'.padEnd(400, '!') });
    const sent: string = r.request.headers['X-KCP-Install-Error'];
    expect(sent).toMatch(/^module refused: tenant t1: bad tier +x!+$/);
    expect(sent).toMatch(/^[\x20-\x7e]+$/);
    expect(sent.length).toBe(300);
  });

  it('the pull loop pulls again right after an install, reporting the new module; a refused module is reported on the next pulls', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kcp-loop-'));
    writeFileSync(path.join(dir, 'generated.lua'), OLD);
    writeFileSync(path.join(dir, 'generated.lua.sha256'), `${sha256(OLD)}\n`);
    writeFileSync(path.join(dir, 'new.lua'), NEW);
    const good = sign(null, Buffer.from(NEW), privateKey).toString('base64');
    const r = runLua(
      `local json = require 'json'
       local double = require 'kumo_double'
       double.install()
       local cp_pull = require 'cp_pull'
       local dir = arg[1]
       local f = assert(io.open(dir .. '/new.lua', 'rb')); local body = f:read('a'); f:close()
       double.http_responses = {
         { status = 200, headers = { ['X-KCP-Signature'] = ${JSON.stringify(good)} }, body = body },
         { status = 304 },
         { status = 200, headers = { ['X-KCP-Signature'] = 'AAAA' }, body = 'return {}' },
         { status = 304 },
       }
       local sleeps = {}
       double.on_sleep = function(s)
         sleeps[#sleeps + 1] = #double.requests
         if #sleeps == 3 then error('stop') end
       end
       local ok = pcall(cp_pull.run, { url = 'https://cp/v1/nodes/n1/policy', token = 't', public_key_hex = '${rawPublic}', interval_seconds = 5,
         generated = dir .. '/generated.lua', last_known_good = dir .. '/last-known-good.lua' })
       io.write(json.encode { requests = double.requests, sleeps = sleeps })`,
      [dir],
    );
    if (r.status !== 0) throw new Error(r.stderr);
    const out = JSON.parse(r.stdout) as { requests: { headers: Record<string, string> }[]; sleeps: number[] };
    // install, then at once the pull that reports it; only then the interval
    expect(out.sleeps).toEqual([2, 3, 4]);
    expect(out.requests[0]!.headers['X-KCP-Running-SHA256']).toBe(sha256(OLD));
    expect(out.requests[1]!.headers['X-KCP-Running-SHA256']).toBe(sha256(NEW));
    expect(out.requests[1]!.headers['X-KCP-Install-Error']).toBeUndefined();
    // the third pull was refused (bad signature): the fourth says why, and the node still runs NEW
    expect(out.requests[3]!.headers['X-KCP-Install-Error']).toContain('signature does not verify');
    expect(out.requests[3]!.headers['X-KCP-Running-SHA256']).toBe(sha256(NEW));
  });

  it('a current module altered on disk since it was verified never becomes the last known good', () => {
    const r = poll({}, { current: { text: OLD.replace("'203.0.113.10'", "'198.51.100.66'"), verified: false } });
    expect(r.result.status).toBe('updated');
    expect(r.generated).toBe(NEW);
    expect(r.lkg).toBeNull();
    // and it was not offered as the ETag either: the node asked for the module again
    expect(r.request.headers['If-None-Match']).toBeUndefined();
  });

  it('a current module that verified but no longer passes the checks does not become the last known good', () => {
    const old = OLD.replace("tier = 'standard'", "tier = 'gold'");
    const r = poll({}, { current: { text: old, verified: true } });
    expect(r.result.status).toBe('updated');
    expect(r.lkg).toBeNull();
  });

  it('writes the DKIM keys as separate files before installing a module that names them', () => {
    const pem = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n';
    const r = poll({ keys: { keys: [{ domain: 'acme.example', selector: 'kcp1', algorithm: 'rsa-sha256', path: 'DIR/dkim/acme.example/kcp1.key', private_key_pem: pem }] } });
    expect(r.result.status).toBe('updated');
    expect(readFileSync(path.join(r.dir, 'dkim/acme.example/kcp1.key'), 'utf8')).toBe(pem);
    expect(r.generated).toBe(NEW);
  });

  it('refuses key paths outside the key directory, and then installs nothing', () => {
    const r = poll({ keys: { keys: [{ domain: 'x', selector: 'y', algorithm: 'rsa-sha256', path: 'DIR/dkim/../../escape.key', private_key_pem: 'x' }] } });
    expect(r.result).toMatchObject({ status: 'failed' });
    expect(r.result.reason).toContain('refusing key path');
    expect(r.generated).toBe(OLD);
    expect(existsSync(path.join(r.dir, 'escape.key'))).toBe(false);
  });

  it('304: nothing changes', () => {
    const r = poll({ status: 304 });
    expect(r.result).toEqual({ status: 'unchanged' });
    expect(r.generated).toBe(OLD);
    expect(r.bumps).toBe(0);
  });

  it.each<[string, Answer, string]>([
    ['a forged signature', { signature: sign(null, Buffer.from('something else'), privateKey).toString('base64') }, 'signature does not verify'],
    ['a signature that is not base64', { signature: 'not base64!' }, 'signature does not verify'],
    ['no signature', { signature: null }, 'unsigned'],
    ['a signed module that is not valid policy, with every problem named', { body: NEW.replace("tier = 'premium'", "tier = 'gold'").replace("weight = 100", "weight = 'heavy'") }, 'gold'],
    ['a signed module of an older format', { body: 'return { format = 1 }' }, 'unsupported format'],
    ['a signed module that tries to run code', { body: "os.execute('touch /tmp/kcp-pwned') return {}" }, 'module refused'],
    ['a server error', { status: 500 }, 'answered 500'],
    ['an unreachable control plane', { error: 'connection refused' }, 'connection refused'],
  ])('%s leaves the node on what it has', (_n, answer, reason) => {
    const r = poll(answer);
    expect(r.result.status).toBe('failed');
    expect(r.result.reason).toContain(reason);
    expect(r.generated).toBe(OLD);
    expect(r.generatedHash).toBe(`${sha256(OLD)}\n`);
    expect(r.lkg).toBeNull();
    expect(r.bumps).toBe(0);
  });

  it('names every problem of a refused module, not just the first', () => {
    const r = poll({ body: NEW.replace("tier = 'premium'", "tier = 'gold'").replace("weight = 100", "weight = 'heavy'") });
    expect(r.result.reason).toMatch(/tenant .*gold/);
    expect(r.result.reason).toMatch(/pool .*weight/);
  });
});
