/**
 * Provider steps shared by the buy, retire and cancel use cases, so that releasing an IP or deleting a
 * server means one thing whichever path reaches it. Each step is safe to re-run after a crash: what is
 * already gone at the provider counts as done.
 */
import type { AppContext } from '../../context.js';
import type { CloudProvider } from '../../domain/provisioning/cloud-provider.js';
import { hasLabels, intentLabels } from '../../domain/provisioning/idempotency.js';
import { isProviderError } from '../../domain/provisioning/provider-errors.js';
import type { Caller } from '../actor.js';
import { markTokenReadOnly } from './provider-projects.js';

/** Runs provider calls; a write the provider refused as read-only is remembered on the project. */
export async function guarded<T>(ctx: AppContext, caller: Caller, projectId: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isProviderError(e) && e.providerCode === 'PROVIDER_TOKEN_READ_ONLY') await markTokenReadOnly(ctx, caller, projectId);
    throw e;
  }
}

/**
 * Reverse a Floating IP purchase: PTR reset (so the name does not outlive the address), unassigned,
 * deleted. False when it was already gone.
 */
export async function releaseFloatingIp(provider: CloudProvider, fipId: string, address: string): Promise<boolean> {
  const fip = await provider.getFloatingIp(fipId);
  if (!fip) return false;
  if (fip.reverseDns.some((r) => r.ip === address)) await provider.waitForActions([await provider.setReverseDns(fipId, address, null)]);
  if (fip.serverId) await provider.waitForActions([await provider.unassignFloatingIp(fipId)]);
  return provider.deleteFloatingIp(fipId);
}

/** Delete a server and wait until it is gone. False when it was already gone (a re-run after a crash). */
export async function deleteServerAndWait(provider: CloudProvider, serverId: string): Promise<boolean> {
  const action = await provider.deleteServer(serverId);
  if (!action) return false;
  await provider.waitForActions([action]);
  return true;
}

/**
 * What the provider holds under an intent's idempotency key. Filtered again here: a provider that
 * ignored the label selector must not make a cancel delete a stranger's server.
 */
export async function heldUnderKey(provider: CloudProvider, kind: 'server' | 'floating_ip', key: string): Promise<{ id: string; ip?: string }[]> {
  const labels = intentLabels(key);
  const found = kind === 'server' ? await provider.findServers(labels) : await provider.findFloatingIps(labels);
  return found.filter((r) => hasLabels(r.labels, labels)).map((r) => ('ip' in r ? { id: r.id, ip: r.ip } : { id: r.id }));
}
