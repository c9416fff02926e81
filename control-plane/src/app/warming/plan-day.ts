/**
 * Plans a day of the warming network: reads the members and the facts that make one risky, degraded
 * or paused, runs the pure planner, stores the plan. A day is planned once; re-running is a no-op.
 */
import { sql } from 'kysely';
import type { AppContext } from '../../context.js';
import type { Tx } from '../../adapters/pg/database.js';
import { classifyRisk, planDay, type InboxItem, type PlannerMember } from '../../domain/warming/planner.js';
import { composeWarming, warmingMessageId } from '../../domain/warming/messages.js';
import { seededRandom } from '../../domain/warming/planner.js';
import { warmingTag } from '../../adapters/crypto/warming-tag.js';
import { readSettings } from '../settings.js';

const DAY = 86_400_000;
const dayOf = (d: Date) => d.toISOString().slice(0, 10);
const addDays = (day: string, n: number) => dayOf(new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY));

export interface PlanReport {
  day: string;
  planned: number;
  already_planned: boolean;
  isolated: number;
  unmet: number;
}

export async function planWarmingDay(ctx: AppContext, tx: Tx, day: string): Promise<PlanReport> {
  // one planner at a time, and a day only once
  await sql`SELECT pg_advisory_xact_lock(hashtext('kcp-warming-plan'))`.execute(tx);
  const existing = await tx.selectFrom('warming_sends').select((eb) => eb.fn.countAll<string>().as('n')).where('day', '=', day).executeTakeFirstOrThrow();
  if (Number(existing.n) > 0) return { day, planned: Number(existing.n), already_planned: true, isolated: 0, unmet: 0 };

  const settings = await readSettings(tx);
  const dayStart = new Date(`${day}T00:00:00Z`);
  const rows = await tx
    .selectFrom('warming_members as w')
    .leftJoin('tenant_trust as tt', 'tt.tenant_id', 'w.tenant_id')
    .leftJoin('tenant_placements as pl', (j) => j.onRef('pl.tenant_id', '=', 'w.tenant_id').on('pl.superseded_at', 'is', null))
    .select(['w.id', 'w.kind', 'w.address', 'w.tenant_id', 'w.weight', 'w.state', 'w.ramp_kind', 'w.ramp_started_on', 'w.listed', 'w.paused_until', 'tt.score', 'tt.locked', 'pl.tier'])
    .where('w.state', '!=', 'retired')
    .execute();
  // warming sends and their outcomes over the last week, per sender address
  const outcomes = await sql<{ sender: string; sent: string; bounced: string; bounced3: string; sent3: string; complaints: string }>`
    SELECT lower(sender) AS sender, count(*) AS sent,
           count(*) FILTER (WHERE outcome = 'hard_bounce') AS bounced,
           count(*) FILTER (WHERE occurred_at >= ${new Date(dayStart.getTime() - 3 * DAY)}) AS sent3,
           count(*) FILTER (WHERE outcome = 'hard_bounce' AND occurred_at >= ${new Date(dayStart.getTime() - 3 * DAY)}) AS bounced3,
           count(*) FILTER (WHERE outcome = 'complaint') AS complaints
    FROM delivery_events
    WHERE lane = 'warming' AND occurred_at >= ${new Date(dayStart.getTime() - 7 * DAY)} AND occurred_at < ${dayStart} AND sender IS NOT NULL
    GROUP BY lower(sender)`.execute(tx);
  const bySender = new Map(outcomes.rows.map((o) => [o.sender, o]));

  const members: PlannerMember[] = [];
  let isolated = 0;
  for (const r of rows) {
    const o = bySender.get(r.address);
    const sent = Number(o?.sent ?? 0);
    const risk = classifyRisk(
      { listed: r.listed, isolatedByOperator: r.state === 'isolated', recentBouncePct: sent >= 20 ? (100 * Number(o!.bounced)) / sent : null, tenantScore: r.score === null ? null : Number(r.score) },
      settings.warming_network,
    );
    if (risk.risky) isolated++;
    const sent3 = Number(o?.sent3 ?? 0);
    const degraded = sent3 >= 20 && (100 * Number(o!.bounced3)) / sent3 > settings.warming_network.degrade_bounce_pct;
    let pausedUntil = r.paused_until;
    if (Number(o?.complaints ?? 0) > 0 && (!pausedUntil || pausedUntil < dayStart)) pausedUntil = new Date(dayStart.getTime() + settings.warming_network.complaint_pause_days * DAY);
    await tx
      .updateTable('warming_members')
      .set({ risk_reason: risk.reason, cut_pct: degraded ? settings.mailbox_warmup.degrade_cut_pct : 0, paused_until: pausedUntil })
      .where('id', '=', r.id)
      .execute();
    const rampDay = r.ramp_started_on ? Math.floor((Date.parse(`${day}T00:00:00Z`) - Date.parse(`${r.ramp_started_on}T00:00:00Z`)) / DAY) : 0;
    members.push({
      id: r.id,
      kind: r.kind,
      address: r.address,
      domain: r.address.split('@')[1]!,
      tenantId: r.tenant_id,
      weight: Number(r.weight),
      premium: r.tier === 'premium',
      risky: risk.risky,
      active: r.state === 'active' || r.state === 'isolated',
      ramp: r.kind === 'peer' ? { kind: r.ramp_kind, day: Math.max(0, rampDay) } : null,
      cutPct: degraded ? settings.mailbox_warmup.degrade_cut_pct : 0,
      paused: r.state === 'paused' || (pausedUntil !== null && pausedUntil > dayStart),
      rehabilitating: r.locked === true,
    });
  }

  const recent = await tx
    .selectFrom('warming_sends')
    .select(['sender_id', 'recipient_id'])
    .where('day', '>=', addDays(day, -settings.warming_network.pair_cooldown_days))
    .where('day', '<', day)
    .execute();
  // yesterday's peer-to-peer sends that were delivered: today's recipients may answer them
  const inboxRows = await sql<{ id: string; sender_id: string; recipient_id: string; subject: string }>`
    SELECT s.id, s.sender_id, s.recipient_id, s.subject FROM warming_sends s
    JOIN warming_members r ON r.id = s.recipient_id AND r.kind = 'peer'
    WHERE s.day = ${addDays(day, -1)} AND s.status = 'sent'
      AND EXISTS (SELECT 1 FROM delivery_events d WHERE d.message_id = s.message_id AND d.outcome = 'delivered')`.execute(tx);
  const inbox: InboxItem[] = inboxRows.rows.map((r) => ({ sendRef: r.id, from: r.sender_id, to: r.recipient_id }));
  const subjects = new Map(inboxRows.rows.map((r) => [r.id, r.subject]));

  const plan = planDay({
    day,
    seed: `kcp-warming:${day}`,
    members,
    recentPairs: new Set(recent.map((p) => `${p.sender_id} ${p.recipient_id}`)),
    inbox,
    ramp: settings.mailbox_warmup,
    network: settings.warming_network,
  });
  const byId = new Map(members.map((m) => [m.id, m]));
  const rnd = seededRandom(`kcp-warming-text:${day}`);
  const values = plan.sends.map((s) => {
    const id = crypto.randomUUID();
    const from = byId.get(s.senderId)!;
    const to = byId.get(s.recipientId)!;
    const msg = composeWarming({ from: from.address, to: to.address, parentSubject: s.replyTo ? (subjects.get(s.replyTo) ?? null) : null }, rnd);
    return {
      id,
      day,
      sender_id: s.senderId,
      recipient_id: s.recipientId,
      tenant_id: from.tenantId!,
      kind: s.kind,
      reply_to: s.replyTo,
      scheduled_at: s.at,
      message_id: warmingMessageId(id, warmingTag(ctx.config.pseudonymKey, id), from.domain),
      subject: msg.subject,
    };
  });
  for (let i = 0; i < values.length; i += 1000) await tx.insertInto('warming_sends').values(values.slice(i, i + 1000)).execute();
  return { day, planned: values.length, already_planned: false, isolated, unmet: Object.values(plan.unmet).reduce((a, b) => a + b, 0) };
}
