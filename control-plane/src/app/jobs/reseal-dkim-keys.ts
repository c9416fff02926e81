/**
 * After a master-key rotation (a new key first in CP_MASTER_KEYS), re-seal DKIM private keys still
 * under an older key, a batch per tick. SKIP LOCKED keeps concurrent replicas off each other's rows;
 * once nothing is left under the old key, operators may drop it from the configuration.
 */
import type { Job } from '../../worker/job-runner.js';
import { dkimKeyAad } from '../sending-domains.js';
import { writeAudit } from '../audit.js';
import { systemCaller } from '../actor.js';

export function resealDkimKeysJob(batchSize: number, intervalMs: number): Job {
  return {
    name: 'reseal-dkim-keys',
    intervalMs,
    async run(ctx, tx) {
      const current = ctx.secretBox.currentKeyId;
      const rows = await tx
        .selectFrom('sending_domains')
        .select(['id', 'tenant_id', 'dkim_key_id', 'dkim_private_key_enc'])
        .where('dkim_key_id', '!=', current)
        .orderBy('id')
        .limit(batchSize)
        .forUpdate()
        .skipLocked()
        .execute();
      for (const r of rows) {
        const aad = dkimKeyAad(r.id);
        const plain = ctx.secretBox.open({ keyId: r.dkim_key_id, box: r.dkim_private_key_enc }, aad);
        const sealed = ctx.secretBox.seal(plain, aad);
        plain.fill(0);
        await tx.updateTable('sending_domains').set({ dkim_private_key_enc: sealed.box, dkim_key_id: sealed.keyId }).where('id', '=', r.id).execute();
      }
      if (rows.length > 0) {
        await writeAudit(tx, systemCaller('reseal-dkim-keys'), {
          action: 'secrets.reseal',
          targetType: 'sending_domain',
          targetId: null,
          details: { count: rows.length, to_key_id: current, from_key_ids: [...new Set(rows.map((r) => r.dkim_key_id))].sort() },
        });
      }
      return { didWork: rows.length > 0, detail: { resealed: rows.length } };
    },
  };
}
