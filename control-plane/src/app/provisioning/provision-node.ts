/**
 * Provision a KumoMTA node on a provider project, as a list of steps:
 *   1. load the project; resume the pending intent for this node name, if a crashed run left one
 *   2. read the catalog and prices; choose type and location (domain/provisioning/catalog.ts) from the
 *      configured requirements (CP_NODE_*), or reuse the intent's choice
 *   3. persist the intent (idempotency key, node id, sealed node token) BEFORE calling the provider
 *   4. create the server with cloud-init user data that enrols the node (labelled with the key: a
 *      re-run adopts what an earlier run created), and wait for its actions
 *   5. write the node row with the server id and price, mark the intent done (one transaction, audited)
 */
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../../context.js';
import { inTransaction } from '../../adapters/pg/database.js';
import { issueToken, sha256 } from '../../adapters/crypto/tokens.js';
import { choosePlacement, FALLBACK_MONTHLY_USD, serverMonthlyCost, type NodeRequirements } from '../../domain/provisioning/catalog.js';
import { renderCloudInit } from '../../domain/provisioning/cloud-init.js';
import { isProviderError } from '../../domain/provisioning/provider-errors.js';
import { AppError, conflict } from '../../domain/shared/errors.js';
import type { Caller } from '../actor.js';
import { writeAudit } from '../audit.js';
import { getNode, type NodeView } from '../nodes.js';
import { markTokenReadOnly, providerOf } from './provider-projects.js';
import { deleteServerAndWait, guarded } from './provider-calls.js';
import { toUsd } from './prices.js';

export interface ProvisionNodeInput {
  project_id: string;
  name: string;
  /** overrides CP_NODE_LOCATIONS for this node, in order of preference */
  locations?: string[] | undefined;
  relay_port?: number | undefined;
  canary?: boolean | undefined;
}

export interface ProvisionedNode {
  node: NodeView;
  /** the node token, shown only here (it is also in the server's user data) */
  token: string;
  provider_server_id: string;
  server_type: string;
  location: string;
  /** a crashed earlier run had created the server; this run adopted it */
  adopted: boolean;
  monthly_cost: { amount_usd: number; source: 'provider' | 'fallback' };
}

interface ServerIntentSpec {
  node_id: string;
  server_type: string;
  location: string;
  monthly_usd: number | null;
  cost_source: 'provider' | 'fallback';
}

const tokenAad = (intentId: string) => `provisioning_intents:${intentId}:node_token`;

export async function provisionNode(ctx: AppContext, caller: Caller, input: ProvisionNodeInput): Promise<ProvisionedNode> {
  const cfg = ctx.config.provisioning;
  if (!cfg.nodeControlPlaneUrl) throw new AppError('PRECONDITION_FAILED', 'CP_NODE_CONTROL_PLANE_URL is not set: a provisioned node would not know where to pull its policy from');
  const { provider } = await providerOf(ctx, ctx.db, input.project_id);

  // 1. a node of that name already, or a crashed run to resume
  const existing = await ctx.db.selectFrom('nodes').select('id').where('name', '=', input.name).executeTakeFirst();
  if (existing) throw conflict(`a node named ${input.name} exists`);
  let intent = await ctx.db
    .selectFrom('provisioning_intents')
    .selectAll()
    .where('kind', '=', 'server')
    .where('node_name', '=', input.name)
    .where('status', '=', 'pending')
    .executeTakeFirst();
  if (intent && intent.project_id !== input.project_id) throw conflict(`node ${input.name} is being provisioned in another provider project (intent ${intent.idempotency_key})`);

  let spec: ServerIntentSpec;
  let token: string;
  if (intent) {
    spec = intent.spec as unknown as ServerIntentSpec;
    token = ctx.secretBox.open({ keyId: intent.node_token_key_id!, box: intent.node_token_enc! }, tokenAad(intent.id)).toString('utf8');
  } else {
    // 2. what to buy, from what the provider sells right now
    const [types, locations, pricing] = await Promise.all([provider.listServerTypes(), provider.listLocations(), provider.getPricing()]);
    const req: NodeRequirements = {
      minCores: cfg.nodeRequirements.minCores,
      minMemoryGb: cfg.nodeRequirements.minMemoryGb,
      ...(cfg.nodeRequirements.architecture ? { architecture: cfg.nodeRequirements.architecture } : {}),
      ...((input.locations ?? cfg.nodeRequirements.locations).length ? { locations: input.locations ?? cfg.nodeRequirements.locations } : {}),
    };
    const chosen = choosePlacement(types, locations, req);
    if (!chosen.ok) throw new AppError('PRECONDITION_FAILED', `no server to buy: ${chosen.error.detail}`, { context: { reason: chosen.error.reason } });
    const cost = serverMonthlyCost(pricing, chosen.value.serverType.name, chosen.value.location.name);
    spec = {
      node_id: randomUUID(),
      server_type: chosen.value.serverType.name,
      location: chosen.value.location.name,
      monthly_usd: cost.source === 'provider' ? toUsd(cost, cfg.usdPerEur) : null,
      cost_source: cost.source,
    };
    // 3. the key is stored before anything is bought
    const id = randomUUID();
    token = issueToken('node').token;
    const sealed = ctx.secretBox.seal(Buffer.from(token, 'utf8'), tokenAad(id));
    const now = ctx.now();
    intent = await inTransaction(ctx.db, async (tx) => {
      const row = await tx
        .insertInto('provisioning_intents')
        .values({
          id,
          project_id: input.project_id,
          kind: 'server',
          idempotency_key: `node-${spec.node_id}`,
          node_name: input.name,
          spec: JSON.stringify(spec),
          node_token_enc: sealed.box,
          node_token_key_id: sealed.keyId,
          created_at: now,
          updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await writeAudit(tx, caller, { action: 'node.provision.start', targetType: 'node', targetId: spec.node_id, details: { name: input.name, project_id: input.project_id, idempotency_key: row.idempotency_key, server_type: spec.server_type, location: spec.location } });
      return row;
    });
  }

  // 4. buy (or adopt) the server, and wait until it runs
  const userData = renderCloudInit({
    control_plane_url: cfg.nodeControlPlaneUrl,
    node_id: spec.node_id,
    node_token: token,
    policy_public_key_hex: ctx.policySigner.publicKeyRaw.toString('hex'),
  });
  let created;
  try {
    created = await provider.createServer({
      name: input.name,
      serverType: spec.server_type,
      location: spec.location,
      image: cfg.nodeImage,
      ...(cfg.nodeSshKeys.length ? { sshKeys: cfg.nodeSshKeys } : {}),
      userData,
      labels: { role: 'kumomta-node', 'kcp.node': spec.node_id },
      idempotencyKey: intent.idempotency_key,
    });
    await provider.waitForActions(created.actions);
  } catch (e) {
    if (isProviderError(e) && e.providerCode === 'PROVIDER_TOKEN_READ_ONLY') await markTokenReadOnly(ctx, caller, input.project_id);
    throw e;
  }
  const server = (await provider.getServer(created.server.id)) ?? created.server;
  if (!server.publicIpv4) throw new AppError('DEPENDENCY_UNAVAILABLE', `server ${server.id} has no public IPv4 address`);

  // 5. the node, as the control plane's source of truth
  const t = { sha256: sha256(token), prefix: token.slice(0, 11) };
  const now = ctx.now();
  const intentId = intent.id;
  const key = intent.idempotency_key;
  const recorded = await inTransaction(ctx.db, async (tx) => {
    // still ours? a cancel marks the intent first, so a run that lost the race records nothing
    const stillPending = await tx
      .updateTable('provisioning_intents')
      .set({ status: 'done', resource_id: server.id, node_token_enc: null, node_token_key_id: null, updated_at: now })
      .where('id', '=', intentId)
      .where('status', '=', 'pending')
      .returning('id')
      .executeTakeFirst();
    if (!stillPending) return false;
    await tx
      .insertInto('nodes')
      .values({
        id: spec.node_id,
        name: input.name,
        provider: provider.provider,
        region: spec.location,
        public_address: server.publicIpv4!,
        relay_port: input.relay_port,
        monthly_cost_usd: spec.monthly_usd,
        canary: input.canary ?? false,
        token_sha256: t.sha256,
        token_prefix: t.prefix,
        provider_project_id: input.project_id,
        provider_server_id: server.id,
        provider_idempotency_key: key,
        created_at: now,
        updated_at: now,
      })
      .execute();
    await writeAudit(tx, caller, {
      action: 'node.provision',
      targetType: 'node',
      targetId: spec.node_id,
      details: { name: input.name, project_id: input.project_id, provider_server_id: server.id, server_type: spec.server_type, location: spec.location, adopted: created.adopted, idempotency_key: key },
    });
    return true;
  });
  if (!recorded) {
    // cancelled while this run waited on the provider: what it bought after the cancel's sweep is
    // this run's to give back (a crash here leaves it to a second cancel, which sweeps again)
    await guarded(ctx, caller, input.project_id, () => deleteServerAndWait(provider, server.id));
    throw conflict(`the provisioning of ${input.name} was cancelled (intent ${key}) while it ran; the server it had bought was deleted`, { idempotency_key: key });
  }
  return {
    node: await getNode(ctx, spec.node_id),
    token,
    provider_server_id: server.id,
    server_type: spec.server_type,
    location: spec.location,
    adopted: created.adopted,
    monthly_cost: { amount_usd: spec.monthly_usd ?? FALLBACK_MONTHLY_USD.vps, source: spec.cost_source },
  };
}
