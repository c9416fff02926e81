/**
 * Sends the warming messages that are due, through the submission gateway like any tenant's mail (so
 * they take the warming lane and the rehabilitation pool, and are checked like everything else): as
 * the warming agent, from the sending member's own address. A failed attempt is retried on the next
 * run, up to three times.
 */
import { sql } from 'kysely';
import type { Transporter } from 'nodemailer';
import type { AppContext } from '../../context.js';
import { composeWarming } from '../../domain/warming/messages.js';
import { seededRandom } from '../../domain/warming/planner.js';

export interface SendReport {
  due: number;
  sent: number;
  failed: number;
}

export async function sendDueWarming(ctx: AppContext, transport: Transporter, limit = 100): Promise<SendReport> {
  const now = ctx.now();
  // claim a batch: concurrent workers skip each other's rows
  const due = await ctx.db.transaction().execute(async (tx) => {
    const rows = await sql<{ id: string; attempts: number; message_id: string; subject: string; kind: string; reply_to: string | null; from_address: string; to_address: string; parent_message_id: string | null }>`
      SELECT s.id, s.attempts, s.message_id, s.subject, s.kind, s.reply_to, f.address AS from_address, t.address AS to_address, p.message_id AS parent_message_id
      FROM warming_sends s
      JOIN warming_members f ON f.id = s.sender_id
      JOIN warming_members t ON t.id = s.recipient_id
      LEFT JOIN warming_sends p ON p.id = s.reply_to
      WHERE s.status = 'planned' AND s.scheduled_at <= ${now} AND s.attempts < 3
      ORDER BY s.scheduled_at
      LIMIT ${limit}
      FOR UPDATE OF s SKIP LOCKED`.execute(tx);
    if (rows.rows.length > 0) await tx.updateTable('warming_sends').set((eb) => ({ attempts: eb('attempts', '+', 1) })).where('id', 'in', rows.rows.map((r) => r.id)).execute();
    return rows.rows;
  });
  let sent = 0;
  let failed = 0;
  for (const r of due) {
    const msg = composeWarming({ from: r.from_address, to: r.to_address, parentSubject: r.kind === 'reply' ? r.subject : null }, seededRandom(r.id));
    try {
      await transport.sendMail({
        from: r.from_address,
        to: r.to_address,
        subject: r.subject,
        text: msg.text,
        messageId: r.message_id,
        ...(r.parent_message_id ? { inReplyTo: r.parent_message_id, references: [r.parent_message_id] } : {}),
      });
      await ctx.db.updateTable('warming_sends').set({ status: 'sent', sent_at: ctx.now(), last_error: null }).where('id', '=', r.id).execute();
      sent++;
    } catch (e) {
      const err = e as { response?: string; message: string; responseCode?: number };
      if (err.responseCode === undefined) {
        // the gateway is not reachable: not this message's fault; leave it and the rest for later
        await ctx.db.updateTable('warming_sends').set((eb) => ({ attempts: eb('attempts', '-', 1), last_error: err.message.slice(0, 1000) })).where('id', 'in', due.slice(due.indexOf(r)).map((x) => x.id)).execute();
        failed++;
        break;
      }
      // a refusal is final, and so is a third temporary failure
      const permanent = (err.responseCode ?? 0) >= 500 || r.attempts + 1 >= 3;
      await ctx.db
        .updateTable('warming_sends')
        .set({ status: permanent ? 'failed' : 'planned', last_error: (err.response ?? err.message).slice(0, 1000) })
        .where('id', '=', r.id)
        .execute();
      failed++;
    }
  }
  return { due: due.length, sent, failed };
}
