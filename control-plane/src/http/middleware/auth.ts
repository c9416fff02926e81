/**
 * Bearer-token authentication and scope checks, as route middleware. 401 when the caller is not
 * known (no token, unknown, revoked, expired); 403 when it is known but may not do this. Tenant tokens
 * pass only read routes of their own tenant: the route names the path parameter holding the tenant id.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { TokenScope } from '../../adapters/pg/tables.js';
import { hasScope, inActorScope } from '../../app/actor.js';
import { authenticateBearer } from '../../app/api-tokens.js';
import { meteredTokenAuth, TooManyAuthFailures } from '../../app/token-auth-guard.js';
import { AppError } from '../../domain/shared/errors.js';
import type { HonoEnv } from '../env.js';
import { clientOf } from '../peer.js';

/**
 * A token check under the failure counter of the client's address (app/token-auth-guard.ts): past
 * CP_HTTP_AUTH_FAILURE_LIMIT failures 429 with Retry-After, whatever the token; Redis away 503.
 */
export async function metered<T>(c: Context<HonoEnv>, authenticate: () => Promise<T | null>): Promise<T | null> {
  try {
    return await meteredTokenAuth(c.var.ctx, clientOf(c), authenticate);
  } catch (e) {
    if (e instanceof TooManyAuthFailures) {
      c.header('Retry-After', String(e.retryAfterSeconds));
      c.var.log.warn({ client: clientOf(c), retry_after_seconds: e.retryAfterSeconds }, 'token authentication refused: too many failures from this client');
    }
    throw e;
  }
}

export interface AuthOptions {
  /** path parameter that holds a tenant id; tenant tokens may pass when it is theirs */
  tenantParam?: string;
  /** the route serves any caller about itself (e.g. /v1/me) */
  anyTenant?: boolean;
}

export function requireAuth(scope: TokenScope, opts: AuthOptions = {}): MiddlewareHandler<HonoEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) {
      c.header('WWW-Authenticate', 'Bearer realm="kumo-control-plane"');
      throw new AppError('UNAUTHENTICATED', 'send an API token as "Authorization: Bearer <token>"');
    }
    const actor = await metered(c, () => authenticateBearer(c.var.ctx, m[1]!));
    if (!actor) {
      c.header('WWW-Authenticate', 'Bearer realm="kumo-control-plane", error="invalid_token"');
      throw new AppError('UNAUTHENTICATED', 'the token is unknown, revoked or expired');
    }
    if (actor.kind === 'tenant' && opts.anyTenant && scope === 'read') {
      // allowed: the route only describes the caller
    } else if (actor.kind === 'tenant') {
      const tenantId = opts.tenantParam ? c.req.param(opts.tenantParam) : undefined;
      if (scope !== 'read' || tenantId === undefined) {
        throw new AppError('FORBIDDEN', 'tenant tokens may only read their own tenant');
      }
      if (tenantId !== actor.tenantId) {
        throw new AppError('FORBIDDEN', 'this token is bound to another tenant');
      }
    } else if (!hasScope(actor, scope)) {
      throw new AppError('FORBIDDEN', `this operation needs the ${scope} scope`, { context: { needed: scope, granted: actor.scopes } });
    }
    c.set('actor', actor);
    c.set('log', c.var.log.child({ actor: actor.kind === 'operator' ? actor.operatorId : `tenant:${actor.tenantId}`, token_id: actor.tokenId }));
    // a tenant token's request sees only its tenant's rows, the database enforcing it (app/actor.ts)
    await inActorScope(c.var.ctx, actor, async (ctx) => {
      c.set('ctx', ctx);
      await next();
    });
  };
}
