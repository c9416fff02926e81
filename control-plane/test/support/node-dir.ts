/**
 * A KumoMTA node's policy directory, laid out as on a node (mta-nodes/README.md):
 *   <root>/policy/init.lua             the bootstrap
 *   <root>/policy/cp/cp_*.lua          the runtime
 *   <root>/policy/cp/node_settings.lua written from a settings object with the project's Lua emitter
 *   <root>/policy/cp/generated.lua     (+ .sha256) when a module is installed up front
 * The same staging serves the kumo double (lua5.4) and a real kumod.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/project-root.js';
import { luaLiteral, map, record, type LuaValue } from '../../src/render/lua-literal.js';

/** cp_settings.lua's fields (mta-nodes/README.md documents each). */
export interface NodeSettings {
  control_plane_url: string;
  node_id: string;
  node_token: string;
  policy_public_key_hex: string;
  redis_url?: string;
  gateway_cidrs?: string[];
  control_plane_cidrs?: string[];
  relay_listen?: string;
  inbound_listen?: string;
  http_listen?: string;
  hostname?: string;
  spool_dir?: string;
  log_dir?: string;
  dkim_key_dir?: string;
  poll_interval_seconds?: number;
  kumo_share_dir?: string;
  dns_name_servers?: string[];
  tsa_urls?: string[];
  extra_shaping_files?: string[];
  egress_overrides?: Record<string, LuaValue>;
}

export function renderNodeSettings(s: NodeSettings): string {
  const { egress_overrides, ...rest } = s;
  return `return ${luaLiteral(record({ ...(rest as Record<string, LuaValue>), egress_overrides: egress_overrides ? map(egress_overrides) : undefined }))}\n`;
}

export interface StagedNode {
  root: string;
  policyDir: string;
  cpDir: string;
  /** KCP_POLICY_DIR for the bootstrap */
  env: Record<string, string>;
}

export function stageNode(settings: NodeSettings | ((root: string) => NodeSettings), opts: { generated?: string } = {}): StagedNode {
  const root = mkdtempSync(path.join(tmpdir(), 'kcp-node-'));
  const policyDir = path.join(root, 'policy');
  const cpDir = path.join(policyDir, 'cp');
  mkdirSync(cpDir, { recursive: true });
  copyFileSync(path.join(projectRoot(), 'mta-nodes/policy/init.lua'), path.join(policyDir, 'init.lua'));
  const src = path.join(projectRoot(), 'lua-policy/src');
  for (const f of readdirSync(src).filter((f) => f.endsWith('.lua'))) copyFileSync(path.join(src, f), path.join(cpDir, f));
  writeFileSync(path.join(cpDir, 'node_settings.lua'), renderNodeSettings(typeof settings === 'function' ? settings(root) : settings));
  const node = { root, policyDir, cpDir, env: { KCP_POLICY_DIR: cpDir } };
  if (opts.generated !== undefined) installModule(node, opts.generated);
  return node;
}

/** Install a module as the node's puller does after verifying it: the file and its hash beside it. */
export function installModule(node: StagedNode, text: string, name = 'generated.lua'): void {
  writeFileSync(path.join(node.cpDir, `${name}.sha256`), `${createHash('sha256').update(text).digest('hex')}\n`);
  writeFileSync(path.join(node.cpDir, name), text);
}

export const TEST_PUBLIC_KEY_HEX = 'ab'.repeat(32);

/** Settings for a node that talks to nothing (double tests, --validate). */
export function offlineSettings(root: string, shareDir: string, extra: Partial<NodeSettings> = {}): NodeSettings {
  return {
    control_plane_url: 'http://127.0.0.1:9',
    node_id: '00000000-0000-4000-8000-00000000000a',
    node_token: `node_${'x'.repeat(40)}`,
    policy_public_key_hex: TEST_PUBLIC_KEY_HEX,
    spool_dir: path.join(root, 'spool'),
    log_dir: path.join(root, 'logs'),
    dkim_key_dir: path.join(root, 'dkim'),
    kumo_share_dir: shareDir,
    ...extra,
  };
}

/**
 * The egress overrides that make the internet one SMTP server on loopback: its port, loopback allowed,
 * TLS where it offers it (newer shaping.toml files require TLS for some providers, and this server has
 * none).
 */
export function loopbackEgressOverrides(internetPort: number): Record<string, LuaValue> {
  return { smtp_port: internetPort, prohibited_hosts: [], enable_tls: 'OpportunisticInsecure' };
}

/**
 * Settings for a live node on loopback, as a deployment writes them from a POST /v1/nodes: the gateway
 * and the control plane on 127.0.0.1, and the internet one SMTP server on loopback
 * (loopbackEgressOverrides).
 */
export function loopbackNodeSettings(
  root: string,
  o: {
    controlPlaneUrl: string;
    node: { id: string; token: string };
    publicKeyHex: string;
    redisUrl: string;
    ports: { relay: number; inbound: number; http: number };
    dkimDir: string;
    shareDir: string;
    dnsServer: string;
    internetPort: number;
  },
  extra: Partial<NodeSettings> = {},
): NodeSettings {
  return {
    control_plane_url: o.controlPlaneUrl,
    node_id: o.node.id,
    node_token: o.node.token,
    policy_public_key_hex: o.publicKeyHex,
    redis_url: o.redisUrl,
    gateway_cidrs: ['127.0.0.1'],
    control_plane_cidrs: ['127.0.0.1'],
    relay_listen: `127.0.0.1:${o.ports.relay}`,
    inbound_listen: `127.0.0.1:${o.ports.inbound}`,
    http_listen: `127.0.0.1:${o.ports.http}`,
    hostname: 'kumod-1.kumod.test',
    spool_dir: path.join(root, 'spool'),
    log_dir: path.join(root, 'logs'),
    dkim_key_dir: o.dkimDir,
    poll_interval_seconds: 1,
    kumo_share_dir: o.shareDir,
    dns_name_servers: [o.dnsServer],
    egress_overrides: loopbackEgressOverrides(o.internetPort),
    ...extra,
  };
}
