/**
 * Authentication of KumoMTA nodes by their node token (log-hook posts, policy pulls). Where operators
 * may also post (returned reports), `orOperator` names the operator scope that is accepted instead.
 *
 * With CP_HTTP_NODE_CLIENT_CERT `required` a node token counts only over a connection whose client
 * certificate CP_HTTP_TLS_CLIENT_CA_FILE verified (401 otherwise, before the token is looked at);
 * with `bound` that certificate must also name the node (its CN or a DNS name of its SAN), else 403.
 */
import type { MiddlewareHandler } from 'hono';
import type { TokenScope } from '../../adapters/pg/tables.js';
import { authenticateNode } from '../../app/nodes.js';
import { AppError } from '../../domain/shared/errors.js';
import type { HonoEnv } from '../env.js';
import { clientCertificate } from '../peer.js';
import { metered, requireAuth } from './auth.js';

/**
 * `self`: the route names a node in its path (`{node_id}`), and a node may act only as itself there
 * (its policy, its keys, its probe); another node's id is 403, whatever the token.
 */
export function requireNode(opts: { orOperator?: TokenScope; self?: boolean } = {}): MiddlewareHandler<HonoEnv> {
  const operatorAuth = opts.orOperator ? requireAuth(opts.orOperator) : null;
  return async (c, next) => {
    const m = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
    if (m && m[1]!.startsWith('node_')) {
      const mode = c.var.ctx.config.nodeClientCert;
      const cert = clientCertificate(c);
      if (mode !== 'off' && cert.state !== 'verified') {
        c.var.log.warn({ client_cert: cert.state, reason: cert.state === 'unverified' ? cert.reason : undefined }, 'node request refused: no verified client certificate');
        throw new AppError(
          'UNAUTHENTICATED',
          cert.state === 'none'
            ? 'node requests need a client certificate signed by the control plane\'s client CA'
            : 'the client certificate was not issued by the control plane\'s client CA',
          { context: { client_certificate: cert.state } },
        );
      }
      const node = await metered(c, () => authenticateNode(c.var.ctx, m[1]!));
      if (!node) {
        c.header('WWW-Authenticate', 'Bearer realm="kumo-control-plane", error="invalid_token"');
        throw new AppError('UNAUTHENTICATED', 'the node token is unknown or was rotated');
      }
      if (mode === 'bound' && cert.state === 'verified' && !cert.names.includes(node.name)) {
        c.var.log.warn({ node: node.name, cert_names: cert.names }, 'node request refused: the client certificate names another node');
        throw new AppError('FORBIDDEN', `the client certificate does not name node ${node.name} (its CN or a DNS name of its SAN must)`, { context: { certificate_names: cert.names } });
      }
      if (opts.self && c.req.param('node_id') !== node.id) throw new AppError('FORBIDDEN', `node ${node.name} may act only for itself, not for the node in the path`);
      c.set('node', node);
      c.set('log', c.var.log.child({ node: node.name }));
      return next();
    }
    if (operatorAuth) return operatorAuth(c, next);
    c.header('WWW-Authenticate', 'Bearer realm="kumo-control-plane"');
    throw new AppError('UNAUTHENTICATED', 'send the node token as "Authorization: Bearer node_…"');
  };
}
