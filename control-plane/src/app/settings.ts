/** Operator-owned settings: read as effective values (defaults + stored), changed section by section. */
import type { AppContext } from '../context.js';
import { inTransaction, type Db, type Tx } from '../adapters/pg/database.js';
import { effectiveSettings, SETTINGS_SCHEMAS, type Settings, type SettingsSection } from '../domain/settings/settings.js';
import { validationFailed } from '../domain/shared/errors.js';
import type { Caller } from './actor.js';
import { writeAudit } from './audit.js';

export async function getSettings(ctx: AppContext): Promise<Settings> {
  return readSettings(ctx.db);
}

export async function readSettings(db: Db | Tx): Promise<Settings> {
  const rows = await db.selectFrom('settings').select(['section', 'value']).execute();
  return effectiveSettings(Object.fromEntries(rows.map((r) => [r.section, r.value])));
}

/** Merge `patch` into the section and validate the whole result, so cross-field rules hold. */
export async function patchSettings(ctx: AppContext, caller: Caller, section: SettingsSection, patch: Record<string, unknown>): Promise<Settings> {
  await inTransaction(ctx.db, async (tx) => {
    // serialise concurrent edits of one section
    const stored = await tx.selectFrom('settings').select('value').where('section', '=', section).forUpdate().executeTakeFirst();
    const before = (await readSettings(tx))[section];
    const merged = { ...before, ...patch };
    const parsed = SETTINGS_SCHEMAS[section].safeParse(merged);
    if (!parsed.success) {
      throw validationFailed(parsed.error.issues.map((i) => ({ path: ['body', ...i.path.map(String)].join('.'), message: i.message })));
    }
    const value = JSON.stringify(parsed.data);
    if (stored) {
      await tx.updateTable('settings').set({ value, updated_at: ctx.now(), updated_by: caller.actor.kind === 'operator' ? caller.actor.operatorId : null }).where('section', '=', section).execute();
    } else {
      await tx.insertInto('settings').values({ section, value, updated_at: ctx.now(), updated_by: caller.actor.kind === 'operator' ? caller.actor.operatorId : null }).execute();
    }
    await writeAudit(tx, caller, { action: 'settings.update', targetType: 'settings', targetId: section, details: { before, after: parsed.data } });
  });
  return getSettings(ctx);
}
