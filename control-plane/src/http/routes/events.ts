/** Event ingest: KumoMTA log records (node token), engagement (operator), returned reports (either). */
import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { requireAuth } from '../middleware/auth.js';
import { requireNode } from '../middleware/node-auth.js';
import { errorResponses, json, uuid } from '../schemas.js';
import { ingestKumoRecords, MAX_RECORDS_PER_BATCH } from '../../app/events/ingest-kumo-records.js';
import { ingestEngagement } from '../../app/events/ingest-engagement.js';
import { ingestReturnedReport } from '../../app/events/ingest-returned-report.js';
import { AppError } from '../../domain/shared/errors.js';
import { validationHook } from '../validation.js';

const rejection = z.object({ index: z.number().int(), reason: z.string() });
const ingestReport = z
  .object({
    received: z.number().int(),
    accepted: z.number().int().openapi({ description: 'new events stored (one per recipient)' }),
    duplicates: z.number().int().openapi({ description: 'events already stored: a retried batch changes nothing' }),
    rejected: z.array(rejection),
    unattributed: z.number().int().openapi({ description: 'events that name no known tenant' }),
    suppressed: z.number().int(),
    promoted_soft_streaks: z.number().int(),
    tenants_rescored: z.number().int(),
  })
  .openapi('IngestReport');

const kumoBody = z
  .union([z.array(z.unknown()), z.record(z.string(), z.unknown())])
  .openapi({ description: 'One KumoMTA log record (as log_hooks:new_json posts it), or an array of them (a batching hook). Also accepted as application/x-ndjson.' });

const engagementEvent = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9._:@-]{1,200}$/, 'an id of up to 200 letters, digits and . _ : @ -'),
  tenant_id: uuid,
  kind: z.enum(['open', 'click', 'reply', 'not_spam']),
  occurred_at: z.iso.datetime({ offset: true }),
  lane: z.enum(['external', 'warming']).optional(),
  message_id: z.string().max(300).optional(),
  recipient: z.email().max(320).optional(),
  weight: z.number().gt(0).max(100).optional(),
});
const engagementBody = z.strictObject({ events: z.array(engagementEvent).min(1).max(MAX_RECORDS_PER_BATCH) }).openapi('EngagementBatch');
const engagementReport = z
  .object({ received: z.number().int(), accepted: z.number().int(), duplicates: z.number().int(), rejected: z.array(rejection), tenants_rescored: z.number().int() })
  .openapi('EngagementReport');
const reportResult = ingestReport.omit({ received: true }).extend({ kind: z.enum(['dsn', 'arf']), records: z.number().int() }).openapi('ReturnedReportResult');

function parseRecords(contentType: string, text: string): unknown[] {
  if (/application\/(x-)?ndjson/i.test(contentType)) {
    return text.split('\n').filter((l) => l.trim() !== '').map((l) => {
      try {
        return JSON.parse(l) as unknown;
      } catch {
        return { __unparseable_line: l.slice(0, 80) };
      }
    });
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new AppError('VALIDATION_FAILED', 'the body is not JSON (send a record, an array of records, or NDJSON)');
  }
  return Array.isArray(body) ? body : [body];
}

export function registerEventRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/events/kumo', tags: ['events'], security: [{ bearer: [] }], middleware: [requireNode()] as const,
      summary: 'Ingest KumoMTA log records from a node (idempotent; per-record rejections)',
      request: { body: { content: { 'application/json': { schema: kumoBody }, 'application/x-ndjson': { schema: z.string() } }, required: true } },
      responses: { 200: json(ingestReport, 'What was stored, skipped and rejected'), ...errorResponses, 413: errorResponses[400] },
    }),
    async (c) => {
      const records = parseRecords(c.req.header('content-type') ?? '', await c.req.text());
      if (records.length > MAX_RECORDS_PER_BATCH) throw new AppError('PAYLOAD_TOO_LARGE', `at most ${MAX_RECORDS_PER_BATCH} records per batch`);
      return c.json(await ingestKumoRecords(c.var.ctx, c.var.node, records), 200);
    },
    // each record is validated on its own (a NUL in one rejects that one, by index): kumod retries a
    // failed batch whole, so one bad record must never fail its neighbours
    validationHook({ storableText: false }),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/events/engagement', tags: ['events'], security: [{ bearer: [] }], middleware: [requireAuth('write')] as const,
      summary: 'Record opens, clicks, replies and not-spam marks (idempotent by tenant and id)',
      request: { body: { content: { 'application/json': { schema: engagementBody } }, required: true } },
      responses: { 200: json(engagementReport, 'What was stored'), ...errorResponses },
    }),
    async (c) => c.json(await ingestEngagement(c.var.ctx, c.req.valid('json').events), 200),
  );
  app.openapi(
    createRoute({
      method: 'post', path: '/v1/events/returned-mail', tags: ['events'], security: [{ bearer: [] }], middleware: [requireNode({ orOperator: 'write' })] as const,
      summary: 'Ingest a bounce (RFC 3464 DSN) or complaint (RFC 5965 ARF) that arrived as mail',
      request: { body: { content: { 'message/rfc822': { schema: z.string().openapi({ format: 'binary' }) } }, required: true } },
      responses: { 200: json(reportResult, 'Parsed and stored'), ...errorResponses },
    }),
    async (c) => {
      const raw = Buffer.from(await c.req.arrayBuffer());
      if (raw.length === 0) throw new AppError('VALIDATION_FAILED', 'the body must be the raw report message');
      return c.json(await ingestReturnedReport(c.var.ctx, raw, c.var.node?.id ?? null), 200);
    },
  );
}
