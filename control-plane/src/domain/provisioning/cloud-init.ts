/**
 * The cloud-init user data a provisioned node boots with: it writes the node's `node_settings.lua`
 * (the data file the node bootstrap reads, mta-nodes/README.md) so that, once KumoMTA and the bootstrap
 * are installed (Ansible's `kumomta_node` role), the node enrols itself: it pulls its signed policy from
 * `control_plane_url` as `node_id` with `node_token` and verifies it against `policy_public_key_hex`.
 *
 * Why only data: behaviour lives in the bootstrap and the runtime modules; user data the provider keeps
 * for the server's life should hold nothing to review but four values. The token in it is the node's
 * own (shown once elsewhere, stored hashed here); rotating it (`POST /v1/nodes/{id}/token/rotate`)
 * makes the copy the provider keeps useless.
 *
 * Pure and deterministic (sorted keys, no dates), so a golden test pins the exact text.
 */

export interface NodeEnrolment {
  control_plane_url: string;
  node_id: string;
  node_token: string;
  policy_public_key_hex: string;
  /** further node_settings.lua values (strings, integers or booleans), e.g. `relay_listen` */
  extra?: Record<string, string | number | boolean>;
}

/** Where the bootstrap reads it (KCP_POLICY_DIR's default). */
export const NODE_SETTINGS_PATH = '/opt/kumomta/etc/policy/cp/node_settings.lua';

const LUA_ESCAPES: Record<string, string> = { '\\': '\\\\', "'": "\\'", '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A Lua single-quoted string literal; other control characters as decimal escapes. */
export function luaString(s: string): string {
  // eslint-disable-next-line no-control-regex
  return `'${s.replace(/[\\'\n\r\t]|[\x00-\x1f\x7f]/g, (c) => LUA_ESCAPES[c] ?? `\\${String(c.charCodeAt(0)).padStart(3, '0')}`)}'`;
}

const LUA_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function luaValue(v: string | number | boolean): string {
  if (typeof v === 'string') return luaString(v);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error(`node setting value ${v} is not an integer`);
    return String(v);
  }
  return v ? 'true' : 'false';
}

/** `node_settings.lua`: `return { key = value, ... }`, keys sorted, one per line. */
export function renderNodeSettings(e: NodeEnrolment): string {
  const values: Record<string, string | number | boolean> = {
    ...(e.extra ?? {}),
    control_plane_url: e.control_plane_url,
    node_id: e.node_id,
    node_token: e.node_token,
    policy_public_key_hex: e.policy_public_key_hex,
  };
  const lines = Object.keys(values)
    .sort()
    .map((k) => {
      if (!LUA_NAME.test(k)) throw new Error(`node setting name ${JSON.stringify(k)} is not a Lua name`);
      return `  ${k} = ${luaValue(values[k]!)},`;
    });
  return `-- written by cloud-init at provisioning (kumo control plane)\nreturn {\n${lines.join('\n')}\n}\n`;
}

/**
 * `#cloud-config` user data writing `node_settings.lua` readable by root only (the bootstrap's
 * installer hands it to kumod). The file is a YAML block scalar, so nothing in it needs YAML quoting.
 *
 * @example
 * renderCloudInit({ control_plane_url: 'https://cp.example:8443', node_id: '…', node_token: 'node_…', policy_public_key_hex: '…' })
 * // → '#cloud-config\nwrite_files:\n  - path: /opt/kumomta/etc/policy/cp/node_settings.lua\n …'
 */
export function renderCloudInit(e: NodeEnrolment): string {
  const body = renderNodeSettings(e)
    .split('\n')
    .filter((l, i, all) => !(i === all.length - 1 && l === ''))
    .map((l) => `      ${l}`)
    .join('\n');
  return [
    '#cloud-config',
    'write_files:',
    `  - path: ${NODE_SETTINGS_PATH}`,
    "    owner: 'root:root'",
    "    permissions: '0600'",
    '    content: |',
    body,
    '',
  ].join('\n');
}

/**
 * Forward-confirmed reverse DNS: the PTR name the provider holds for `ip` resolves (A/AAAA) back to
 * `ip`. `resolved` is what the resolver answered for the PTR name; addresses compare case-insensitively.
 */
export function forwardConfirmed(ip: string, ptrName: string | null, ptrAtProvider: string | null, resolved: readonly string[]): boolean {
  if (!ptrName || !ptrAtProvider) return false;
  if (ptrName.toLowerCase().replace(/\.$/, '') !== ptrAtProvider.toLowerCase().replace(/\.$/, '')) return false;
  return resolved.some((a) => a.toLowerCase() === ip.toLowerCase());
}
