/**
 * Sending domains: a DKIM key pair generated per domain (private half sealed at rest) and the DNS
 * records the tenant must publish. Verification states are recorded here; automatic DNS checks come
 * with a later capability, until then operators (or tooling) set them.
 */
import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { AppContext } from '../context.js';
import { inTransaction, type Db } from '../adapters/pg/database.js';
import type { SendingDomainsTable, VerificationState } from '../adapters/pg/tables.js';
import { generateDkimKeyPair } from '../adapters/crypto/dkim-keys.js';
import { buildDnsRecords, type DnsRecord } from '../domain/tenancy/dns-records.js';
import { AppError, notFound } from '../domain/shared/errors.js';
import type { Caller } from './actor.js';
import { writeAudit } from './audit.js';
import { afterCursor, sortKey, toPage, type Page } from './pagination.js';
import { definedOnly } from './tenants.js';
import { iso, isoOrNull } from './views.js';
import { rescoreTenants } from './trust/rescore.js';

export interface DomainView {
  id: string;
  tenant_id: string;
  domain: string;
  dkim: { selector: string; algorithm: 'rsa-sha256' | 'ed25519-sha256'; public_key: string };
  verification: { spf: VerificationState; dkim: VerificationState; dmarc: VerificationState; verified_at: string | null };
  dns_records: DnsRecord[];
  created_at: string;
  updated_at: string;
}

type Row = Omit<Selectable<SendingDomainsTable>, 'dkim_private_key_enc'>;

const PUBLIC_COLUMNS = [
  'id', 'tenant_id', 'domain', 'dkim_selector', 'dkim_algorithm', 'dkim_public_key', 'dkim_key_id',
  'spf_state', 'dkim_state', 'dmarc_state', 'verified_at', 'created_at', 'updated_at',
] as const;

async function fleetIps(db: Db): Promise<string[]> {
  const rows = await db.selectFrom('ip_addresses').select('address').where('state', '!=', 'retired').execute();
  return rows.map((r) => r.address);
}

function view(ctx: AppContext, r: Row, ips: string[]): DomainView {
  return {
    id: r.id,
    tenant_id: r.tenant_id,
    domain: r.domain,
    dkim: { selector: r.dkim_selector, algorithm: r.dkim_algorithm, public_key: r.dkim_public_key },
    verification: { spf: r.spf_state, dkim: r.dkim_state, dmarc: r.dmarc_state, verified_at: isoOrNull(r.verified_at) },
    dns_records: buildDnsRecords({
      domain: r.domain,
      selector: r.dkim_selector,
      algorithm: r.dkim_algorithm,
      publicKeyDns: r.dkim_public_key,
      spfInclude: ctx.config.dns.spfInclude,
      ips,
      bounceMxHost: ctx.config.dns.bounceMxHost,
      dmarcPolicy: ctx.config.dns.dmarcPolicy,
      dmarcRua: ctx.config.dns.dmarcRua,
    }),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

/** What binds a sealed key to its row; changing it would orphan every stored key. */
export const dkimKeyAad = (domainId: string): string => `sending_domains:${domainId}:dkim`;

export interface CreateDomainInput {
  domain: string;
  dkim_selector?: string | undefined;
  dkim_algorithm?: 'rsa-sha256' | 'ed25519-sha256' | undefined;
}

export async function createDomain(ctx: AppContext, caller: Caller, tenantId: string, input: CreateDomainInput): Promise<DomainView> {
  const id = randomUUID();
  const algorithm = input.dkim_algorithm ?? 'rsa-sha256';
  const keys = await generateDkimKeyPair(algorithm, ctx.config.dkim.rsaBits);
  const sealed = ctx.secretBox.seal(Buffer.from(keys.privateKeyPem, 'utf8'), dkimKeyAad(id));
  const ips = await fleetIps(ctx.db);
  return inTransaction(ctx.db, async (tx) => {
    const tenant = await tx.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst();
    if (!tenant) throw notFound('tenant', tenantId);
    const row = await tx
      .insertInto('sending_domains')
      .values({
        id,
        tenant_id: tenantId,
        domain: input.domain,
        dkim_selector: input.dkim_selector ?? ctx.config.dkim.defaultSelector,
        dkim_algorithm: algorithm,
        dkim_public_key: keys.publicKeyDns,
        dkim_private_key_enc: sealed.box,
        dkim_key_id: sealed.keyId,
        created_at: ctx.now(),
        updated_at: ctx.now(),
      })
      .returning(PUBLIC_COLUMNS)
      .executeTakeFirstOrThrow();
    const v = view(ctx, row, ips);
    await writeAudit(tx, caller, {
      action: 'domain.create',
      targetType: 'sending_domain',
      targetId: id,
      tenantId,
      details: { after: { domain: v.domain, dkim: v.dkim } },
    });
    return v;
  });
}

export async function getDomain(ctx: AppContext, tenantId: string, domainId: string): Promise<DomainView> {
  const row = await ctx.db
    .selectFrom('sending_domains')
    .select(PUBLIC_COLUMNS)
    .where('tenant_id', '=', tenantId)
    .where('id', '=', domainId)
    .executeTakeFirst();
  if (!row) throw notFound('sending domain', domainId);
  return view(ctx, row, await fleetIps(ctx.db));
}

export async function listDomains(ctx: AppContext, tenantId: string, q: { limit: number; cursor?: string | undefined }): Promise<Page<DomainView>> {
  let query = ctx.db
    .selectFrom('sending_domains')
    .select(PUBLIC_COLUMNS)
    .select(sortKey('sending_domains').as('_k'))
    .where('tenant_id', '=', tenantId);
  const after = afterCursor('sending_domains', q.cursor);
  if (after) query = query.where(after);
  const rows = await query.orderBy('created_at').orderBy('id').limit(q.limit + 1).execute();
  const page = toPage(rows, q.limit);
  const ips = await fleetIps(ctx.db);
  return { items: page.items.map((r) => view(ctx, r, ips)), next_cursor: page.next_cursor };
}

export interface UpdateDomainInput {
  spf_state?: VerificationState | undefined;
  dkim_state?: VerificationState | undefined;
  dmarc_state?: VerificationState | undefined;
}

export async function updateDomainVerification(
  ctx: AppContext,
  caller: Caller,
  tenantId: string,
  domainId: string,
  patch: UpdateDomainInput,
): Promise<DomainView> {
  const ips = await fleetIps(ctx.db);
  return inTransaction(ctx.db, async (tx) => {
    const before = await tx
      .selectFrom('sending_domains')
      .select(PUBLIC_COLUMNS)
      .where('tenant_id', '=', tenantId)
      .where('id', '=', domainId)
      .forUpdate()
      .executeTakeFirst();
    if (!before) throw notFound('sending domain', domainId);
    const next = { spf_state: before.spf_state, dkim_state: before.dkim_state, dmarc_state: before.dmarc_state, ...definedOnly(patch) };
    const allVerified = next.spf_state === 'verified' && next.dkim_state === 'verified' && next.dmarc_state === 'verified';
    const row = await tx
      .updateTable('sending_domains')
      .set({ ...next, verified_at: allVerified ? (before.verified_at ?? ctx.now()) : null, updated_at: ctx.now() })
      .where('id', '=', domainId)
      .returning(PUBLIC_COLUMNS)
      .executeTakeFirstOrThrow();
    await writeAudit(tx, caller, {
      action: 'domain.verification',
      targetType: 'sending_domain',
      targetId: domainId,
      tenantId,
      details: {
        before: { spf: before.spf_state, dkim: before.dkim_state, dmarc: before.dmarc_state },
        after: { spf: row.spf_state, dkim: row.dkim_state, dmarc: row.dmarc_state },
      },
    });
    // authentication is the score's base term: it moves the score at once, not at the next event
    await rescoreTenants(tx, [tenantId], ctx.now());
    return view(ctx, row, ips);
  });
}

/**
 * A new DKIM key under a new selector. The old selector's TXT record should stay published until mail
 * signed with it has been delivered; the response lists the records for the new one.
 */
export async function rotateDkimKey(
  ctx: AppContext,
  caller: Caller,
  tenantId: string,
  domainId: string,
  input: { dkim_selector: string; dkim_algorithm?: 'rsa-sha256' | 'ed25519-sha256' | undefined },
): Promise<DomainView> {
  const current = await getDomain(ctx, tenantId, domainId);
  if (current.dkim.selector === input.dkim_selector) {
    throw new AppError('CONFLICT', 'the new DKIM selector must differ from the current one, so both keys can be published during the switch', {
      fields: [{ path: 'body.dkim_selector', message: 'same as the current selector' }],
    });
  }
  const algorithm = input.dkim_algorithm ?? current.dkim.algorithm;
  const keys = await generateDkimKeyPair(algorithm, ctx.config.dkim.rsaBits);
  const sealed = ctx.secretBox.seal(Buffer.from(keys.privateKeyPem, 'utf8'), dkimKeyAad(domainId));
  const ips = await fleetIps(ctx.db);
  return inTransaction(ctx.db, async (tx) => {
    const row = await tx
      .updateTable('sending_domains')
      .set({
        dkim_selector: input.dkim_selector,
        dkim_algorithm: algorithm,
        dkim_public_key: keys.publicKeyDns,
        dkim_private_key_enc: sealed.box,
        dkim_key_id: sealed.keyId,
        // the new record is not in DNS yet
        dkim_state: 'pending',
        verified_at: null,
        updated_at: ctx.now(),
      })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', domainId)
      .returning(PUBLIC_COLUMNS)
      .executeTakeFirst();
    if (!row) throw notFound('sending domain', domainId);
    await writeAudit(tx, caller, {
      action: 'domain.dkim_rotate',
      targetType: 'sending_domain',
      targetId: domainId,
      tenantId,
      details: { before: { selector: current.dkim.selector }, after: { selector: row.dkim_selector, algorithm } },
    });
    await rescoreTenants(tx, [tenantId], ctx.now());
    return view(ctx, row, ips);
  });
}

export async function deleteDomain(ctx: AppContext, caller: Caller, tenantId: string, domainId: string): Promise<void> {
  await inTransaction(ctx.db, async (tx) => {
    const gone = await tx
      .deleteFrom('sending_domains')
      .where('tenant_id', '=', tenantId)
      .where('id', '=', domainId)
      .returning(['domain'])
      .executeTakeFirst();
    if (!gone) throw notFound('sending domain', domainId);
    await writeAudit(tx, caller, { action: 'domain.delete', targetType: 'sending_domain', targetId: domainId, tenantId, details: { before: { domain: gone.domain } } });
    await rescoreTenants(tx, [tenantId], ctx.now());
  });
}

/** The PEM private key, for the node-side key files (policy delivery) and for tests. */
export async function openDkimPrivateKey(ctx: AppContext, domainId: string): Promise<string> {
  const row = await ctx.db
    .selectFrom('sending_domains')
    .select(['dkim_private_key_enc', 'dkim_key_id'])
    .where('id', '=', domainId)
    .executeTakeFirst();
  if (!row) throw notFound('sending domain', domainId);
  return ctx.secretBox.open({ keyId: row.dkim_key_id, box: row.dkim_private_key_enc }, dkimKeyAad(domainId)).toString('utf8');
}
