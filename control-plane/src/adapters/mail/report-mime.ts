/**
 * The MIME side of returned reports, with mailparser: find the machine-readable part of a
 * multipart/report (delivery-status or feedback-report) and the header block of the returned
 * original. Everything after that is pure (domain/events/delivery-report.ts).
 */
import { simpleParser } from 'mailparser';
import { parseFieldBlocks, type Fields } from '../../domain/events/delivery-report.js';

export interface ReportParts {
  kind: 'dsn' | 'arf' | null;
  reportMessageId: string | null;
  /** the report's own Date header: a stable time when the report gives no other */
  reportDate: Date | null;
  /** the message/delivery-status or message/feedback-report text */
  machineText: string | null;
  originalHeaders: Fields | null;
}

export async function readReportParts(raw: Buffer): Promise<ReportParts> {
  // keepDeliveryStatus: otherwise mailparser folds message/delivery-status into the text body
  const mail = await simpleParser(raw, { keepDeliveryStatus: true, skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true });
  const ct = mail.headers.get('content-type') as { value?: string; params?: Record<string, string> } | undefined;
  const reportType = ct?.value === 'multipart/report' ? (ct.params?.['report-type'] ?? '').toLowerCase() : '';
  const part = (type: string) => mail.attachments.find((a) => a.contentType.toLowerCase() === type);
  const machine = reportType === 'delivery-status' ? part('message/delivery-status') : reportType === 'feedback-report' ? part('message/feedback-report') : undefined;
  const original = part('message/rfc822') ?? part('text/rfc822-headers');
  const originalBlocks = original ? parseFieldBlocks(headerSection(original.content.toString('utf8'))) : [];
  return {
    kind: machine ? (reportType === 'delivery-status' ? 'dsn' : 'arf') : null,
    reportMessageId: mail.messageId ?? null,
    reportDate: mail.date && !Number.isNaN(mail.date.getTime()) ? mail.date : null,
    machineText: machine ? machine.content.toString('utf8') : null,
    originalHeaders: originalBlocks[0] ?? null,
  };
}

/** Only the header section of a message: everything up to the first blank line. */
function headerSection(message: string): string {
  const m = /\r?\n\r?\n/.exec(message);
  return m ? message.slice(0, m.index) : message;
}
