/**
 * Sending IPs bought from the provider (Floating IPs on Hetzner), as steps:
 *   buy:    persist the intent (idempotency key) -> create the Floating IP assigned to the node's server
 *           (adopted on a re-run) -> set its PTR to `<egress source>.<zone>` -> wait -> check
 *           forward-confirmed reverse DNS -> the IP row (warming; it carries no mail until FCrDNS is
 *           verified: ipCarriesMail) with its provider id and price, audited
 *   verify: FCrDNS again (after the operator published the A record)
 *   retire: out of mail first (retired, out of its pool), then reverse the buy at the provider:
 *           reset the PTR, unassign, delete
 */
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../../context.js';
import { inTransaction } from '../../adapters/pg/database.js';
import { egressSourceName } from '../../domain/fleet/naming.js';
import { floatingIpMonthlyCost } from '../../domain/provisioning/catalog.js';
import { forwardConfirmed } from '../../domain/provisioning/cloud-init.js';
import type { ProviderFloatingIp } from '../../domain/provisioning/cloud-provider.js';
import { AppError, conflict, notFound } from '../../domain/shared/errors.js';
import type { Caller } from '../actor.js';
import { writeAudit } from '../audit.js';
import { getIp, type IpView } from '../ip-addresses.js';
import { guarded, releaseFloatingIp } from './provider-calls.js';
import { providerOf } from './provider-projects.js';
import { toUsd } from './prices.js';

export interface ProvisionedIp {
  ip: IpView;
  provider_floating_ip_id: string;
  ptr_name: string;
  /** forward-confirmed reverse DNS held: the IP may carry mail */
  rdns_verified: boolean;
  adopted: boolean;
  monthly_cost: { amount_usd: number | null; source: 'provider' | 'fallback' };
}

async function provisionedNode(ctx: AppContext, nodeId: string) {
  const node = await ctx.db.selectFrom('nodes').select(['id', 'name', 'region', 'provider_project_id', 'provider_server_id']).where('id', '=', nodeId).executeTakeFirst();
  if (!node) throw notFound('node', nodeId);
  if (!node.provider_project_id || !node.provider_server_id) throw new AppError('PRECONDITION_FAILED', `node ${node.name} was not provisioned through a provider project; register its IPs with POST /v1/ips`);
  return { ...node, projectId: node.provider_project_id, serverId: node.provider_server_id };
}

async function checkFcrdns(ctx: AppContext, address: string, ptrName: string, fip: ProviderFloatingIp | null): Promise<boolean> {
  const atProvider = fip?.reverseDns.find((r) => r.ip === address)?.ptr ?? null;
  let resolved: string[] = [];
  try {
    resolved = await ctx.resolveAddresses(ptrName);
  } catch (e) {
    ctx.log.warn({ err: { message: (e as Error).message }, ptr: ptrName }, 'reverse DNS check: the PTR name did not resolve');
  }
  return forwardConfirmed(address, ptrName, atProvider, resolved);
}

export async function provisionIp(ctx: AppContext, caller: Caller, nodeId: string, input: { rdns_zone?: string | undefined }): Promise<ProvisionedIp> {
  const node = await provisionedNode(ctx, nodeId);
  const zone = input.rdns_zone ?? ctx.config.provisioning.rdnsZone;
  if (!zone) throw new AppError('PRECONDITION_FAILED', 'no reverse DNS zone: set CP_IP_RDNS_ZONE or give rdns_zone');
  const { provider } = await providerOf(ctx, ctx.db, node.projectId);

  let intent = await ctx.db.selectFrom('provisioning_intents').selectAll().where('kind', '=', 'floating_ip').where('node_id', '=', nodeId).where('status', '=', 'pending').executeTakeFirst();
  if (!intent) {
    const id = randomUUID();
    const now = ctx.now();
    intent = await inTransaction(ctx.db, async (tx) => {
      const row = await tx
        .insertInto('provisioning_intents')
        .values({ id, project_id: node.projectId, kind: 'floating_ip', idempotency_key: `ip-${id}`, node_id: nodeId, spec: JSON.stringify({ home_location: node.region, rdns_zone: zone }), created_at: now, updated_at: now })
        .returningAll()
        .executeTakeFirstOrThrow();
      await writeAudit(tx, caller, { action: 'ip.provision.start', targetType: 'node', targetId: nodeId, details: { idempotency_key: row.idempotency_key, home_location: node.region } });
      return row;
    });
  }
  const key = intent.idempotency_key;
  const spec = intent.spec as { home_location: string; rdns_zone: string };

  const { fip, adopted, ptrName, verified, pricing } = await guarded(ctx, caller, node.projectId, async () => {
    const created = await provider.createFloatingIp({
      family: 'ipv4',
      homeLocation: spec.home_location,
      serverId: node.serverId,
      description: `kcp sending IP of ${node.name}`,
      labels: { role: 'kumomta-sending-ip', 'kcp.node': nodeId },
      idempotencyKey: key,
    });
    const actions = [...created.actions];
    if (created.floatingIp.serverId !== node.serverId) actions.push(await provider.assignFloatingIp(created.floatingIp.id, node.serverId));
    await provider.waitForActions(actions);
    const ptrName = `${egressSourceName(created.floatingIp.ip)}.${spec.rdns_zone}`;
    await provider.waitForActions([await provider.setReverseDns(created.floatingIp.id, created.floatingIp.ip, ptrName)]);
    const fip = (await provider.getFloatingIp(created.floatingIp.id)) ?? created.floatingIp;
    const verified = await checkFcrdns(ctx, fip.ip, ptrName, fip);
    const pricing = await provider.getPricing().catch(() => null);
    return { fip, adopted: created.adopted, ptrName, verified, pricing };
  });
  const cost = floatingIpMonthlyCost(pricing, spec.home_location);
  const monthlyUsd = cost.source === 'provider' ? toUsd(cost, ctx.config.provisioning.usdPerEur) : null;

  const now = ctx.now();
  const ipId = await inTransaction(ctx.db, async (tx) => {
    // still ours? a cancel marks the intent first, so a run that lost the race records nothing
    const stillPending = await tx.updateTable('provisioning_intents').set({ status: 'done', resource_id: fip.id, updated_at: now }).where('id', '=', intent.id).where('status', '=', 'pending').returning('id').executeTakeFirst();
    if (!stillPending) return null;
    const taken = await tx.selectFrom('ip_addresses').select('id').where('address', '=', fip.ip).executeTakeFirst();
    if (taken) throw conflict(`IP ${fip.ip} is already registered`);
    const row = await tx
      .insertInto('ip_addresses')
      .values({
        address: fip.ip,
        node_id: nodeId,
        state: 'warming',
        rdns_name: ptrName,
        monthly_cost_usd: monthlyUsd,
        state_changed_at: now,
        provider_project_id: node.projectId,
        provider_floating_ip_id: fip.id,
        provider_idempotency_key: key,
        ptr_name: ptrName,
        rdns_verified_at: verified ? now : null,
        created_at: now,
        updated_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await writeAudit(tx, caller, {
      action: 'ip.provision',
      targetType: 'ip_address',
      targetId: row.id,
      details: { address: fip.ip, node_id: nodeId, provider_floating_ip_id: fip.id, ptr_name: ptrName, rdns_verified: verified, adopted, idempotency_key: key },
    });
    return row.id;
  });
  if (ipId === null) {
    // cancelled while this run waited on the provider: what it bought after the cancel's sweep is
    // this run's to give back (a crash here leaves it to a second cancel, which sweeps again)
    await guarded(ctx, caller, node.projectId, () => releaseFloatingIp(provider, fip.id, fip.ip));
    throw conflict(`the purchase of this IP was cancelled (intent ${key}) while it ran; the Floating IP it had bought was released`, { idempotency_key: key });
  }
  return { ip: await getIp(ctx, ipId), provider_floating_ip_id: fip.id, ptr_name: ptrName, rdns_verified: verified, adopted, monthly_cost: { amount_usd: monthlyUsd, source: cost.source } };
}

async function provisionedIp(ctx: AppContext, ipId: string) {
  const ip = await ctx.db.selectFrom('ip_addresses').select(['id', 'address', 'state', 'provider_project_id', 'provider_floating_ip_id', 'ptr_name', 'rdns_verified_at']).where('id', '=', ipId).executeTakeFirst();
  if (!ip) throw notFound('ip address', ipId);
  if (!ip.provider_project_id || !ip.provider_floating_ip_id) throw new AppError('PRECONDITION_FAILED', `IP ${ip.address} was not bought through a provider project`);
  return { ...ip, address: ip.address.replace(/\/(32|128)$/, ''), projectId: ip.provider_project_id, fipId: ip.provider_floating_ip_id };
}

/** Check forward-confirmed reverse DNS again; the IP carries mail only while it holds. */
export async function verifyIpRdns(ctx: AppContext, caller: Caller, ipId: string): Promise<{ ip: IpView; rdns_verified: boolean; ptr_name: string | null }> {
  const ip = await provisionedIp(ctx, ipId);
  const { provider } = await providerOf(ctx, ctx.db, ip.projectId);
  const fip = await provider.getFloatingIp(ip.fipId);
  const verified = ip.ptr_name !== null && (await checkFcrdns(ctx, ip.address, ip.ptr_name, fip));
  const now = ctx.now();
  await inTransaction(ctx.db, async (tx) => {
    await tx.updateTable('ip_addresses').set({ rdns_verified_at: verified ? now : null, updated_at: now }).where('id', '=', ipId).execute();
    await writeAudit(tx, caller, { action: 'ip.rdns.verify', targetType: 'ip_address', targetId: ipId, details: { ptr_name: ip.ptr_name, verified, before: ip.rdns_verified_at !== null } });
  });
  return { ip: await getIp(ctx, ipId), rdns_verified: verified, ptr_name: ip.ptr_name };
}

/** Release a bought IP: out of mail at once, then PTR reset, unassigned and deleted at the provider. */
export async function retireIpFromProvider(ctx: AppContext, caller: Caller, ipId: string): Promise<{ ip: IpView; released: boolean }> {
  const ip = await provisionedIp(ctx, ipId);
  const { provider } = await providerOf(ctx, ctx.db, ip.projectId);
  if (ip.state !== 'retired') {
    const now = ctx.now();
    await inTransaction(ctx.db, async (tx) => {
      await tx.deleteFrom('ip_pool_members').where('ip_id', '=', ipId).execute();
      await tx.updateTable('ip_addresses').set({ state: 'retired', state_changed_at: now, updated_at: now }).where('id', '=', ipId).execute();
      await writeAudit(tx, caller, { action: 'ip.state.retired', targetType: 'ip_address', targetId: ipId, details: { before: ip.state, reason: 'released to the provider' } });
    });
  }
  const released = await guarded(ctx, caller, ip.projectId, () => releaseFloatingIp(provider, ip.fipId, ip.address));
  const now = ctx.now();
  await inTransaction(ctx.db, async (tx) => {
    await tx.updateTable('ip_addresses').set({ rdns_verified_at: null, updated_at: now }).where('id', '=', ipId).execute();
    await writeAudit(tx, caller, { action: 'ip.provider_release', targetType: 'ip_address', targetId: ipId, details: { provider_floating_ip_id: ip.fipId, released } });
  });
  return { ip: await getIp(ctx, ipId), released };
}
