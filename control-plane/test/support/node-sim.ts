/**
 * A stand-in for a node's policy puller, speaking the protocol the node runtime speaks (cp_pull.lua):
 * If-None-Match with the ETag of what it runs, the running hash and copy on every pull, the reason
 * of a refused install on the pulls after it, and a pull again right after an install. It verifies
 * the Ed25519 signature as the node does. The kumod suite runs the real puller; this one lets the
 * autopilot's tests run many nodes quickly.
 */
import { createHash } from 'node:crypto';
import { verifyPolicySignature } from '../../src/adapters/crypto/policy-signer.js';

type Request = (method: string, path: string, opts: { token: string; headers: Record<string, string> }) => Promise<Response>;

export interface NodeSim {
  readonly name: string;
  /** the module it runs */
  running(): string | null;
  runningSha(): string | null;
  pulls(): number;
  /** refuse every new module from now on, as a node whose checks fail would */
  refuseWith(reason: string | null): void;
  stop(): Promise<void>;
}

export function startNodeSim(request: Request, node: { id: string; name: string; token: string }, publicKey: Buffer, intervalMs = 100): NodeSim {
  let text: string | null = null;
  let sha: string | null = null;
  let installError: string | null = null;
  let refuse: string | null = null;
  let pulls = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let inFlight: Promise<void> = Promise.resolve();

  const pullOnce = async (): Promise<boolean> => {
    pulls++;
    const headers: Record<string, string> = { 'x-kcp-running-sha256': sha ?? 'none', 'x-kcp-running-copy': sha ? 'generated' : 'none' };
    if (sha) headers['if-none-match'] = `"${sha}"`;
    if (installError) headers['x-kcp-install-error'] = installError;
    const res = await request('GET', `/v1/nodes/${node.id}/policy`, { token: node.token, headers });
    if (res.status !== 200) {
      await res.arrayBuffer();
      return false;
    }
    const body = await res.text();
    const signature = res.headers.get('x-kcp-signature') ?? '';
    if (!verifyPolicySignature(publicKey, body, signature)) {
      installError = 'signature does not verify: module refused';
      return false;
    }
    if (refuse) {
      installError = `module refused: ${refuse}`;
      return false;
    }
    text = body;
    sha = createHash('sha256').update(body, 'utf8').digest('hex');
    installError = null;
    return true;
  };

  const loop = async () => {
    if (stopped) return;
    try {
      // an install is reported by the pull that follows it at once
      while ((await pullOnce()) && !stopped);
    } catch {
      // the control plane is away: try again at the next interval
    }
    if (!stopped) timer = setTimeout(() => (inFlight = loop()), intervalMs);
  };
  inFlight = loop();

  return {
    name: node.name,
    running: () => text,
    runningSha: () => sha,
    pulls: () => pulls,
    refuseWith(reason) {
      refuse = reason;
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await inFlight;
    },
  };
}
