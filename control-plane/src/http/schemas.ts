/**
 * Shared request/response schemas. The same zod objects validate requests and generate
 * /openapi.json, so the document cannot drift from what the server accepts. Request bodies are strict:
 * an unknown field is a 400, not silently ignored (a typo in a PATCH must not look like success).
 */
import { z } from '@hono/zod-openapi';
import { ERROR_CODES } from '../domain/shared/errors.js';
import { DNS_LABEL_RE, HOSTNAME_RE, LOCAL_PART_RE, SLUG_RE } from '../domain/tenancy/names.js';

export const uuid = z.uuid();


export const slug = z
  .string()
  .regex(SLUG_RE, 'lower-case letters, digits, "-" and "_", starting with a letter or digit, at most 63 characters')
  .openapi({ example: 'acme-mail' });

export const hostname = z
  .string()
  .max(253)
  .transform((v) => v.trim().toLowerCase().replace(/\.$/, ''))
  .pipe(z.string().regex(HOSTNAME_RE, 'not a valid DNS host name'))
  .openapi({ type: 'string', example: 'mail.example.com' });

export const dnsLabel = z.string().regex(DNS_LABEL_RE, 'not a valid DNS label').openapi({ example: 'kcp1' });
export const localPart = z.string().regex(LOCAL_PART_RE, 'not a valid mailbox local part').openapi({ example: 'sales' });

export const ipAddress = z.union([z.ipv4(), z.ipv6()]).openapi({ type: 'string', example: '203.0.113.10' });

export const timestamp = z.string().openapi({ format: 'date-time', example: '2026-11-22T05:00:00.000Z' });
export const futureTimestamp = z.iso.datetime({ offset: true }).openapi({ example: '2027-01-01T00:00:00Z' });

export const idParam = <K extends string>(name: K) =>
  z.object({ [name]: uuid.openapi({ param: { name, in: 'path' } }) } as { [P in K]: typeof uuid });

export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50).openapi({ param: { name: 'limit', in: 'query' }, example: 50 }),
  cursor: z.string().max(500).optional().openapi({ param: { name: 'cursor', in: 'query' } }),
});

export const page = <T extends z.ZodType>(item: T, name: string) =>
  z.object({ items: z.array(item), next_cursor: z.string().nullable() }).openapi(name);

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    code: z.enum(ERROR_CODES),
    detail: z.string(),
    instance: z.string(),
    request_id: z.string().nullable(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    context: z.record(z.string(), z.unknown()).optional(),
  })
  .openapi('Problem');

const problemContent = { 'application/problem+json': { schema: problemSchema } };

/** The error responses every authenticated route can give. */
export const errorResponses = {
  400: { description: 'Invalid request (problem+json, code VALIDATION_FAILED)', content: problemContent },
  401: { description: 'Missing or invalid bearer token', content: problemContent },
  403: { description: 'Token lacks the scope, or is bound to another tenant', content: problemContent },
  404: { description: 'No such resource', content: problemContent },
  409: { description: 'Conflicts with existing state', content: problemContent },
  429: { description: 'Too many failed token authentications from this client address (code TOO_MANY_REQUESTS, with Retry-After)', content: problemContent },
} as const;

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});
