import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../app.js';
import { callerOf } from '../env.js';
import { requireAuth } from '../middleware/auth.js';
import { errorResponses, json } from '../schemas.js';
import { getSettings, patchSettings } from '../../app/settings.js';
import { SETTINGS_SECTIONS, SETTINGS_SHAPES } from '../../domain/settings/settings.js';

const settingsSchema = z
  .object({
    trust: z.object(SETTINGS_SHAPES.trust),
    placement: z.object(SETTINGS_SHAPES.placement),
    costs: z.object(SETTINGS_SHAPES.costs),
    ip_warmup: z.object(SETTINGS_SHAPES.ip_warmup),
    mailbox_warmup: z.object(SETTINGS_SHAPES.mailbox_warmup),
  })
  .openapi('Settings');
const tags = ['settings'];
const security = [{ bearer: [] }];

export function registerSettingsRoutes(app: App): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/settings', tags, security, summary: 'Effective settings (defaults merged with operator changes)', middleware: [requireAuth('read')] as const,
      responses: { 200: json(settingsSchema, 'All sections'), ...errorResponses },
    }),
    async (c) => c.json(await getSettings(c.var.ctx), 200),
  );
  for (const section of SETTINGS_SECTIONS) {
    const body = z.strictObject(SETTINGS_SHAPES[section]).partial().openapi(`Settings_${section}_patch`);
    app.openapi(
      createRoute({
        method: 'patch', path: `/v1/settings/${section}`, tags, security, middleware: [requireAuth('admin')] as const,
        summary: `Change ${section} settings (merged, then validated as a whole; audited)`,
        request: { body: { content: { 'application/json': { schema: body } }, required: true } },
        responses: { 200: json(settingsSchema, 'All sections after the change'), ...errorResponses },
      }),
      async (c) => c.json(await patchSettings(c.var.ctx, callerOf(c), section, c.req.valid('json') as Record<string, unknown>), 200),
    );
  }
}
