/**
 * Authentication of KumoMTA nodes by their node token (log-hook posts, policy pulls). Where operators
 * may also post (returned reports), `orOperator` names the operator scope that is accepted instead.
 */
import type { MiddlewareHandler } from 'hono';
import type { TokenScope } from '../../adapters/pg/tables.js';
import { authenticateNode } from '../../app/nodes.js';
import { AppError } from '../../domain/shared/errors.js';
import type { HonoEnv } from '../env.js';
import { requireAuth } from './auth.js';

export function requireNode(opts: { orOperator?: TokenScope } = {}): MiddlewareHandler<HonoEnv> {
  const operatorAuth = opts.orOperator ? requireAuth(opts.orOperator) : null;
  return async (c, next) => {
    const m = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
    if (m && m[1]!.startsWith('node_')) {
      const node = await authenticateNode(c.var.ctx, m[1]!);
      if (!node) {
        c.header('WWW-Authenticate', 'Bearer realm="kumo-control-plane", error="invalid_token"');
        throw new AppError('UNAUTHENTICATED', 'the node token is unknown or was rotated');
      }
      c.set('node', node);
      c.set('log', c.var.log.child({ node: node.name }));
      return next();
    }
    if (operatorAuth) return operatorAuth(c, next);
    c.header('WWW-Authenticate', 'Bearer realm="kumo-control-plane"');
    throw new AppError('UNAUTHENTICATED', 'send the node token as "Authorization: Bearer node_…"');
  };
}
