/**
 * Configuration, read from the environment once at start-up. `loadConfig` reports every problem at
 * once instead of stopping at the first, so an operator fixes a deployment in one round. Every
 * setting here is documented in the README's configuration table (a test keeps the two in step).
 */
import { accessSync, constants } from 'node:fs';
import { hostname } from 'node:os';
import { err, ok, type Result } from '../domain/shared/result.js';

export const ROLES = ['api', 'worker', 'gateway'] as const;
export type Role = (typeof ROLES)[number];

export interface MasterKey {
  id: string;
  key: Buffer;
}

/** Buying nodes and IPs from a cloud provider (issue 15): the defaults a provisioning request starts from. */
export interface ProvisioningConfig {
  /** the Hetzner Cloud API a new provider project talks to unless it names another */
  hetznerApiUrl: string;
  /** written into a provisioned node's node_settings.lua; null: provisioning a node is refused */
  nodeControlPlaneUrl: string | null;
  nodeImage: string;
  /** SSH keys of the provider project (names or ids) installed for root on a new node: Ansible logs in with them */
  nodeSshKeys: string[];
  /** what a node's server type must have; locations in order of preference (empty: any) */
  nodeRequirements: { minCores: number; minMemoryGb: number; architecture: 'x86' | 'arm' | null; locations: string[] };
  /** PTR names of bought IPs are `<egress source>.<zone>`; null: each request names its zone */
  rdnsZone: string | null;
  /** provider prices in EUR are converted with this to the USD the costs are kept in */
  usdPerEur: number;
}

export interface Config {
  provisioning: ProvisioningConfig;
  /** the application's connection: a role without BYPASSRLS that owns nothing (row-level security holds) */
  databaseUrl: string;
  /** the connection migrations run on: the schema's owner (DATABASE_URL when unset) */
  migrationDatabaseUrl: string;
  databasePoolMax: number;
  /** opening a PostgreSQL connection, and each statement: past them a request fails (503) instead of hanging */
  databaseTimeouts: { connectMs: number; statementMs: number };
  redisUrl: string;
  roles: Role[];
  http: { host: string; port: number; bodyLimitBytes: number };
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** first key encrypts; all of them decrypt, which is what makes rotation downtime-free */
  masterKeys: MasterKey[];
  pseudonymKey: Buffer;
  /** Ed25519 seed that signs policy modules; nodes pin the public key */
  policySigningSeed: Buffer;
  policy: { dkimKeyDir: string; bumpTimeoutMs: number; nodeStaleMs: number };
  dkim: { rsaBits: number; defaultSelector: string };
  dns: { spfInclude: string | null; bounceMxHost: string | null; dmarcRua: string | null; dmarcPolicy: 'none' | 'quarantine' | 'reject' };
  worker: { tickMs: number; rekeyBatchSize: number; rescoreIntervalMs: number; placementIntervalMs: number; autopilotIntervalMs: number };
  bootstrapTokenFile: string | null;
  gateway: GatewayConfig;
  warming: { gatewayUrl: string; tlsVerify: boolean };
  metricsToken: string | null;
  metricsPort: number;
  /** the API's own TLS (null: plain HTTP, allowed on a loopback address only) */
  httpTls: HttpTlsConfig | null;
  /** client certificates on node routes: none asked for, one the CA signed, or one that also names the node */
  nodeClientCert: 'off' | 'required' | 'bound';
  /** failed bearer-token authentications counted per client IP (Redis); past the limit 429 */
  apiAuthThrottle: { failureLimit: number; windowSeconds: number };
}

export interface HttpTlsConfig {
  certFile: string;
  keyFile: string;
  /** CA bundle client certificates are verified against (node mutual TLS); null: none asked for */
  clientCaFile: string | null;
  /** how often the files are checked for a change (a changed pair is loaded without a restart) */
  reloadIntervalMs: number;
}

/** 127.0.0.0/8, ::1 and localhost: where plain HTTP may listen (and where nodes may use http://). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === '::1') return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255);
}

export interface GatewayConfig {
  host: string;
  /** 587: STARTTLS required before AUTH */
  submissionPort: number;
  /** 465: implicit TLS; -1 disables it */
  tlsPort: number;
  hostname: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  maxMessageBytes: number;
  maxRecipients: number;
  maxConnectionsPerTenant: number;
  maxClients: number;
  idleTimeoutMs: number;
  /** failures of one username from one source before that pair is locked out; a username's own count only slows it down */
  authFailureLimit: number;
  /** failures from one source, whatever the username, before it is locked out */
  authSourceFailureLimit: number;
  authLockoutSeconds: number;
  authMaxDelayMs: number;
  /** commands a session not from a bound network may send before it authenticates */
  maxUnauthenticatedCommands: number;
  factsTtlMs: number;
  budgetCacheMs: number;
  relay: { idlePerNode: number; connectTimeoutMs: number; commandTimeoutMs: number; downForMs: number };
}

/** Names, defaults and descriptions of every setting: the single source for parsing, redaction and docs. */
export const SETTINGS = {
  DATABASE_URL: { secret: true, doc: 'PostgreSQL connection URL of the application: the kcp_app role (no superuser, no BYPASSRLS, owner of nothing), so row-level security holds. Started privately by scripts/run.sh when unset.' },
  CP_MIGRATION_DATABASE_URL: { secret: true, doc: 'PostgreSQL connection URL the migrations run on at start-up: the role that owns the schema (kcp_owner). Unset: DATABASE_URL.', default: '' },
  CP_DB_POOL_MAX: { secret: false, doc: 'Maximum PostgreSQL connections per process.', default: '10' },
  CP_DB_CONNECT_TIMEOUT_MS: { secret: false, doc: 'How long opening a PostgreSQL connection (or waiting for a free one in the pool) may take before the request fails with 503 DEPENDENCY_UNAVAILABLE, in milliseconds.', default: '5000' },
  CP_DB_STATEMENT_TIMEOUT_MS: { secret: false, doc: 'The longest one SQL statement may run (PostgreSQL cancels it) and the longest the process waits for any answer on a connection (a PostgreSQL that stopped answering), in milliseconds; past it the request fails with 503 DEPENDENCY_UNAVAILABLE.', default: '30000' },
  REDIS_URL: { secret: true, doc: 'Redis connection URL (the Redis the KumoMTA nodes share for throttles). Started privately by scripts/run.sh when unset.' },
  CP_ROLES: { secret: false, doc: 'Comma-separated roles this process runs: `api` (admin API, policy and event endpoints), `worker` (background jobs), `gateway` (SMTP submission gateway).', default: 'api,worker,gateway' },
  CP_HTTP_HOST: { secret: false, doc: 'Address the HTTP API listens on.', default: '127.0.0.1' },
  CP_HTTP_PORT: { secret: false, doc: 'Port the HTTP API listens on (0 picks a free one).', default: '8080' },
  CP_HTTP_BODY_LIMIT_BYTES: { secret: false, doc: 'Largest request body accepted, in bytes.', default: '10485760' },
  CP_HTTP_TLS_CERT_FILE: { secret: false, doc: 'PEM certificate chain the API serves HTTPS with (with CP_HTTP_TLS_KEY_FILE). Required when CP_HTTP_HOST is not a loopback address; scripts/run.sh makes one signed by a local CA under .local/tls/api then. Reloaded without a restart when the files change.', default: '' },
  CP_HTTP_TLS_KEY_FILE: { secret: false, doc: 'PEM private key of CP_HTTP_TLS_CERT_FILE.', default: '' },
  CP_HTTP_TLS_RELOAD_INTERVAL_MS: { secret: false, doc: 'How often the API checks its certificate, key and client CA files for a change, in milliseconds. A changed pair that loads serves new connections; one that does not is logged and the old one kept.', default: '5000' },
  CP_HTTP_TLS_CLIENT_CA_FILE: { secret: false, doc: 'PEM CA bundle the API verifies client certificates against (needs HTTPS). Clients are asked for a certificate; whether node routes require one is CP_HTTP_NODE_CLIENT_CERT.', default: '' },
  CP_HTTP_NODE_CLIENT_CERT: { secret: false, doc: 'Client certificates on the node routes (policy pull, DKIM keys, log records, returned mail with a node token): `off`; `required`, a certificate CP_HTTP_TLS_CLIENT_CA_FILE verifies, besides the node token; `bound`, one whose CN or a DNS name in its SAN is also the node\'s name.', default: 'off' },
  CP_HTTP_AUTH_FAILURE_LIMIT: { secret: false, doc: 'Failed bearer-token authentications (operator, tenant and node tokens) from one client IP (IPv6: its /64) within CP_HTTP_AUTH_FAILURE_WINDOW_SECONDS, after which every token-authenticated request from it gets 429 with Retry-After until the window passes.', default: '20' },
  CP_HTTP_AUTH_FAILURE_WINDOW_SECONDS: { secret: false, doc: 'How long failed token authentications are counted from the first one, in seconds (the Redis key\'s TTL).', default: '900' },
  CP_LOG_LEVEL: { secret: false, doc: 'pino log level: fatal, error, warn, info, debug, trace or silent.', default: 'info' },
  CP_MASTER_KEYS: { secret: true, doc: 'Comma-separated `id:base64` AES-256 keys (32 bytes each) for secrets at rest. The first encrypts; all decrypt. Rotate by putting a new key first; the worker re-encrypts.' },
  CP_PSEUDONYM_KEY: { secret: true, doc: 'Secret (at least 32 characters) for the keyed hash that derives tenants\' public pseudonyms.' },
  CP_POLICY_SIGNING_KEY: { secret: true, doc: 'Base64 of the 32-byte Ed25519 seed that signs node policy modules. Nodes pin its public key (GET /v1/policy/public-key).' },
  CP_POLICY_DKIM_KEY_DIR: { secret: false, doc: 'Directory on the nodes that holds the DKIM private key files (<dir>/<domain>/<selector>.key).', default: '/opt/kumomta/etc/dkim' },
  CP_POLICY_BUMP_TIMEOUT_MS: { secret: false, doc: 'Timeout of the reload request (bump-config-epoch) sent to each node after a publish, in milliseconds.', default: '5000' },
  CP_NODE_STALE_MS: { secret: false, doc: 'A node that has not pulled its policy for this long is flagged `not_pulling` in /v1/policy/status, and one served a version that long ago without running it `stale`, in milliseconds.', default: '60000' },
  CP_DKIM_RSA_BITS: { secret: false, doc: 'RSA modulus size of generated DKIM keys (1024, 2048 or 4096).', default: '2048' },
  CP_DKIM_DEFAULT_SELECTOR: { secret: false, doc: 'DKIM selector used when a domain is created without one.', default: 'kcp1' },
  CP_SPF_INCLUDE: { secret: false, doc: 'Host to `include:` in tenants\' SPF records. When unset, SPF lists the fleet\'s non-retired IPs.', default: '' },
  CP_BOUNCE_MX_HOST: { secret: false, doc: 'Host of the inbound bounce/feedback listener. When set, domains get an MX record for their `bounces.` return-path subdomain.', default: '' },
  CP_DMARC_RUA: { secret: false, doc: 'Address for DMARC aggregate reports in generated DMARC records (mailto: is added).', default: '' },
  CP_DMARC_POLICY: { secret: false, doc: 'DMARC policy in generated records: none, quarantine or reject.', default: 'none' },
  CP_WORKER_TICK_MS: { secret: false, doc: 'How often the worker looks for due jobs, in milliseconds.', default: '5000' },
  CP_RESCORE_INTERVAL_MS: { secret: false, doc: 'How often every tenant\'s trust score is recomputed as the window slides, in milliseconds.', default: '3600000' },
  CP_PLACEMENT_INTERVAL_MS: { secret: false, doc: 'How often the placement engine runs (bad-apple detection, tiers, shards), in milliseconds.', default: '300000' },
  CP_AUTOPILOT_INTERVAL_MS: { secret: false, doc: 'How often the policy autopilot renders the fleet and takes its next rollout step, in milliseconds (on its own timer, not CP_WORKER_TICK_MS).', default: '2000' },
  CP_REKEY_BATCH_SIZE: { secret: false, doc: 'DKIM keys re-encrypted per worker tick after a master-key rotation.', default: '200' },
  CP_BOOTSTRAP_TOKEN_FILE: { secret: false, doc: 'When no operator exists yet, create one and write its admin token to this file (mode 0600). Empty disables.', default: '' },
  CP_SMTP_HOST: { secret: false, doc: 'Address the SMTP submission gateway listens on.', default: '127.0.0.1' },
  CP_SMTP_SUBMISSION_PORT: { secret: false, doc: 'Submission port with STARTTLS, which must precede AUTH (0 picks a free one; scripts/run.sh uses 2587 when not root).', default: '587' },
  CP_SMTP_TLS_PORT: { secret: false, doc: 'Implicit-TLS submission port (0 picks a free one, -1 disables it; scripts/run.sh uses 2465 when not root).', default: '465' },
  CP_SMTP_HOSTNAME: { secret: false, doc: 'Name the gateway gives in its greeting and EHLO to the nodes. Defaults to the machine\'s host name.', default: '' },
  CP_SMTP_TLS_CERT_FILE: { secret: false, doc: 'PEM certificate chain of the gateway (required with the gateway role; scripts/run.sh makes a self-signed one under .local/tls when unset).', default: '' },
  CP_SMTP_TLS_KEY_FILE: { secret: false, doc: 'PEM private key of that certificate.', default: '' },
  CP_SMTP_MAX_MESSAGE_BYTES: { secret: false, doc: 'Largest message accepted (advertised in SIZE), in bytes; at most 100 MiB. Larger ones get 552 5.3.4.', default: '26214400' },
  CP_SMTP_MAX_RECIPIENTS: { secret: false, doc: 'Recipients per message; the next one gets 452 4.5.3 and goes in another transaction.', default: '100' },
  CP_SMTP_MAX_CONNECTIONS_PER_TENANT: { secret: false, doc: 'Concurrent sessions one tenant may hold on one gateway process (421 4.7.0 beyond it).', default: '100' },
  CP_SMTP_MAX_CLIENTS: { secret: false, doc: 'Concurrent sessions one gateway process accepts in all.', default: '5000' },
  CP_SMTP_IDLE_TIMEOUT_MS: { secret: false, doc: 'A session idle this long is closed (421), in milliseconds.', default: '60000' },
  CP_SMTP_AUTH_FAILURE_LIMIT: { secret: false, doc: 'Failed AUTH attempts for one username from one client IP before that pair is locked out (454 4.7.0). A username is never locked out everywhere: from this many failures from anywhere, each AUTH for it waits first (250 ms, doubling per failure, up to CP_SMTP_AUTH_MAX_DELAY_MS).', default: '5' },
  CP_SMTP_AUTH_SOURCE_FAILURE_LIMIT: { secret: false, doc: 'Failed AUTH attempts from one client IP, whatever the usernames, before that IP is locked out (454 4.7.0).', default: '20' },
  CP_SMTP_AUTH_LOCKOUT_SECONDS: { secret: false, doc: 'How long the failures are counted and a lockout lasts, in seconds.', default: '900' },
  CP_SMTP_AUTH_MAX_DELAY_MS: { secret: false, doc: 'The longest an AUTH for a username with many recent failures waits before it is checked, in milliseconds.', default: '5000' },
  CP_SMTP_MAX_UNAUTHENTICATED_COMMANDS: { secret: false, doc: 'Commands a session may send before it authenticates (EHLO, STARTTLS, NOOP, ...; AUTH itself not counted); the next gets 421 4.7.0 and the connection is closed. Sessions from bound submission networks never authenticate and are not limited.', default: '10' },
  CP_SMTP_FACTS_TTL_MS: { secret: false, doc: 'The longest the gateway uses what it read about a tenant (status, domains, credentials, trust lock, placement, relay nodes), submission networks, warming peers, a password check and its recipient index, in milliseconds. Changes are pushed at once (LISTEN/NOTIFY); past the TTL an unreadable PostgreSQL means a 4xx. 0 caches nothing.', default: '5000' },
  CP_SMTP_BUDGET_CACHE_MS: { secret: false, doc: 'How long one read of a tenant\'s external budget serves later messages, in milliseconds (0: read Redis for every message).', default: '100' },
  CP_WARMING_GATEWAY_URL: { secret: false, doc: 'Where the worker submits warming mail: smtps://host:port (implicit TLS) or smtp://host:port (STARTTLS). Empty: this machine\'s gateway on CP_SMTP_TLS_PORT.', default: '' },
  CP_WARMING_TLS_VERIFY: { secret: false, doc: 'Verify the gateway\'s certificate when submitting warming mail (false for a self-signed one; scripts/run.sh sets false when it made the certificate).', default: 'true' },
  CP_METRICS_TOKEN: { secret: true, doc: 'When set, GET /metrics needs `Authorization: Bearer <this>`.', default: '' },
  CP_METRICS_PORT: { secret: false, doc: 'Port of the /metrics listener of a process without the api role (a gateway or worker of its own); with the api role /metrics is on the API port.', default: '9464' },
  CP_RELAY_IDLE_PER_NODE: { secret: false, doc: 'Idle relay connections the gateway keeps open to each node.', default: '32' },
  CP_RELAY_CONNECT_TIMEOUT_MS: { secret: false, doc: 'Timeout to open a relay connection to a node (then the next node is tried), in milliseconds.', default: '3000' },
  CP_RELAY_COMMAND_TIMEOUT_MS: { secret: false, doc: 'Timeout of one relay command, including the final reply to the message data, in milliseconds.', default: '60000' },
  CP_RELAY_NODE_DOWN_MS: { secret: false, doc: 'How long a node that failed a connection is skipped before it is tried again, in milliseconds.', default: '10000' },
  CP_HETZNER_API_URL: { secret: false, doc: 'Hetzner Cloud API base URL a provider project uses unless it is registered with its own api_url (plain http only to a loopback host, for tests).', default: 'https://api.hetzner.cloud/v1' },
  CP_NODE_CONTROL_PLANE_URL: { secret: false, doc: 'The control plane URL provisioned nodes pull their policy from (control_plane_url in the node_settings.lua their cloud-init writes): http(s)://host[:port], no path. Unset: POST /v1/nodes/provision is refused (412).', default: '' },
  CP_NODE_IMAGE: { secret: false, doc: 'OS image of provisioned nodes (the supported node image).', default: 'ubuntu-22.04' },
  CP_NODE_SSH_KEYS: { secret: false, doc: 'Comma-separated SSH keys of the provider project (their names or ids, as `hcloud ssh-key list` shows them) installed for root on every provisioned node, so that Ansible can log in and deploy it. Empty: none, and Hetzner mails a root password instead (provision-node.yml then cannot reach the server).', default: '' },
  CP_NODE_MIN_CORES: { secret: false, doc: 'Fewest vCPUs a provisioned node\'s server type may have (the cheapest type meeting the requirements is chosen from the provider\'s catalog).', default: '2' },
  CP_NODE_MIN_MEMORY_GB: { secret: false, doc: 'Least memory a provisioned node\'s server type may have, in GB.', default: '4' },
  CP_NODE_ARCHITECTURE: { secret: false, doc: 'CPU architecture of provisioned nodes: x86, arm or any.', default: 'x86' },
  CP_NODE_LOCATIONS: { secret: false, doc: 'Comma-separated provider locations for new nodes in order of preference (a request may name its own); empty: any location, cheapest first.', default: '' },
  CP_IP_RDNS_ZONE: { secret: false, doc: 'DNS zone of the PTR names of bought sending IPs: `<egress source>.<zone>`, e.g. ip-203-0-113-10.mta.example.net (publish the A records there). Unset: each IP request names its zone.', default: '' },
  CP_PROVIDER_USD_PER_EUR: { secret: false, doc: 'Exchange rate applied to provider prices stated in EUR (Hetzner\'s) before they are stored as monthly costs in USD.', default: '1.08' },
} as const satisfies Record<string, { secret: boolean; doc: string; default?: string }>;

export type SettingName = keyof typeof SETTINGS;

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env): Result<Config, string[]> {
  const problems: string[] = [];
  const raw = (name: SettingName): string => {
    const v = env[name];
    if (v !== undefined && v !== '') return v;
    const spec = SETTINGS[name] as { default?: string };
    return spec.default ?? '';
  };
  const required = (name: SettingName): string => {
    const v = raw(name);
    if (v === '') problems.push(`${name} is required`);
    return v;
  };
  const integer = (name: SettingName, min: number, max: number): number => {
    const v = raw(name);
    const n = Number(v);
    if (!/^-?\d+$/.test(v) || n < min || n > max) {
      problems.push(`${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
      return min;
    }
    return n;
  };
  const url = (name: SettingName, protocols: string[]): string => {
    const v = required(name);
    if (v === '') return v;
    try {
      const u = new URL(v);
      if (!protocols.includes(u.protocol)) problems.push(`${name} must use ${protocols.join(' or ')}`);
    } catch {
      problems.push(`${name} is not a valid URL`);
    }
    return v;
  };
  const optionalHost = (name: SettingName): string | null => {
    const v = raw(name);
    if (v === '') return null;
    if (!/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/.test(v)) problems.push(`${name} must be a lower-case host name`);
    return v;
  };

  const databaseUrl = url('DATABASE_URL', ['postgres:', 'postgresql:']);
  const migrationDatabaseUrl = raw('CP_MIGRATION_DATABASE_URL') === '' ? databaseUrl : url('CP_MIGRATION_DATABASE_URL', ['postgres:', 'postgresql:']);
  const redisUrl = url('REDIS_URL', ['redis:', 'rediss:']);

  const roles = raw('CP_ROLES').split(',').map((r) => r.trim()).filter(Boolean);
  for (const r of roles) if (!(ROLES as readonly string[]).includes(r)) problems.push(`CP_ROLES: unknown role ${JSON.stringify(r)} (known: ${ROLES.join(', ')})`);
  if (roles.length === 0) problems.push('CP_ROLES must name at least one role');

  const logLevel = raw('CP_LOG_LEVEL');
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(logLevel)) problems.push(`CP_LOG_LEVEL must be one of ${levels.join(', ')}`);

  const masterKeys: MasterKey[] = [];
  const mk = required('CP_MASTER_KEYS');
  if (mk !== '') {
    const seen = new Set<string>();
    for (const [i, part] of mk.split(',').entries()) {
      const m = /^([A-Za-z0-9_-]{1,32}):([A-Za-z0-9+/]+=*)$/.exec(part.trim());
      if (!m) {
        problems.push(`CP_MASTER_KEYS entry ${i + 1} must look like id:base64`);
        continue;
      }
      const key = Buffer.from(m[2]!, 'base64');
      if (key.length !== 32) problems.push(`CP_MASTER_KEYS entry ${i + 1} (${m[1]}) must decode to 32 bytes, not ${key.length}`);
      if (seen.has(m[1]!)) problems.push(`CP_MASTER_KEYS has the id ${m[1]} twice`);
      seen.add(m[1]!);
      masterKeys.push({ id: m[1]!, key });
    }
  }

  const pk = required('CP_PSEUDONYM_KEY');
  if (pk !== '' && pk.length < 32) problems.push('CP_PSEUDONYM_KEY must be at least 32 characters');

  const signing = required('CP_POLICY_SIGNING_KEY');
  const seed = Buffer.from(signing, 'base64');
  if (signing !== '' && (!/^[A-Za-z0-9+/]+=*$/.test(signing) || seed.length !== 32)) problems.push('CP_POLICY_SIGNING_KEY must be base64 of 32 bytes');
  const keyDir = raw('CP_POLICY_DKIM_KEY_DIR');
  if (!/^\/[A-Za-z0-9._/-]+$/.test(keyDir)) problems.push('CP_POLICY_DKIM_KEY_DIR must be an absolute path of letters, digits and . _ / -');

  const rsaBits = integer('CP_DKIM_RSA_BITS', 1024, 4096);
  if (![1024, 2048, 4096].includes(rsaBits)) problems.push('CP_DKIM_RSA_BITS must be 1024, 2048 or 4096');
  const defaultSelector = raw('CP_DKIM_DEFAULT_SELECTOR');
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(defaultSelector)) problems.push('CP_DKIM_DEFAULT_SELECTOR must be a DNS label');

  const dmarcPolicy = raw('CP_DMARC_POLICY');
  if (!['none', 'quarantine', 'reject'].includes(dmarcPolicy)) problems.push('CP_DMARC_POLICY must be none, quarantine or reject');
  const dmarcRua = raw('CP_DMARC_RUA');
  if (dmarcRua !== '' && !/^[^@\s;,]+@[a-z0-9.-]+$/.test(dmarcRua)) problems.push('CP_DMARC_RUA must be an email address');

  const httpHost = raw('CP_HTTP_HOST');
  const httpCert = raw('CP_HTTP_TLS_CERT_FILE');
  const httpKey = raw('CP_HTTP_TLS_KEY_FILE');
  const clientCa = raw('CP_HTTP_TLS_CLIENT_CA_FILE');
  const readableFile = (name: SettingName, v: string): void => {
    try {
      accessSync(v, constants.R_OK);
    } catch {
      problems.push(`${name}: cannot read ${v}`);
    }
  };
  if ((httpCert === '') !== (httpKey === '')) problems.push('CP_HTTP_TLS_CERT_FILE and CP_HTTP_TLS_KEY_FILE go together: set both or neither');
  if (httpCert !== '') readableFile('CP_HTTP_TLS_CERT_FILE', httpCert);
  if (httpKey !== '') readableFile('CP_HTTP_TLS_KEY_FILE', httpKey);
  if (clientCa !== '') {
    if (httpCert === '') problems.push('CP_HTTP_TLS_CLIENT_CA_FILE needs HTTPS (CP_HTTP_TLS_CERT_FILE and CP_HTTP_TLS_KEY_FILE)');
    readableFile('CP_HTTP_TLS_CLIENT_CA_FILE', clientCa);
  }
  const nodeClientCert = raw('CP_HTTP_NODE_CLIENT_CERT');
  if (!['off', 'required', 'bound'].includes(nodeClientCert)) problems.push('CP_HTTP_NODE_CLIENT_CERT must be off, required or bound');
  else if (nodeClientCert !== 'off' && clientCa === '') problems.push(`CP_HTTP_NODE_CLIENT_CERT=${nodeClientCert} needs CP_HTTP_TLS_CLIENT_CA_FILE`);
  // node tokens and DKIM private keys travel over the API: never in clear text off this machine
  if (roles.includes('api') && httpCert === '' && !isLoopbackHost(httpHost)) {
    problems.push(`CP_HTTP_HOST ${httpHost} is not a loopback address: the API serves node tokens and DKIM private keys, so it needs HTTPS there (CP_HTTP_TLS_CERT_FILE and CP_HTTP_TLS_KEY_FILE)`);
  }
  const tlsReloadMs = integer('CP_HTTP_TLS_RELOAD_INTERVAL_MS', 50, 3_600_000);

  const gatewayOn = roles.includes('gateway');
  const readable = (name: SettingName): string => {
    const v = raw(name);
    if (!gatewayOn) return v;
    if (v === '') {
      problems.push(`${name} is required with the gateway role`);
      return v;
    }
    try {
      accessSync(v, constants.R_OK);
    } catch {
      problems.push(`${name}: cannot read ${v}`);
    }
    return v;
  };
  const smtpHostname = raw('CP_SMTP_HOSTNAME') || hostname();
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(smtpHostname)) problems.push('CP_SMTP_HOSTNAME must be a host name');

  const submissionPort = integer('CP_SMTP_SUBMISSION_PORT', 0, 65535);
  const tlsPort = integer('CP_SMTP_TLS_PORT', -1, 65535);
  let warmingUrl = raw('CP_WARMING_GATEWAY_URL');
  if (warmingUrl === '') warmingUrl = tlsPort > 0 ? `smtps://127.0.0.1:${tlsPort}` : `smtp://127.0.0.1:${submissionPort}`;
  if (!/^smtps?:\/\/[A-Za-z0-9.:[\]-]+:\d{1,5}$/.test(warmingUrl)) problems.push('CP_WARMING_GATEWAY_URL must look like smtps://host:port or smtp://host:port');
  const tlsVerify = raw('CP_WARMING_TLS_VERIFY');
  if (!['true', 'false'].includes(tlsVerify)) problems.push('CP_WARMING_TLS_VERIFY must be true or false');

  const hetznerApiUrl = url('CP_HETZNER_API_URL', ['https:', 'http:']);
  if (hetznerApiUrl.startsWith('http:') && !isLoopbackHost(safeHost(hetznerApiUrl))) problems.push('CP_HETZNER_API_URL must use https (plain http only to a loopback host)');
  const nodeCpUrl = raw('CP_NODE_CONTROL_PLANE_URL');
  if (nodeCpUrl !== '' && !/^https?:\/\/[^/\s@]+$/.test(nodeCpUrl)) problems.push('CP_NODE_CONTROL_PLANE_URL must be http(s)://host[:port] without a path or user information');
  const nodeArch = raw('CP_NODE_ARCHITECTURE');
  if (!['x86', 'arm', 'any'].includes(nodeArch)) problems.push('CP_NODE_ARCHITECTURE must be x86, arm or any');
  const nodeLocations = raw('CP_NODE_LOCATIONS').split(',').map((l) => l.trim()).filter(Boolean);
  for (const l of nodeLocations) if (!/^[a-z0-9-]{1,40}$/.test(l)) problems.push(`CP_NODE_LOCATIONS: ${JSON.stringify(l)} is not a location name`);
  const nodeSshKeys = raw('CP_NODE_SSH_KEYS').split(',').map((k) => k.trim()).filter(Boolean);
  for (const k of nodeSshKeys) if (!/^[A-Za-z0-9._@-]{1,64}$/.test(k)) problems.push(`CP_NODE_SSH_KEYS: ${JSON.stringify(k)} is not an SSH key name or id`);
  const usdPerEurRaw = raw('CP_PROVIDER_USD_PER_EUR');
  const usdPerEur = Number(usdPerEurRaw);
  if (!/^\d+(\.\d+)?$/.test(usdPerEurRaw) || usdPerEur <= 0 || usdPerEur > 100) problems.push('CP_PROVIDER_USD_PER_EUR must be a positive number');
  const provisioning: ProvisioningConfig = {
    hetznerApiUrl,
    nodeControlPlaneUrl: nodeCpUrl || null,
    nodeImage: raw('CP_NODE_IMAGE'),
    nodeSshKeys,
    nodeRequirements: {
      minCores: integer('CP_NODE_MIN_CORES', 1, 1024),
      minMemoryGb: integer('CP_NODE_MIN_MEMORY_GB', 1, 4096),
      architecture: nodeArch === 'any' ? null : (nodeArch as 'x86' | 'arm'),
      locations: nodeLocations,
    },
    rdnsZone: optionalHost('CP_IP_RDNS_ZONE'),
    usdPerEur,
  };

  const config: Config = {
    provisioning,
    databaseUrl,
    migrationDatabaseUrl,
    databasePoolMax: integer('CP_DB_POOL_MAX', 1, 500),
    databaseTimeouts: { connectMs: integer('CP_DB_CONNECT_TIMEOUT_MS', 100, 120_000), statementMs: integer('CP_DB_STATEMENT_TIMEOUT_MS', 100, 3_600_000) },
    redisUrl,
    roles: roles as Role[],
    http: {
      host: httpHost,
      port: integer('CP_HTTP_PORT', 0, 65535),
      bodyLimitBytes: integer('CP_HTTP_BODY_LIMIT_BYTES', 1024, 1024 * 1024 * 1024),
    },
    logLevel: logLevel as Config['logLevel'],
    masterKeys,
    pseudonymKey: Buffer.from(pk, 'utf8'),
    policySigningSeed: seed,
    policy: { dkimKeyDir: keyDir.replace(/\/+$/, ''), bumpTimeoutMs: integer('CP_POLICY_BUMP_TIMEOUT_MS', 100, 120_000), nodeStaleMs: integer('CP_NODE_STALE_MS', 1000, 86_400_000) },
    dkim: { rsaBits, defaultSelector },
    dns: {
      spfInclude: optionalHost('CP_SPF_INCLUDE'),
      bounceMxHost: optionalHost('CP_BOUNCE_MX_HOST'),
      dmarcRua: dmarcRua === '' ? null : dmarcRua,
      dmarcPolicy: dmarcPolicy as Config['dns']['dmarcPolicy'],
    },
    worker: {
      tickMs: integer('CP_WORKER_TICK_MS', 100, 3_600_000),
      rekeyBatchSize: integer('CP_REKEY_BATCH_SIZE', 1, 10_000),
      rescoreIntervalMs: integer('CP_RESCORE_INTERVAL_MS', 1000, 86_400_000),
      placementIntervalMs: integer('CP_PLACEMENT_INTERVAL_MS', 1000, 86_400_000),
      autopilotIntervalMs: integer('CP_AUTOPILOT_INTERVAL_MS', 100, 3_600_000),
    },
    bootstrapTokenFile: raw('CP_BOOTSTRAP_TOKEN_FILE') || null,
    warming: { gatewayUrl: warmingUrl, tlsVerify: tlsVerify !== 'false' },
    metricsToken: raw('CP_METRICS_TOKEN') || null,
    metricsPort: integer('CP_METRICS_PORT', 0, 65535),
    httpTls: httpCert === '' ? null : { certFile: httpCert, keyFile: httpKey, clientCaFile: clientCa || null, reloadIntervalMs: tlsReloadMs },
    nodeClientCert: nodeClientCert as Config['nodeClientCert'],
    apiAuthThrottle: { failureLimit: integer('CP_HTTP_AUTH_FAILURE_LIMIT', 1, 1_000_000), windowSeconds: integer('CP_HTTP_AUTH_FAILURE_WINDOW_SECONDS', 1, 86_400) },
    gateway: {
      host: raw('CP_SMTP_HOST'),
      submissionPort,
      tlsPort,
      hostname: smtpHostname,
      tlsCertFile: readable('CP_SMTP_TLS_CERT_FILE'),
      tlsKeyFile: readable('CP_SMTP_TLS_KEY_FILE'),
      maxMessageBytes: integer('CP_SMTP_MAX_MESSAGE_BYTES', 1024, 100 * 1024 * 1024),
      maxRecipients: integer('CP_SMTP_MAX_RECIPIENTS', 1, 10_000),
      maxConnectionsPerTenant: integer('CP_SMTP_MAX_CONNECTIONS_PER_TENANT', 1, 100_000),
      maxClients: integer('CP_SMTP_MAX_CLIENTS', 1, 1_000_000),
      idleTimeoutMs: integer('CP_SMTP_IDLE_TIMEOUT_MS', 1000, 3_600_000),
      authFailureLimit: integer('CP_SMTP_AUTH_FAILURE_LIMIT', 1, 1000),
      authSourceFailureLimit: integer('CP_SMTP_AUTH_SOURCE_FAILURE_LIMIT', 1, 100_000),
      authLockoutSeconds: integer('CP_SMTP_AUTH_LOCKOUT_SECONDS', 1, 86_400),
      authMaxDelayMs: integer('CP_SMTP_AUTH_MAX_DELAY_MS', 0, 60_000),
      maxUnauthenticatedCommands: integer('CP_SMTP_MAX_UNAUTHENTICATED_COMMANDS', 3, 1000),
      factsTtlMs: integer('CP_SMTP_FACTS_TTL_MS', 0, 600_000),
      budgetCacheMs: integer('CP_SMTP_BUDGET_CACHE_MS', 0, 10_000),
      relay: {
        idlePerNode: integer('CP_RELAY_IDLE_PER_NODE', 0, 10_000),
        connectTimeoutMs: integer('CP_RELAY_CONNECT_TIMEOUT_MS', 100, 120_000),
        commandTimeoutMs: integer('CP_RELAY_COMMAND_TIMEOUT_MS', 1000, 600_000),
        downForMs: integer('CP_RELAY_NODE_DOWN_MS', 100, 3_600_000),
      },
    },
  };
  return problems.length > 0 ? err(problems) : ok(config);
}

/** The effective configuration as operators may see it: every secret replaced, URLs without passwords. */
export function redactedConfig(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, (typeof SETTINGS)[SettingName]][]) {
    const given = env[name];
    const value = given !== undefined && given !== '' ? given : ((spec as { default?: string }).default ?? '');
    if (value === '') {
      out[name] = '(unset)';
    } else if (name === 'DATABASE_URL' || name === 'CP_MIGRATION_DATABASE_URL' || name === 'REDIS_URL') {
      out[name] = redactUrl(value);
    } else if (spec.secret) {
      out[name] = name === 'CP_MASTER_KEYS'
        ? value.split(',').map((p) => `${p.split(':')[0]}:[redacted]`).join(',')
        : '[redacted]';
    } else {
      out[name] = value;
    }
  }
  return out;
}

function safeHost(u: string): string {
  try {
    return new URL(u).hostname;
  } catch {
    return '';
  }
}

export function redactUrl(value: string): string {
  try {
    const u = new URL(value);
    if (u.password) u.password = 'redacted';
    return u.toString();
  } catch {
    return '[unparseable, redacted]';
  }
}
