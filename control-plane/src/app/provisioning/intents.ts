/**
 * Provisioning intents as the operator sees them, and cancelling one a crashed run left pending.
 *
 * A pending intent is a create that may have landed at the provider without us hearing of it. Re-running
 * the provision adopts it; cancelling gives it up: whatever the provider holds under the intent's
 * idempotency key is deleted, then the intent is marked cancelled and its sealed node token dropped, so
 * the next run for that node starts afresh under a new key.
 */
import type { Selectable } from 'kysely';
import type { AppContext } from '../../context.js';
import { inTransaction } from '../../adapters/pg/database.js';
import type { ProvisioningIntentsTable } from '../../adapters/pg/tables.js';
import { mayCancelIntent, type IntentStatus } from '../../domain/provisioning/lifecycle.js';
import { conflict, notFound } from '../../domain/shared/errors.js';
import type { Caller } from '../actor.js';
import { writeAudit } from '../audit.js';
import { beforeCursor, sortKey, toPage, type Page } from '../pagination.js';
import { iso } from '../views.js';
import { deleteServerAndWait, guarded, heldUnderKey, releaseFloatingIp } from './provider-calls.js';
import { providerOf } from './provider-projects.js';

export interface IntentView {
  id: string;
  kind: 'server' | 'floating_ip';
  project_id: string;
  project_name: string;
  /** server: the node to be; floating_ip: the node it is bought for */
  node_id: string | null;
  node_name: string | null;
  idempotency_key: string;
  status: IntentStatus;
  spec: Record<string, unknown>;
  /** the provider's id of what it created, once done */
  resource_id: string | null;
  created_at: string;
  updated_at: string;
}

// never the sealed node token (node_token_enc, node_token_key_id): it is the node's credential
const COLUMNS = ['id', 'kind', 'project_id', 'node_name', 'node_id', 'idempotency_key', 'status', 'spec', 'resource_id', 'created_at', 'updated_at'] as const;
type Row = Pick<Selectable<ProvisioningIntentsTable>, (typeof COLUMNS)[number]> & { project_name: string; ip_node_name: string | null };

const view = (r: Row): IntentView => {
  const spec = (r.spec ?? {}) as Record<string, unknown>;
  return {
    id: r.id,
    kind: r.kind,
    project_id: r.project_id,
    project_name: r.project_name,
    // a server intent has no node row to point at yet; its node id is chosen up front, in the spec
    node_id: r.node_id ?? (typeof spec['node_id'] === 'string' ? spec['node_id'] : null),
    node_name: r.node_name ?? r.ip_node_name,
    idempotency_key: r.idempotency_key,
    status: r.status,
    spec,
    resource_id: r.resource_id,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
};

function baseQuery(ctx: AppContext) {
  return ctx.db
    .selectFrom('provisioning_intents')
    .innerJoin('provider_projects', 'provider_projects.id', 'provisioning_intents.project_id')
    .leftJoin('nodes', 'nodes.id', 'provisioning_intents.node_id')
    .select(COLUMNS.map((c) => `provisioning_intents.${c}` as const))
    .select(['provider_projects.name as project_name', 'nodes.name as ip_node_name']);
}

/** Newest first: what an operator looks for is the run that just failed. */
export async function listProvisioningIntents(ctx: AppContext, q: { limit: number; cursor?: string | undefined; status?: IntentStatus | undefined }): Promise<Page<IntentView>> {
  let query = baseQuery(ctx).select(sortKey('provisioning_intents').as('_k'));
  if (q.status) query = query.where('provisioning_intents.status', '=', q.status);
  const before = beforeCursor('provisioning_intents', q.cursor);
  if (before) query = query.where(before);
  const rows = await query.orderBy('provisioning_intents.created_at', 'desc').orderBy('provisioning_intents.id', 'desc').limit(q.limit + 1).execute();
  const page = toPage(rows, q.limit);
  return { items: page.items.map(view), next_cursor: page.next_cursor };
}

async function getIntent(ctx: AppContext, id: string): Promise<IntentView> {
  const row = await baseQuery(ctx).where('provisioning_intents.id', '=', id).executeTakeFirst();
  if (!row) throw notFound('provisioning intent', id);
  return view(row);
}

export interface CancelledIntent {
  intent: IntentView;
  /** servers found under the intent's key and deleted */
  deleted_servers: string[];
  /** Floating IPs found under the intent's key and released */
  released_floating_ips: { id: string; address: string }[];
}

export async function cancelProvisioningIntent(ctx: AppContext, caller: Caller, id: string): Promise<CancelledIntent> {
  const intent = await getIntent(ctx, id);
  const may = mayCancelIntent(intent.status);
  if (!may.ok) throw conflict(`intent ${intent.idempotency_key} is done: retire the node or IP it made instead`, { status: may.error.status });
  const { provider } = await providerOf(ctx, ctx.db, intent.project_id);

  // 1. the intent first: a provision run that has not finished finds it cancelled and records nothing
  //    (it gives back what it bought itself), so nothing can be bought under the key and kept after
  await inTransaction(ctx.db, async (tx) => {
    const row = await tx
      .updateTable('provisioning_intents')
      .set({ status: 'cancelled', node_token_enc: null, node_token_key_id: null, updated_at: ctx.now() })
      .where('id', '=', id)
      .where('status', 'in', ['pending', 'cancelled'])
      .returning('id')
      .executeTakeFirst();
    if (!row) throw conflict(`intent ${intent.idempotency_key} finished before it could be cancelled: retire the node or IP it made instead`, { status: 'done' });
    await writeAudit(tx, caller, {
      action: intent.status === 'pending' ? 'provisioning_intent.cancel' : 'provisioning_intent.sweep',
      targetType: 'provisioning_intent',
      targetId: id,
      details: { kind: intent.kind, project_id: intent.project_id, node_id: intent.node_id, node_name: intent.node_name, idempotency_key: intent.idempotency_key },
    });
  });

  // 2. then whatever the provider holds under the key
  const { servers, fips } = await guarded(ctx, caller, intent.project_id, async () => {
    const held = await heldUnderKey(provider, intent.kind, intent.idempotency_key);
    const servers: string[] = [];
    const fips: { id: string; address: string }[] = [];
    for (const r of held) {
      if (intent.kind === 'server') {
        await deleteServerAndWait(provider, r.id);
        servers.push(r.id);
      } else {
        await releaseFloatingIp(provider, r.id, r.ip ?? '');
        fips.push({ id: r.id, address: r.ip ?? '' });
      }
    }
    return { servers, fips };
  });
  await writeAudit(ctx.db, caller, {
    action: 'provisioning_intent.swept',
    targetType: 'provisioning_intent',
    targetId: id,
    details: { idempotency_key: intent.idempotency_key, deleted_servers: servers, released_floating_ips: fips },
  });
  return { intent: await getIntent(ctx, id), deleted_servers: servers, released_floating_ips: fips };
}
