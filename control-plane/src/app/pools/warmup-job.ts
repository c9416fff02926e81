/**
 * Once per UTC day per IP: judge the day that ended (volume per mailbox provider, bounces,
 * complaints, all from the IP's own delivery events) and move the IP along its warm-up (pure
 * decideWarmup). Re-running on the same day changes nothing.
 */
import { sql } from 'kysely';
import type { Tx } from '../../adapters/pg/database.js';
import type { AppContext } from '../../context.js';
import { egressSourceName, MAILBOX_PROVIDERS, providerOf } from '../../domain/fleet/naming.js';
import { decideWarmup, type DayTotals } from '../../domain/fleet/warmup.js';
import { utcDay } from '../../domain/trust/rollup.js';
import { systemCaller } from '../actor.js';
import { writeAudit } from '../audit.js';
import { readSettings } from '../settings.js';

async function dayTotals(tx: Tx, source: string, from: Date, to: Date): Promise<DayTotals & { lastSent: Date | null }> {
  const { rows } = await sql<{ recipient_domain: string | null; sent: string; bounces: string; complaints: string; last_sent: Date | null }>`
    SELECT recipient_domain,
      count(*) FILTER (WHERE outcome IN ('delivered', 'expired') OR (outcome = 'hard_bounce' AND record_type <> 'SoftBounceStreak')) AS sent,
      count(*) FILTER (WHERE outcome = 'hard_bounce') AS bounces,
      count(*) FILTER (WHERE outcome = 'complaint') AS complaints,
      max(occurred_at) FILTER (WHERE outcome = 'delivered') AS last_sent
    FROM delivery_events
    WHERE egress_source = ${source} AND occurred_at >= ${from} AND occurred_at < ${to}
    GROUP BY recipient_domain`.execute(tx);
  const sent = { gmail: 0, microsoft: 0, yahoo: 0, other: 0 };
  let hardBounces = 0;
  let complaints = 0;
  let lastSent: Date | null = null;
  for (const r of rows) {
    sent[providerOf(r.recipient_domain)] += Number(r.sent);
    hardBounces += Number(r.bounces);
    complaints += Number(r.complaints);
    if (r.last_sent && (!lastSent || r.last_sent > lastSent)) lastSent = r.last_sent;
  }
  return { sent, hardBounces, complaints, lastSent };
}

export async function runWarmup(ctx: AppContext, tx: Tx, now: Date): Promise<{ evaluated: number; changed: number }> {
  const s = (await readSettings(tx)).ip_warmup;
  const today = utcDay(now);
  const dayStart = new Date(`${today}T00:00:00.000Z`);
  const yesterdayStart = new Date(dayStart.getTime() - 86_400_000);
  const ips = await tx
    .selectFrom('ip_addresses')
    .select(['id', 'address', 'state', 'warmup_day', 'state_changed_at', 'last_sent_at'])
    .where('state', '!=', 'retired')
    .where((eb) => eb.or([eb('warmup_evaluated_on', 'is', null), eb('warmup_evaluated_on', '<', today)]))
    .orderBy('id')
    .forUpdate()
    .skipLocked()
    .execute();
  const caller = systemCaller('ip-warmup');
  let changed = 0;
  for (const ip of ips) {
    const totals = await dayTotals(tx, egressSourceName(ip.address), yesterdayStart, dayStart);
    const lastSentAt = totals.lastSent && (!ip.last_sent_at || totals.lastSent > ip.last_sent_at) ? totals.lastSent : ip.last_sent_at;
    const action = decideWarmup({ state: ip.state, day: ip.warmup_day, stateChangedAt: ip.state_changed_at, lastSentAt, yesterday: totals, now }, s);
    const set: Record<string, unknown> = { warmup_evaluated_on: today, last_sent_at: lastSentAt, updated_at: now };
    switch (action.kind) {
      case 'advance':
        set.warmup_day = action.toDay;
        break;
      case 'complete':
        Object.assign(set, { state: 'active', state_changed_at: now });
        break;
      case 'rewarm':
      case 'rested':
        Object.assign(set, { state: 'warming', warmup_day: 0, state_changed_at: now });
        break;
      default:
        break;
    }
    await tx.updateTable('ip_addresses').set(set).where('id', '=', ip.id).execute();
    if (action.kind !== 'none') {
      changed += action.kind === 'hold' ? 0 : 1;
      const auditAction = { advance: 'ip.warmup.advance', hold: 'ip.warmup.hold', complete: 'ip.state.active', rewarm: 'ip.state.warming', rested: 'ip.state.warming' }[action.kind];
      await writeAudit(tx, caller, {
        action: auditAction,
        targetType: 'ip_address',
        targetId: ip.id,
        details: { day: ip.warmup_day, reason: action.reason, yesterday: { sent: totals.sent, hard_bounces: totals.hardBounces, complaints: totals.complaints }, providers: MAILBOX_PROVIDERS },
      });
    }
  }
  return { evaluated: ips.length, changed };
}
