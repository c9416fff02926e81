/**
 * DKIM private keys for a node, over the node-authenticated channel, as separate files: never inside
 * the policy module or its golden files, which only name the path. Every hand-out is audited.
 */
import type { AppContext } from '../../context.js';
import { writeAudit } from '../audit.js';
import { openDkimPrivateKey } from '../sending-domains.js';

export interface NodeDkimKey {
  domain: string;
  selector: string;
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  /** where the policy expects the file; write it with mode 0600 */
  path: string;
  private_key_pem: string;
}

export async function dkimKeysForNode(ctx: AppContext, node: { id: string; name: string }): Promise<NodeDkimKey[]> {
  const domains = await ctx.db
    .selectFrom('sending_domains as d')
    .innerJoin('tenants as t', 't.id', 'd.tenant_id')
    .select(['d.id', 'd.domain', 'd.dkim_selector', 'd.dkim_algorithm'])
    .where('d.verified_at', 'is not', null)
    .where('t.status', '=', 'active')
    .orderBy('d.domain')
    .execute();
  const keys: NodeDkimKey[] = [];
  for (const d of domains) {
    keys.push({
      domain: d.domain,
      selector: d.dkim_selector,
      algorithm: d.dkim_algorithm,
      path: `${ctx.config.policy.dkimKeyDir}/${d.domain}/${d.dkim_selector}.key`,
      private_key_pem: await openDkimPrivateKey(ctx, d.id),
    });
  }
  await writeAudit(ctx.db, { actor: { kind: 'node', nodeId: node.id }, requestId: null }, { action: 'dkim.keys_served', targetType: 'node', targetId: node.id, details: { domains: keys.map((k) => `${k.selector}._domainkey.${k.domain}`) } });
  return keys;
}
