/** Out-of-band bounces and feedback-loop complaints that arrive as mail, from sample reports. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/project-root.js';
import { expectJson, startHarness, type Harness } from '../support/harness.js';

// the tenant id inside the fixtures' X-KumoRef headers
const TENANT = '7d1e3b9a-5c2f-4e8d-9a61-0b4c2f7e8a15';
const fixture = (name: string) => readFile(path.join(projectRoot(), 'control-plane/test/fixtures/reports', name));

let h: Harness;
let nodeToken: string;
beforeAll(async () => {
  h = await startHarness();
  await sql`INSERT INTO tenants (id, slug, display_name, pseudonym, updated_at) VALUES (${TENANT}, 'acme-mail', 'Acme', 'Sender_000001', now())`.execute(h.ctx.db);
  await expectJson(await h.request('POST', `/v1/tenants/${TENANT}/domains`, { body: { domain: 'acme-mail.example' } }), 201);
  nodeToken = (await expectJson(await h.request('POST', '/v1/nodes', { body: { name: 'inbound', region: 'fsn1', public_address: '203.0.113.220' } }), 201)).token;
});
afterAll(async () => h?.close());

const post = async (name: string, token = nodeToken) =>
  h.request('POST', '/v1/events/returned-mail', { token, body: (await fixture(name)).toString('utf8'), headers: { 'content-type': 'message/rfc822' } });

async function eventFor(recipient: string) {
  return h.ctx.db.selectFrom('delivery_events').selectAll().where('recipient', '=', recipient).executeTakeFirst();
}

describe('returned DSN and ARF mail', () => {
  it.each([
    ['gmail-dsn-user-unknown.eml', 'dsn', 'jane.doe@gmail.com', 'hard_bounce', '5.1.1', '<campaign-42.7f3a@acme-mail.example>', true],
    ['microsoft-ndr-mailbox-unavailable.eml', 'dsn', 'john.smith@outlook.com', 'hard_bounce', '5.5.0', '<campaign-42.9c1d@acme-mail.example>', true],
    ['yahoo-dsn-no-account.eml', 'dsn', 'nobody.here@yahoo.com', 'hard_bounce', '5.0.0', '<campaign-42.aa01@acme-mail.example>', true],
    ['yahoo-arf-abuse.eml', 'arf', 'unhappy.reader@yahoo.com', 'complaint', null, '<campaign-42.bd77@acme-mail.example>', true],
    ['microsoft-jmrp-arf.eml', 'arf', 'annoyed@hotmail.com', 'complaint', null, '<campaign-42.c0ff@acme-mail.example>', true],
  ])('%s: attributed to the tenant and the message, classified, suppressed', async (file, kind, recipient, outcome, enhanced, messageId, suppressed) => {
    const r = await expectJson(await post(file), 200);
    expect(r).toMatchObject({ kind, accepted: 1, unattributed: 0 });
    const e = await eventFor(recipient);
    expect(e).toMatchObject({ tenant_id: TENANT, outcome, message_id: messageId, record_type: kind === 'dsn' ? 'OOB' : 'Feedback' });
    if (enhanced) expect(e!.enhanced_code).toBe(enhanced);
    const s = await h.ctx.db.selectFrom('suppressions').select('reason').where('tenant_id', '=', TENANT).where('pattern', '=', recipient).executeTakeFirst();
    expect(s !== undefined).toBe(suppressed);
    expect(s?.reason).toBe(outcome === 'complaint' ? 'complaint' : 'hard_bounce');
    // the same report posted again changes nothing
    expect(await expectJson(await post(file), 200)).toMatchObject({ accepted: 0, duplicates: 1 });
  });

  it('ignores delayed recipients in a DSN (they are not outcomes)', async () => {
    expect(await eventFor('slow.reader@yahoo.com')).toBeUndefined();
  });

  it('operators with write scope may post reports; others may not; non-reports are refused', async () => {
    const read = await h.tokenWith(['read']);
    expect((await post('yahoo-arf-abuse.eml', read)).status).toBe(403);
    expect((await post('yahoo-arf-abuse.eml', h.adminToken)).status).toBe(200);
    const res = await h.request('POST', '/v1/events/returned-mail', { body: 'From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n', headers: { 'content-type': 'message/rfc822' } });
    expect((await expectJson(res, 400)).detail).toContain('not a delivery status notification');
  });

  it('moves the tenant\'s trust numbers', async () => {
    const trust = await expectJson(await h.request('GET', `/v1/tenants/${TENANT}/trust`), 200);
    expect(trust.lanes.external.hard_bounces).toBe(3);
    expect(trust.lanes.external.complaints).toBe(2);
  });
});
