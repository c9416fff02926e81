/**
 * A bounce (DSN) or feedback-loop complaint (ARF) that arrived as mail: parsed into KumoMTA-shaped
 * records and sent down the same ingest path as the nodes' own log records.
 */
import type { AppContext } from '../../context.js';
import { readReportParts } from '../../adapters/mail/report-mime.js';
import { arfToRecord, dsnToRecords, reportId } from '../../domain/events/delivery-report.js';
import { parseKumoRecord, type DeliveryEvent } from '../../domain/events/kumo-log-record.js';
import { AppError } from '../../domain/shared/errors.js';
import { ingestDeliveryEvents, type IngestReport } from './ingest-kumo-records.js';

export interface ReturnedReportResult extends Omit<IngestReport, 'received'> {
  kind: 'dsn' | 'arf';
  records: number;
}

/** Records from returned mail share one id space, apart from any node's. */
const RETURNED_MAIL_KEY = 'returned-mail';

export async function ingestReturnedReport(ctx: AppContext, raw: Buffer, nodeId: string | null): Promise<ReturnedReportResult> {
  const parts = await readReportParts(raw);
  if (!parts.kind || !parts.machineText) {
    throw new AppError('VALIDATION_FAILED', 'not a delivery status notification (RFC 3464) or feedback report (RFC 5965): expected multipart/report with a message/delivery-status or message/feedback-report part');
  }
  const id = reportId(parts.reportMessageId, raw.toString('utf8'));
  const original = parts.originalHeaders ? { headers: parts.originalHeaders } : null;
  // the report's own date keeps a re-posted report identical; arrival time is the last resort
  const now = parts.reportDate ?? ctx.now();
  const records = parts.kind === 'dsn' ? dsnToRecords(parts.machineText, original, id, now) : [arfToRecord(parts.machineText, original, id, now)].filter((r) => r !== null);
  const rejected: IngestReport['rejected'] = [];
  const events: DeliveryEvent[] = [];
  records.forEach((rec, index) => {
    const r = parseKumoRecord(rec, RETURNED_MAIL_KEY);
    if (r.ok) events.push(...r.events);
    else rejected.push({ index, reason: r.reason });
  });
  const result = await ingestDeliveryEvents(ctx, nodeId, events);
  ctx.metrics.eventsIngested.inc({ source: 'returned_mail', result: 'accepted' }, result.accepted);
  ctx.metrics.eventsIngested.inc({ source: 'returned_mail', result: 'duplicate' }, result.duplicates);
  ctx.metrics.eventsIngested.inc({ source: 'returned_mail', result: 'rejected' }, rejected.length);
  ctx.metrics.trustRecomputations.inc(result.tenants_rescored);
  return { kind: parts.kind, records: records.length, rejected, ...result };
}
