/**
 * The control_plane role for real, as far as a machine without systemd allows (issue 15):
 *   1. scripts/release.sh makes the release archive: package.json, package-lock.json, schema.sql,
 *      dist/ and control-plane/migrations/, nothing else;
 *   2. the role, applied to this machine (connection local, no become, control_plane_use_systemd
 *      false, every path under a temp directory, PostgreSQL and Redis "external": the test's), unpacks
 *      the archive into releases/<first 16 hex digits of its sha256>, runs `npm ci --omit=dev` there,
 *      links current to it (and removes what the old layout, unpacked into the app dir itself, left;
 *      keeps the newest control_plane_releases_keep releases), installs the TLS files and writes the
 *      shared env file, one env file per instance (two APIs, a worker, a gateway) and the three template units:
 *      every variable the env files set is a setting of control-plane/src/config/config.ts, each
 *      instance's environment loads through the real config loader, `systemd-analyze verify` accepts
 *      the units; the role refuses an API off loopback without TLS, and its URLs carry any password;
 *   3. api-1, worker-1 and gateway-1 started from current/ exactly as their units say
 *      (WorkingDirectory, EnvironmentFile in order, Environment, UMask, ExecStart; nothing of the
 *      test's environment): the API migrates the empty database with the archive's migrations and
 *      answers /health over HTTPS, its admin token (the bootstrap file) works, the gateway greets on
 *      both submission ports, the worker runs its jobs, both answer /metrics; they write nothing into
 *      the application or configuration directories (read-only under ProtectSystem=strict) and stop
 *      on SIGTERM with status 0, as `systemctl stop` asks;
 *   4. a second run changes nothing (the release is neither unpacked nor installed again);
 *   5. upgrade and rollback: another archive goes into a directory of its own and current switches to
 *      it (the restart handler notified), the previous release stays; the first archive applied again
 *      switches back to its directory as it was (no unpack, no npm ci), what only the other had is not
 *      there, kcp-api@1 runs from it, and the current release is kept even when older than the newest
 *      control_plane_releases_keep.
 * Not here: package installs (NodeSource, PostgreSQL, Redis by apt), the user, systemd itself (reload,
 * start, enable, surplus instances, the sandboxing directives), the local PostgreSQL roles.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, SETTINGS } from '../../src/config/config.js';
import { adminDatabaseUrl, APP_ROLE, OWNER_ROLE, rolePassword } from '../support/db-roles.js';
import { eventually } from '../support/eventually.js';
import { allocateRedisDb, createTestDatabase, TEST_MASTER_KEY, TEST_POLICY_SEED, type TestDatabase } from '../support/harness.js';
import { sayWhySkipped } from '../support/kumo-release.js';
import { freePortForTest, waitForPortForTest } from '../support/ports.js';
import { SmtpDialogue } from '../support/smtp-dialogue.js';
import { issue, makeCa, type Pem } from '../support/test-pki.js';
import { ansibleDir, applyPlaybook, ensureAnsible, localUser, root, run, shown, writeLocalPlaybook, type Ansible, type Run } from './ansible-helpers.js';

const dir = mkdtempSync(path.join(tmpdir(), 'kcp-role-cp-'));
const appDir = path.join(dir, 'opt/kcp');
const currentDir = path.join(appDir, 'current');
const releasesDir = path.join(appDir, 'releases');
const etcDir = path.join(dir, 'etc/kcp');
const systemdDir = path.join(dir, 'etc/systemd/system');
const stateDir = path.join(dir, 'var/lib/kcp');
const tokenFile = path.join(stateDir, 'admin-token');
const smtpHostname = 'cp-test.example.net';
const staleRelease = '0000000000000000';
const onlyInB = 'dist/only-in-b.txt';
const pseudonymKey = 'role-test-pseudonym-key-0123456789abcdef';

let ansible: Ansible | null = null;
let db: TestDatabase | undefined;
let archive = '';
// the same release repacked with one file more: another archive, as the next release would be
let archiveB = '';
let playbookVars: Record<string, unknown> = {};
let released: Run | undefined;
let first: Run | undefined;
let refused: Run | undefined;
let defaults: Run | undefined;
let ca: Pem;
const ports = { api: 0, worker: 0, submission: 0, tls: 0, gatewayMetrics: 0 };

beforeAll(async () => {
  ansible = await ensureAnsible('the control_plane role on this machine');
  if (!ansible) return;
  db = await createTestDatabase({ empty: true });
  const redisUrl = await allocateRedisDb();
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePortForTest();
  const pki = path.join(dir, 'pki');
  mkdirSync(pki);
  ca = makeCa(pki, 'role test CA');
  const server = issue(pki, ca, { cn: smtpHostname, san: [`DNS:${smtpHostname}`, 'IP:127.0.0.1'], usage: 'server', file: 'server' });
  const { user, group } = localUser();
  const admin = adminDatabaseUrl()!;
  const vars = {
    control_plane_release_archive: '',
    control_plane_app_dir: appDir,
    // the stale release planted below is removed once two newer ones are there
    control_plane_releases_keep: 2,
    control_plane_etc_dir: etcDir,
    control_plane_systemd_dir: systemdDir,
    control_plane_use_systemd: false,
    control_plane_manage_user: false,
    control_plane_user: user,
    control_plane_group: group,
    control_plane_file_owner: user,
    control_plane_file_group: group,
    control_plane_nodejs: 'system',
    control_plane_node_bin: process.execPath,
    control_plane_bootstrap_token_file: tokenFile,
    control_plane_api_instances: 2,
    control_plane_worker_instances: 1,
    control_plane_gateway_instances: 1,
    control_plane_api_port: ports.api,
    control_plane_worker_metrics_port: ports.worker,
    control_plane_gateway_submission_port: ports.submission,
    control_plane_gateway_tls_port: ports.tls,
    control_plane_gateway_metrics_port: ports.gatewayMetrics,
    // loopback, but with the API's TLS on as off loopback (the gateway needs the files anyway)
    control_plane_http_host: '127.0.0.1',
    control_plane_smtp_host: '127.0.0.1',
    control_plane_tls_cert_src: server.cert,
    control_plane_tls_key_src: server.key,
    control_plane_smtp_hostname: smtpHostname,
    // the test's PostgreSQL as an external one: the role composes the URLs from host, name, passwords
    control_plane_postgres_local: false,
    control_plane_db_host: new URL(admin).host,
    control_plane_db_name: db.name,
    control_plane_db_owner_password: rolePassword(admin, OWNER_ROLE),
    control_plane_db_app_password: rolePassword(admin, APP_ROLE),
    control_plane_redis_local: false,
    control_plane_redis_url: redisUrl,
    control_plane_master_keys: TEST_MASTER_KEY,
    control_plane_pseudonym_key: pseudonymKey,
    control_plane_policy_signing_key: TEST_POLICY_SEED,
    control_plane_environment: { CP_NODE_CONTROL_PLANE_URL: `https://${smtpHostname}:${ports.api}`, CP_DKIM_RSA_BITS: '1024' },
  };
  const adhoc = (args: string[]) => run(path.join(ansible!.bin, 'ansible'), ['-i', 'localhost,', '-c', 'local', 'localhost', ...args], { env: { ...ansible!.env, ANSIBLE_CONFIG: '' } });
  // the archive (the longest step), and meanwhile what needs no archive
  const role = path.join(ansibleDir, 'roles/control_plane');
  [released, refused, defaults] = await Promise.all([
    run('bash', [path.join(root, 'scripts/release.sh')], { timeoutMs: 120_000 }),
    applyPlaybook(ansible, writeLocalPlaybook(dir, 'refused.yml', { ...vars, control_plane_release_archive: 'none.tgz', control_plane_http_host: '0.0.0.0', control_plane_tls_cert_src: '', control_plane_tls_key_src: '' }, [], 'control_plane')),
    // the role's defaults, with passwords of every awkward character: its URLs, the shared env, a unit
    adhoc(['-m', 'debug', '-a', `msg={{ {'urls': [control_plane_database_url, control_plane_migration_database_url, control_plane_redis_url], 'env': lookup('template', '${role}/templates/control-plane.env.j2'), 'unit': lookup('template', '${role}/templates/kcp@.service.j2')} }}`,
      '-e', `@${role}/defaults/main.yml`,
      '-e', JSON.stringify({ item: 'gateway', control_plane_db_app_password: 'a/p:p@%+ #?&=', control_plane_db_owner_password: 'o/w:n@%+ #?&=', control_plane_redis_password: 'r/e:d@%+ #?&=', control_plane_db_host: 'db.example.net:5433' })]),
  ]);
  if (released.status !== 0) throw new Error(`scripts/release.sh failed: ${shown(released)}`);
  archive = released.stdout.trim().split('\n').pop()!;
  // what exists on a host before the role runs: systemd's unit directory; StateDirectory= makes the other
  mkdirSync(systemdDir, { recursive: true });
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  // a host the role of old deployed to: every archive unpacked straight into the app dir
  mkdirSync(path.join(appDir, 'dist/control-plane/src/bin'), { recursive: true });
  writeFileSync(path.join(appDir, 'dist/control-plane/src/bin/control-plane.js'), 'old layout\n');
  writeFileSync(path.join(appDir, 'schema.sql'), 'old layout\n');
  // and an older release, unpacked a long time ago
  mkdirSync(path.join(releasesDir, staleRelease), { recursive: true });
  writeFileSync(path.join(releasesDir, staleRelease, 'schema.sql'), 'stale\n');
  utimesSync(path.join(releasesDir, staleRelease), new Date('2020-01-01'), new Date('2020-01-01'));
  playbookVars = vars;
  [first] = await Promise.all([
    applyPlaybook(ansible, writeLocalPlaybook(dir, 'cp.yml', { ...vars, control_plane_release_archive: archive }, [], 'control_plane')),
    // The second archive is not a second scripts/release.sh: that would take as long as the first, and
    // differ only by the build's timestamps (or not at all, were the build reproducible). The same
    // content repacked with one harmless file more is another archive (another sha256), and that file
    // shows that what one release has and the one run next has not stays out of it.
    (async () => {
      const unpacked = path.join(dir, 'archive-b');
      mkdirSync(unpacked);
      const x = await run('tar', ['xzf', archive, '-C', unpacked]);
      if (x.status !== 0) throw new Error(`tar xzf: ${shown(x)}`);
      writeFileSync(path.join(unpacked, onlyInB), 'only in the second archive\n');
      archiveB = path.join(dir, 'kcp-release-b.tgz');
      const c = await run('tar', ['czf', archiveB, '-C', unpacked, '--owner=0', '--group=0', 'package.json', 'package-lock.json', 'schema.sql', 'dist', 'control-plane']);
      if (c.status !== 0) throw new Error(`tar czf: ${shown(c)}`);
    })(),
  ]);
}, 240_000);

const running: Record<string, Proc> = {};

afterAll(async () => {
  await Promise.all(Object.values(running).map((p) => p.stop()));
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** systemd's EnvironmentFile= syntax, strictly: KEY=VALUE lines, # and ; comments, optional quotes. */
function envFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [i, raw] of readFileSync(file, 'utf8').split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new Error(`${file}:${i + 1}: not KEY=VALUE: ${line}`);
    env[m[1]!] = m[2]!.replace(/^"(.*)"$|^'(.*)'$/, '$1$2');
  }
  return env;
}

interface UnitRun {
  cwd: string;
  env: Record<string, string>;
  argv: string[];
  umask: string;
}

/** What systemd runs for instance `i` of `kcp-<role>@.service` as rendered: directory, environment, command. */
function asTheUnitRunsIt(role: string, i: number): UnitRun {
  const text = readFileSync(path.join(systemdDir, `kcp-${role}@.service`), 'utf8');
  const service = text.slice(text.indexOf('[Service]'), text.indexOf('[Install]'));
  const values = (key: string) => [...service.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => {
    const v = m[1]!.replaceAll('%i', String(i));
    if (v.includes('%')) throw new Error(`${key}=${v}: a specifier this test does not expand`);
    return v;
  });
  // the environment of a system service: systemd's PATH, then the files in order, then Environment=
  const env: Record<string, string> = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
  for (const f of values('EnvironmentFile')) Object.assign(env, envFile(f));
  for (const e of values('Environment')) for (const a of e.split(/\s+/)) env[a.slice(0, a.indexOf('='))] = a.slice(a.indexOf('=') + 1);
  const [cwd] = values('WorkingDirectory');
  const [exec] = values('ExecStart');
  const [umask] = values('UMask');
  return { cwd: cwd!, env, argv: exec!.split(/\s+/), umask: umask ?? '0022' };
}

interface Proc {
  child: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

function startUnit(role: string, i: number): Proc {
  const u = asTheUnitRunsIt(role, i);
  const child = spawn('/bin/sh', ['-c', 'umask "$0" && exec "$@"', u.umask, ...u.argv], { cwd: u.cwd, env: u.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-200_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const proc: Proc = {
    child,
    log: () => out,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      return exited;
    },
  };
  running[`${role}-${i}`] = proc;
  return proc;
}

/** The pino lines of a process that carry this message. */
const logged = (p: Proc, msg: string) => p.log().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);

function httpsGet(port: number, p: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path: p, servername: smtpHostname, ca: readFileSync(ca.cert), agent: false, headers: token ? { authorization: `Bearer ${token}` } : {} },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const files = (d: string) => (readdirSync(d, { recursive: true }) as string[]).sort();
/** An archive's release directory: the first 16 hex digits of its sha256. */
const releaseId = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16);
const releases = () => readdirSync(releasesDir).sort();
/** What a run of the playbook said of one of the role's tasks: ok, changed, skipping, failed, fatal. */
function outcome(r: Run, task: string): string | undefined {
  const at = r.stdout.indexOf(`TASK [control_plane : ${task}]`);
  if (at < 0) return undefined;
  return /^(ok|changed|skipping|failed|fatal)\b/m.exec(r.stdout.slice(at))?.[1];
}
const restarted = (r: Run) => r.stdout.includes('RUNNING HANDLER [control_plane : Restart the control plane]');
/** What would show that a release directory was made afresh: the inodes of its marker and node_modules. */
const inodes = (id: string) => ['.kcp-release', 'node_modules', 'dist/control-plane/src/bin/control-plane.js'].map((f) => statSync(path.join(releasesDir, id, f)).ino);
const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
const instances = [['api', 1], ['api', 2], ['worker', 1], ['gateway', 1]] as const;
const instanceEnv = (role: string, i: number) => ({ ...envFile(path.join(etcDir, 'control-plane.env')), ...envFile(path.join(etcDir, `${role}-${i}.env`)) });

describe('the control_plane role on this machine (no systemd; the release archive of scripts/release.sh)', () => {
  const skip = () => !ansible;

  it('scripts/release.sh makes .local/release/kcp-release-<version>.tgz with what the units run, and nothing else', async (ctx) => {
    if (skip()) return ctx.skip();
    const version = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version;
    expect(archive).toBe(path.join(root, `.local/release/kcp-release-${version}.tgz`));
    const list = await run('tar', ['tzf', archive]);
    expect(list.status, shown(list)).toBe(0);
    const entries = list.stdout.split('\n').filter(Boolean).map((e) => e.replace(/\/$/, ''));
    expect([...new Set(entries.map((e) => e.split('/')[0]))].sort()).toEqual(['control-plane', 'dist', 'package-lock.json', 'package.json', 'schema.sql']);
    expect(entries).toContain('dist/control-plane/src/bin/control-plane.js');
    const migrations = readdirSync(path.join(root, 'control-plane/migrations')).filter((f) => f.endsWith('.sql'));
    expect(migrations.length).toBeGreaterThan(10);
    expect(entries.filter((e) => e.startsWith('control-plane/migrations/')).map((e) => path.basename(e)).sort()).toEqual(migrations.sort());
    // tsconfig.build.json: the sources only, no tests
    expect(entries.filter((e) => e.startsWith('dist') && !e.startsWith('dist/control-plane/src/'))).toEqual(['dist', 'dist/control-plane', 'dist/control-plane/src']);
    expect(entries.filter((e) => /\.test\.js$/.test(e))).toEqual([]);
  });

  it('scripts/release.sh is reproducible: the same sources, built again, give the same bytes (so the same release id)', async (ctx) => {
    if (skip()) return ctx.skip();
    const again = path.join(dir, 'rebuilt.tgz');
    const r = await run('bash', [path.join(root, 'scripts/release.sh'), again], { timeoutMs: 120_000 });
    expect(r.status, shown(r)).toBe(0);
    const digest = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    expect(digest(again)).toBe(digest(archive));
    // and nothing of the builder's: owners, times and modes are the archive's own
    const verbose = await run('tar', ['tzvf', again]);
    const lines = verbose.stdout.split('\n').filter(Boolean);
    expect(lines.every((l) => / 0\/0 /.test(l))).toBe(true);
    expect(new Set(lines.map((l) => l.split(/\s+/).slice(3, 5).join(' '))).size).toBe(1);
  }, 120_000);

  it('applies cleanly: the archive unpacked with its production dependencies only, TLS files and env files private', (ctx) => {
    if (skip()) return ctx.skip();
    expect(first!.status, shown(first!)).toBe(0);
    expect(first!.stdout).toMatch(/localhost\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0/);
    // current, a relative link into releases/, names the archive's own directory
    expect(readlinkSync(currentDir)).toBe(`releases/${releaseId(archive)}`);
    expect(readFileSync(path.join(currentDir, '.kcp-release'), 'utf8')).toBe(`archive=${path.basename(archive)}\nsha256=${createHash('sha256').update(readFileSync(archive)).digest('hex')}\n`);
    // the older release stays (control_plane_releases_keep: 2); the old layout's files are gone
    expect(releases()).toEqual([staleRelease, releaseId(archive)].sort());
    expect(readdirSync(appDir).sort()).toEqual(['current', 'releases']);
    expect(existsSync(path.join(currentDir, 'dist/control-plane/src/bin/control-plane.js'))).toBe(true);
    expect(readFileSync(path.join(currentDir, 'schema.sql'), 'utf8')).toBe(readFileSync(path.join(root, 'schema.sql'), 'utf8'));
    // npm ci --omit=dev: every dependency, no devDependency
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
    for (const d of Object.keys(pkg.dependencies)) expect(existsSync(path.join(currentDir, 'node_modules', d, 'package.json')), d).toBe(true);
    for (const d of ['vitest', 'typescript', 'tsx']) expect(existsSync(path.join(currentDir, 'node_modules', d)), d).toBe(false);
    expect(mode(etcDir)).toBe('750');
    expect(mode(path.join(etcDir, 'control-plane.env'))).toBe('640');
    expect(mode(path.join(etcDir, 'tls/api-key.pem'))).toBe('640');
    expect(mode(path.join(etcDir, 'tls/smtp-key.pem'))).toBe('640');
    expect(files(etcDir).filter((f) => f.endsWith('.env'))).toEqual(['api-1.env', 'api-2.env', 'control-plane.env', 'gateway-1.env', 'worker-1.env']);
    expect(files(systemdDir)).toEqual(['kcp-api@.service', 'kcp-gateway@.service', 'kcp-worker@.service']);
    // no_log: the secrets never reach Ansible's output
    for (const secret of [TEST_MASTER_KEY, pseudonymKey, TEST_POLICY_SEED]) expect(first!.stdout + first!.stderr).not.toContain(secret);
  });

  it('every variable the env files set is a setting of the control plane, and each instance\'s environment loads', (ctx) => {
    if (skip()) return ctx.skip();
    for (const f of files(etcDir).filter((f) => f.endsWith('.env'))) {
      for (const k of Object.keys(envFile(path.join(etcDir, f)))) expect(Object.keys(SETTINGS), `${f}: ${k}`).toContain(k);
    }
    const expected: Record<string, { roles: string[]; port?: number; metricsPort?: number; submissionPort?: number; tlsPort?: number }> = {
      'api-1': { roles: ['api'], port: ports.api },
      'api-2': { roles: ['api'], port: ports.api + 1 },
      'worker-1': { roles: ['worker'], metricsPort: ports.worker },
      'gateway-1': { roles: ['gateway'], metricsPort: ports.gatewayMetrics, submissionPort: ports.submission, tlsPort: ports.tls },
    };
    for (const [role, i] of instances) {
      const loaded = loadConfig(instanceEnv(role, i));
      expect(loaded.ok ? [] : loaded.error, `${role}-${i}`).toEqual([]);
      if (!loaded.ok) continue;
      const c = loaded.value;
      const want = expected[`${role}-${i}`]!;
      expect(c.roles).toEqual(want.roles);
      if (want.port) expect(c.http.port).toBe(want.port);
      if (want.metricsPort) expect(c.metricsPort).toBe(want.metricsPort);
      if (want.submissionPort) expect([c.gateway.submissionPort, c.gateway.tlsPort]).toEqual([want.submissionPort, want.tlsPort]);
      // the files the role installed are the ones the env names
      expect(c.httpTls?.certFile).toBe(path.join(etcDir, 'tls/api-cert.pem'));
      expect(c.gateway.tlsCertFile).toBe(path.join(etcDir, 'tls/smtp-cert.pem'));
      expect(c.gateway.hostname).toBe(smtpHostname);
      expect(c.bootstrapTokenFile).toBe(tokenFile);
      expect(c.databaseUrl).toBe(db!.url);
      expect(c.migrationDatabaseUrl).toBe(db!.ownerUrl);
      expect(c.provisioning.nodeControlPlaneUrl).toBe(`https://${smtpHostname}:${ports.api}`);
    }
  });

  it('systemd-analyze verify accepts the units without a word', async (ctx) => {
    if (skip()) return ctx.skip();
    const which = await run('sh', ['-c', 'command -v systemd-analyze']);
    if (which.status !== 0) {
      sayWhySkipped('systemd-analyze verify of the control_plane units', 'no systemd-analyze on this machine');
      return ctx.skip();
    }
    for (const role of ['api', 'worker', 'gateway']) {
      const unit = readFileSync(path.join(systemdDir, `kcp-${role}@.service`), 'utf8');
      expect(unit).toContain(`WorkingDirectory=${currentDir}\n`);
      expect(unit).toContain(`ExecStart=${process.execPath} ${currentDir}/dist/control-plane/src/bin/control-plane.js\n`);
      expect(unit).toMatch(role === 'gateway' ? /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m : /^CapabilityBoundingSet=$/m);
      // an instance of the template, as systemctl start kcp-<role>@1 loads it
      const r = await run('systemd-analyze', ['verify', path.join(systemdDir, `kcp-${role}@1.service`)]);
      expect(r.status, `${role}: ${shown(r)}`).toBe(0);
      expect(r.stderr.trim(), `${role}: ${shown(r)}`).toBe('');
    }
  });

  it('refuses an API off loopback without TLS, and says why', (ctx) => {
    if (skip()) return ctx.skip();
    expect(refused!.status, shown(refused!)).not.toBe(0);
    expect(refused!.stdout, shown(refused!)).toContain('Check the required settings');
    expect(refused!.stdout, shown(refused!)).toContain('TLS files off loopback');
    expect(refused!.stdout).toMatch(/failed=1/);
  });

  const rendered = () => JSON.parse(defaults!.stdout.slice(defaults!.stdout.indexOf('{'))).msg as { urls: string[]; env: string; unit: string };

  it('its default URLs carry any password (urlencode, and / by hand)', (ctx) => {
    if (skip()) return ctx.skip();
    expect(defaults!.status, shown(defaults!)).toBe(0);
    const [database, migration, redis] = rendered().urls;
    const parts = (u: string) => {
      const url = new URL(u);
      return { protocol: url.protocol, user: url.username, password: decodeURIComponent(url.password), host: url.host, path: url.pathname };
    };
    expect(parts(database!)).toEqual({ protocol: 'postgres:', user: 'kcp_app', password: 'a/p:p@%+ #?&=', host: 'db.example.net:5433', path: '/kcp' });
    expect(parts(migration!)).toEqual({ protocol: 'postgres:', user: 'kcp_owner', password: 'o/w:n@%+ #?&=', host: 'db.example.net:5433', path: '/kcp' });
    expect(parts(redis!)).toEqual({ protocol: 'redis:', user: '', password: 'r/e:d@%+ #?&=', host: '127.0.0.1:6379', path: '/0' });
  });

  it('by default the API and the gateway listen on every interface, the admin token goes into the units\' StateDirectory', (ctx) => {
    if (skip()) return ctx.skip();
    expect(defaults!.status, shown(defaults!)).toBe(0);
    const { env, unit } = rendered();
    const file = path.join(dir, 'defaults.env');
    writeFileSync(file, env);
    const vars = envFile(file);
    // tenants submit from elsewhere: the gateway is not left on CP_SMTP_HOST's loopback default
    expect([vars.CP_HTTP_HOST, vars.CP_SMTP_HOST]).toEqual(['0.0.0.0', '0.0.0.0']);
    // warming mail goes to a gateway by the name on its certificate and its implicit-TLS port, not to
    // 127.0.0.1, which no certificate names
    expect(vars.CP_WARMING_GATEWAY_URL).toBe(`smtps://${vars.CP_SMTP_HOSTNAME}:465`);
    // ProtectSystem=strict leaves /var/lib/<StateDirectory> the only place a unit may write
    const state = /^StateDirectory=(.+)$/m.exec(unit)?.[1];
    expect(unit).toMatch(/^ProtectSystem=strict$/m);
    expect(path.dirname(vars.CP_BOOTSTRAP_TOKEN_FILE!)).toBe(`/var/lib/${state}`);
    expect(unit).toContain('WorkingDirectory=/opt/kcp/current\n');
    expect(unit).toContain('ExecStart=/usr/bin/node /opt/kcp/current/dist/control-plane/src/bin/control-plane.js\n');
    expect(unit).toContain('EnvironmentFile=/etc/kcp/control-plane.env\nEnvironmentFile=/etc/kcp/gateway-%i.env\n');
  });

  const before: { app: string[]; etc: string[] } = { app: [], etc: [] };

  it('kcp-api@1 as its unit runs it: migrates the empty database from the archive, serves HTTPS, its admin token works', async (ctx) => {
    if (skip()) return ctx.skip();
    before.app = files(appDir);
    before.etc = files(etcDir);
    const api = startUnit('api', 1);
    const health = await eventually('GET /health over HTTPS', async () => {
      if (api.child.exitCode !== null) throw new Error(`exited ${api.child.exitCode}`);
      return httpsGet(ports.api, '/health');
    }, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${api.log().slice(-4000)}`);
    });
    expect(health.status, health.body).toBe(200);
    const migrated = logged(api, 'schema is current');
    expect(migrated, api.log().slice(-4000)).toHaveLength(1);
    expect(migrated[0]!.applied).toHaveLength(readdirSync(path.join(currentDir, 'control-plane/migrations')).length);
    // DATABASE_URL is kcp_app: row-level security holds
    expect(api.log()).not.toContain('row-level security does not hold');
    expect(mode(tokenFile)).toBe('600');
    const token = readFileSync(tokenFile, 'utf8').trim();
    expect(token).toMatch(/^kcp_/);
    const me = await httpsGet(ports.api, '/v1/me', token);
    expect(me.status, me.body).toBe(200);
    expect(JSON.parse(me.body)).toMatchObject({ kind: 'operator' });
    // and no plain HTTP on the API port
    await expect(fetch(`http://127.0.0.1:${ports.api}/health`).then((r) => r.status)).rejects.toThrow();
  }, 40_000);

  it('kcp-gateway@1 greets on its submission port (STARTTLS) and its implicit-TLS port, and answers /metrics', async (ctx) => {
    if (skip()) return ctx.skip();
    const gw = startUnit('gateway', 1);
    await waitForPortForTest(ports.submission, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${gw.log().slice(-4000)}`);
    });
    const { d, greeting } = await SmtpDialogue.open(ports.submission);
    expect(greeting).toMatch(new RegExp(`^220 ${smtpHostname.replaceAll('.', '\\.')} `));
    expect(await d.send('EHLO client.example')).toMatch(/^250-.*\n(250-.*\n)*250[- ]STARTTLS/m);
    await d.starttls();
    expect(await d.send('EHLO client.example')).toMatch(/AUTH PLAIN LOGIN/);
    d.close();
    await waitForPortForTest(ports.tls, 10_000);
    const implicit = await SmtpDialogue.open(ports.tls, { tls: true });
    expect(implicit.greeting).toMatch(/^220 /);
    implicit.d.close();
    const metrics = await eventually('the gateway\'s /metrics', async () => (await fetch(`http://127.0.0.1:${ports.gatewayMetrics}/metrics`)).text());
    expect(metrics).toContain('# TYPE kcp_smtp_transactions_total counter');
  }, 40_000);

  it('kcp-worker@1 runs its jobs and answers /metrics on its port', async (ctx) => {
    if (skip()) return ctx.skip();
    const worker = startUnit('worker', 1);
    const metrics = await eventually('the worker\'s /metrics', async () => {
      if (worker.child.exitCode !== null) throw new Error(`exited ${worker.child.exitCode}`);
      const r = await fetch(`http://127.0.0.1:${ports.worker}/metrics`);
      return r.status === 200 ? r.text() : undefined;
    }, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${worker.log().slice(-4000)}`);
    });
    expect(metrics).toMatch(/^kcp_dependency_up\{dependency="postgresql"\} 1$/m);
    expect(logged(worker, 'background jobs started'), worker.log().slice(-4000)).toHaveLength(1);
  }, 40_000);

  it('they wrote nothing into the application or configuration directories, and stop on SIGTERM with status 0', async (ctx) => {
    if (skip() || Object.keys(running).length === 0) return ctx.skip();
    const alive = Object.entries(running).map(([name, p]) => [name, p.child.exitCode] as const);
    expect(alive).toEqual(Object.keys(running).map((name) => [name, null]));
    expect(files(appDir)).toEqual(before.app);
    expect(files(etcDir)).toEqual(before.etc);
    const codes = await Promise.all(Object.entries(running).map(async ([name, p]) => [name, await p.stop()] as const));
    expect(codes).toEqual(Object.keys(running).map((name) => [name, 0]));
  }, 30_000);

  const idA = () => releaseId(archive);
  let inodesA: number[] = [];

  it('a second run changes nothing: the release is neither unpacked nor installed again, nothing restarts', async (ctx) => {
    if (skip()) return ctx.skip();
    inodesA = inodes(idA());
    const again = await applyPlaybook(ansible!, path.join(dir, 'cp.yml'));
    expect(again.status, shown(again)).toBe(0);
    expect(again.stdout, shown(again)).toMatch(/localhost\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0/);
    expect([outcome(again, 'Unpack the release'), outcome(again, 'Install the production dependencies'), outcome(again, 'Switch to the release')], shown(again)).toEqual(['skipping', 'skipping', 'ok']);
    expect(restarted(again), shown(again)).toBe(false);
    expect(readlinkSync(currentDir)).toBe(`releases/${idA()}`);
    expect(inodes(idA())).toEqual(inodesA);
  }, 120_000);

  let upgrade: Run | undefined;

  it('another archive goes into a directory of its own, current switches to it and the units restart; the previous release stays', async (ctx) => {
    if (skip()) return ctx.skip();
    const idB = releaseId(archiveB);
    expect(idB).not.toBe(idA());
    upgrade = await applyPlaybook(ansible!, writeLocalPlaybook(dir, 'cp-b.yml', { ...playbookVars, control_plane_release_archive: archiveB }, [], 'control_plane'));
    expect(upgrade.status, shown(upgrade)).toBe(0);
    expect([outcome(upgrade, 'Unpack the release'), outcome(upgrade, 'Install the production dependencies'), outcome(upgrade, 'Switch to the release')], shown(upgrade)).toEqual(['changed', 'changed', 'changed']);
    // nothing else changed (env files, units): the link's change is what notified the handler
    expect(restarted(upgrade), shown(upgrade)).toBe(true);
    expect(readlinkSync(currentDir)).toBe(`releases/${idB}`);
    expect(existsSync(path.join(currentDir, onlyInB))).toBe(true);
    expect(existsSync(path.join(currentDir, 'node_modules', 'pg', 'package.json'))).toBe(true);
    // the previous release as it was, ready for a rollback; the stale one (third newest of 2 kept) gone
    expect(releases()).toEqual([idA(), idB].sort());
    expect(inodes(idA())).toEqual(inodesA);
    expect(existsSync(path.join(releasesDir, idA(), onlyInB))).toBe(false);
  }, 120_000);

  it('rollback: the first archive again switches back to its directory as it was (no unpack, no npm ci), and kcp-api@1 runs from it', async (ctx) => {
    if (skip() || !upgrade || upgrade.status !== 0) return ctx.skip();
    const idB = releaseId(archiveB);
    // keep 1: the newest (the other archive's) and the current one, older, which is never removed
    const back = await applyPlaybook(ansible!, writeLocalPlaybook(dir, 'cp-rollback.yml', { ...playbookVars, control_plane_release_archive: archive, control_plane_releases_keep: 1 }, [], 'control_plane'));
    expect(back.status, shown(back)).toBe(0);
    expect([outcome(back, 'Unpack the release'), outcome(back, 'Install the production dependencies'), outcome(back, 'Switch to the release')], shown(back)).toEqual(['skipping', 'skipping', 'changed']);
    expect(restarted(back), shown(back)).toBe(true);
    expect(readlinkSync(currentDir)).toBe(`releases/${idA()}`);
    expect(inodes(idA())).toEqual(inodesA);
    // what the other release had and this one has not is not there
    expect(existsSync(path.join(currentDir, onlyInB))).toBe(false);
    expect(releases()).toEqual([idA(), idB].sort());
    const api = startUnit('api', 1);
    const health = await eventually('GET /health over HTTPS after the rollback', async () => {
      if (api.child.exitCode !== null) throw new Error(`exited ${api.child.exitCode}`);
      return httpsGet(ports.api, '/health');
    }, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${api.log().slice(-4000)}`);
    });
    expect(health.status, health.body).toBe(200);
    expect(await api.stop()).toBe(0);
  }, 120_000);
});
