/**
 * Provider projects: one cloud account's API token (sealed at rest like DKIM keys, never shown again,
 * never logged) and its port-25 egress state. Load -> pure core (domain/provisioning) -> one write with
 * its audit entry.
 */
import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { AppContext, ProviderProjectConnection } from '../../context.js';
import { inTransaction, type Db, type Tx } from '../../adapters/pg/database.js';
import type { ProviderProjectsTable } from '../../adapters/pg/tables.js';
import { isLoopbackHost } from '../../config/config.js';
import type { CloudProvider } from '../../domain/provisioning/cloud-provider.js';
import { nextEgressState, type Port25Egress } from '../../domain/provisioning/egress.js';
import { applyNodeProbe } from './egress-probes.js';
import { isProviderError } from '../../domain/provisioning/provider-errors.js';
import { AppError, conflict, notFound } from '../../domain/shared/errors.js';
import type { Caller } from '../actor.js';
import { writeAudit } from '../audit.js';
import { iso } from '../views.js';

export interface ProviderProjectView {
  id: string;
  provider: 'hetzner';
  name: string;
  api_url: string;
  token_read_only: boolean;
  port25_egress: Port25Egress;
  port25_changed_at: string;
  port25_note: string | null;
  created_at: string;
  updated_at: string;
}

const COLUMNS = ['id', 'provider', 'name', 'api_url', 'token_read_only', 'port25_egress', 'port25_changed_at', 'port25_note', 'created_at', 'updated_at'] as const;
type Row = Pick<Selectable<ProviderProjectsTable>, (typeof COLUMNS)[number]>;

const view = (r: Row): ProviderProjectView => ({
  id: r.id,
  provider: r.provider,
  name: r.name,
  api_url: r.api_url,
  token_read_only: r.token_read_only,
  port25_egress: r.port25_egress,
  port25_changed_at: iso(r.port25_changed_at),
  port25_note: r.port25_note,
  created_at: iso(r.created_at),
  updated_at: iso(r.updated_at),
});

/** What binds a sealed token to its row; changing it would orphan every stored token. */
export const providerTokenAad = (projectId: string): string => `provider_projects:${projectId}:token`;

export interface RegisterProjectInput {
  name: string;
  token: string;
  api_url?: string | undefined;
  /** the operator's port-25 state at registration (default blocked, as on a new Hetzner account) */
  port25_egress?: Port25Egress | undefined;
}

function checkApiUrl(u: string): void {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    throw new AppError('VALIDATION_FAILED', 'api_url is not a URL', { fields: [{ path: 'json.api_url', message: 'not a URL' }] });
  }
  // the token travels to this URL: plain http only where it cannot leave the machine
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new AppError('VALIDATION_FAILED', 'api_url must use https (plain http only to a loopback host)', { fields: [{ path: 'json.api_url', message: 'must use https' }] });
  }
}

/**
 * Register a project. The token is checked with one read (`GET /locations`): an unknown token is
 * refused; a read-only token is accepted (reads work), and provisioning with it later fails with
 * PROVIDER_TOKEN_READ_ONLY.
 */
export async function registerProviderProject(ctx: AppContext, caller: Caller, input: RegisterProjectInput): Promise<ProviderProjectView> {
  const apiUrl = input.api_url ?? ctx.config.provisioning.hetznerApiUrl;
  checkApiUrl(apiUrl);
  const id = randomUUID();
  const provider = ctx.cloudProvider({ id, provider: 'hetzner', name: input.name, apiUrl, token: input.token });
  try {
    await provider.listLocations();
  } catch (e) {
    if (isProviderError(e) && e.providerCode === 'PROVIDER_UNAUTHENTICATED') {
      throw new AppError('VALIDATION_FAILED', `the provider refused the token of project ${input.name}: ${e.detail}`, { fields: [{ path: 'json.token', message: 'refused by the provider' }], context: e.context });
    }
    throw e;
  }
  const sealed = ctx.secretBox.seal(Buffer.from(input.token, 'utf8'), providerTokenAad(id));
  const now = ctx.now();
  return inTransaction(ctx.db, async (tx) => {
    const taken = await tx.selectFrom('provider_projects').select('id').where('name', '=', input.name).executeTakeFirst();
    if (taken) throw conflict(`a provider project named ${input.name} exists`);
    const row = await tx
      .insertInto('provider_projects')
      .values({ id, provider: 'hetzner', name: input.name, api_url: apiUrl, token_enc: sealed.box, token_key_id: sealed.keyId, port25_egress: input.port25_egress ?? 'blocked', port25_changed_at: now, created_at: now, updated_at: now })
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    await writeAudit(tx, caller, { action: 'provider_project.create', targetType: 'provider_project', targetId: id, details: { after: view(row) } });
    return view(row);
  });
}

export async function listProviderProjects(ctx: AppContext): Promise<{ items: ProviderProjectView[] }> {
  const rows = await ctx.db.selectFrom('provider_projects').select(COLUMNS).orderBy('name').execute();
  return { items: rows.map(view) };
}

export async function getProviderProject(ctx: AppContext, id: string): Promise<ProviderProjectView> {
  const row = await ctx.db.selectFrom('provider_projects').select(COLUMNS).where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('provider project', id);
  return view(row);
}

/** The project's client, its token unsealed for this use only. */
export async function providerOf(ctx: AppContext, db: Db | Tx, projectId: string): Promise<{ project: ProviderProjectView; provider: CloudProvider }> {
  const row = await db.selectFrom('provider_projects').select([...COLUMNS, 'token_enc', 'token_key_id']).where('id', '=', projectId).executeTakeFirst();
  if (!row) throw notFound('provider project', projectId);
  const token = ctx.secretBox.open({ keyId: row.token_key_id, box: row.token_enc }, providerTokenAad(row.id)).toString('utf8');
  const conn: ProviderProjectConnection = { id: row.id, provider: row.provider, name: row.name, apiUrl: row.api_url, token };
  return { project: view(row), provider: ctx.cloudProvider(conn) };
}

/** Remember that the provider refused a write as read-only (shown on the project; audited). */
export async function markTokenReadOnly(ctx: AppContext, caller: Caller, projectId: string): Promise<void> {
  await inTransaction(ctx.db, async (tx) => {
    const r = await tx.updateTable('provider_projects').set({ token_read_only: true, updated_at: ctx.now() }).where('id', '=', projectId).where('token_read_only', '=', false).returning('id').executeTakeFirst();
    if (r) await writeAudit(tx, caller, { action: 'provider_project.token_read_only', targetType: 'provider_project', targetId: projectId, details: {} });
  });
}

export type EgressEventInput =
  | { event: 'limit_requested' | 'limit_granted' | 'limit_denied'; note?: string | undefined }
  | { event: 'probe'; node_id: string; connected: boolean; note?: string | undefined };

/**
 * Record a port-25 event: the operator filed, or the provider granted or denied, the limit request;
 * or the operator records a node's probe by hand (nodes post their own: egress-probes.ts, through the
 * same applyNodeProbe). The state follows nextEgressState.
 */
export async function recordEgressEvent(ctx: AppContext, caller: Caller, projectId: string, input: EgressEventInput): Promise<ProviderProjectView & { node_probe?: { node_id: string; connected: boolean; at: string } }> {
  const now = ctx.now();
  return inTransaction(ctx.db, async (tx) => {
    const before = await tx.selectFrom('provider_projects').select(COLUMNS).where('id', '=', projectId).forNoKeyUpdate().executeTakeFirst();
    if (!before) throw notFound('provider project', projectId);
    let probedAt: Date | null = null;
    // a probe moves the project through applyNodeProbe; the operator's events here, in the one write
    // that also keeps the note
    let egress: { port25_egress?: Port25Egress; port25_changed_at?: Date } = {};
    if (input.event === 'probe') {
      const node = await tx.selectFrom('nodes').select('id').where('id', '=', input.node_id).where('provider_project_id', '=', projectId).executeTakeFirst();
      if (!node) throw notFound('node of this provider project', input.node_id);
      probedAt = (await applyNodeProbe(tx, ctx, caller, input.node_id, { connected: input.connected, detail: `recorded by an operator${input.note !== undefined ? `: ${input.note}` : ''}`, audit: 'always', note: input.note })).at;
    } else {
      const next = nextEgressState(before.port25_egress, { kind: input.event });
      egress = { port25_egress: next, ...(next !== before.port25_egress ? { port25_changed_at: now } : {}) };
      await writeAudit(tx, caller, {
        action: `provider_project.egress.${input.event}`,
        targetType: 'provider_project',
        targetId: projectId,
        details: { before: before.port25_egress, after: next, ...(input.note !== undefined ? { note: input.note } : {}) },
      });
    }
    const row = await tx
      .updateTable('provider_projects')
      .set({ ...egress, ...(input.note !== undefined ? { port25_note: input.note } : {}), updated_at: now })
      .where('id', '=', projectId)
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    return { ...view(row), ...(input.event === 'probe' ? { node_probe: { node_id: input.node_id, connected: input.connected, at: iso(probedAt ?? now) } } : {}) };
  });
}
