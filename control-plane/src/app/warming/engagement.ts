/**
 * Engagement with warming mail, found by its Message-ID: an open, a reply, a "not spam" or "moved to
 * inbox" mark. It is recorded as the sending tenant's engagement on the warming lane, weighted by the
 * recipient's weight (a golden seed's interactions count for more), once per send and kind.
 */
import type { AppContext } from '../../context.js';
import { isWarmingTag } from '../../adapters/crypto/warming-tag.js';
import { parseWarmingMessageId } from '../../domain/warming/messages.js';
import { ingestEngagement } from '../events/ingest-engagement.js';

export type WarmingEngagementKind = 'open' | 'reply' | 'not_spam' | 'moved_to_inbox';

export interface WarmingEngagementResult {
  message_id: string;
  recognised: boolean;
  duplicate: boolean;
  tenant_id: string | null;
  weight: number | null;
}

export async function recordWarmingEngagement(ctx: AppContext, input: { message_id: string; kind: WarmingEngagementKind; occurred_at?: string | undefined }): Promise<WarmingEngagementResult> {
  const parsed = parseWarmingMessageId(input.message_id);
  const none = { message_id: input.message_id, recognised: false, duplicate: false, tenant_id: null, weight: null };
  // a forged or foreign Message-ID is simply not ours: nothing is credited
  if (!parsed || !isWarmingTag(ctx.config.pseudonymKey, parsed.sendId, parsed.tag)) return none;
  const send = await ctx.db
    .selectFrom('warming_sends as s')
    .innerJoin('warming_members as r', 'r.id', 's.recipient_id')
    .select(['s.id', 's.tenant_id', 'r.weight'])
    .where('s.id', '=', parsed.sendId)
    .executeTakeFirst();
  if (!send) return none;
  const weight = Number(send.weight);
  const kind = input.kind === 'moved_to_inbox' ? 'not_spam' : input.kind;
  const at = input.occurred_at ?? ctx.now().toISOString();
  const report = await ingestEngagement(ctx, [
    { id: `warming:${send.id}:${input.kind}`, tenant_id: send.tenant_id, kind, occurred_at: at, lane: 'warming', message_id: input.message_id, weight },
  ]);
  const column = input.kind === 'open' ? 'opened_at' : input.kind === 'reply' ? 'replied_at' : 'rescued_at';
  await ctx.db.updateTable('warming_sends').set({ [column]: new Date(at) }).where('id', '=', send.id).where(column, 'is', null).execute();
  return { message_id: input.message_id, recognised: true, duplicate: report.accepted === 0, tenant_id: send.tenant_id, weight };
}
