/**
 * A real kumod for the node suite: started on a staged node directory (test/support/node-dir.ts) with
 * the bootstrap as its policy, as the current user, its diagnostic log kept for the test to read and
 * to print when something fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { userInfo } from 'node:os';
import path from 'node:path';
import { kumoRelease } from '../support/kumo-release.js';
import type { StagedNode } from '../support/node-dir.js';
import { waitForPortForTest } from '../support/ports.js';

export { eventually } from '../support/eventually.js';

export interface Kumod {
  node: StagedNode;
  log(): string;
  /** resolves when a diagnostic line matches, rejects after the timeout with the log */
  waitForLog(re: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  /** the length of the log so far, to wait for lines after it */
  mark(): number;
  stop(): Promise<void>;
}

export function kumodArgs(): string[] {
  return ['--user', userInfo().username];
}

/**
 * kumod --validate or --script on a policy file; KUMOD_LOG keeps lua's own lines. Asynchronous, so
 * servers the test runs in this process (DNS, SMTP, the control plane) keep answering meanwhile.
 */
export function runKumod(policy: string, mode: '--validate' | '--script', env: Record<string, string> = {}, extra: string[] = []): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(kumoRelease().kumod!, [...kumodArgs(), '--policy', policy, mode, ...extra], {
      env: { ...process.env, KUMOD_LOG: 'error,lua=info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr: stderr.replace(/\x1b\[[0-9;]*m/g, '') });
    });
  });
}

export async function startKumod(node: StagedNode, relayPort: number): Promise<Kumod> {
  let text = '';
  const child: ChildProcess = spawn(kumoRelease().kumod!, [...kumodArgs(), '--policy', path.join(node.policyDir, 'init.lua')], {
    env: { ...process.env, ...node.env, KUMOD_LOG: 'warn,lua=info,kumod::logging=warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const waiters = new Set<() => void>();
  const append = (chunk: Buffer) => {
    // kumod colours its log; the tests read the words
    text += chunk.toString('utf8').replace(/\x1b\[[0-9;]*m/g, '');
    for (const w of waiters) w();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  let exited: number | null = null;
  child.on('exit', (code) => {
    exited = code ?? -1;
    for (const w of waiters) w();
  });
  const kumod: Kumod = {
    node,
    log: () => text,
    mark: () => text.length,
    waitForLog(re, timeoutMs = 30_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(text.slice(from));
          if (m) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(m[0]);
          } else if (exited !== null) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(new Error(`kumod exited (${exited}) before ${re}:\n${text}`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no kumod log line matching ${re} within ${timeoutMs} ms:\n${text.slice(from)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (exited !== null) return;
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await done;
      clearTimeout(timer);
    },
  };
  try {
    // a kumod that exits (a port taken, a policy error) fails at once, with its log
    await Promise.race([
      waitForPortForTest(relayPort, 60_000),
      new Promise<never>((_resolve, reject) => {
        const check = () => {
          if (exited !== null) reject(new Error(`kumod exited (${exited}) before listening`));
        };
        waiters.add(check);
        check();
      }),
    ]);
  } catch (e) {
    await kumod.stop();
    throw new Error(`kumod did not open its relay listener: ${(e as Error).message}\n${text}`);
  }
  return kumod;
}

