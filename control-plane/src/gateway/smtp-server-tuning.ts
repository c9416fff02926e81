/**
 * Two changes to smtp-server's connection behaviour, made once at start-up and pinned to the exact
 * version in package.json (tests check both):
 *
 * - smtp-server waits 100 ms before its greeting to catch clients that talk too early. For a
 *   submission service whose clients authenticate or come from bound networks, that wait is pure
 *   latency: with a connection per message it caps a client at ten messages a second per session.
 * - smtp-server puts its own enhanced status code in front of every reply. Our replies carry their
 *   own (550 5.7.1, 452 4.7.1, ...), which must not come out as "550 5.0.0 5.7.1".
 * - smtp-server lists AUTH in the EHLO reply before STARTTLS even when it will refuse AUTH there;
 *   RFC 3207 and 4954 say not to offer what the session cannot use, so it is left out until TLS.
 */
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
let applied = false;

interface ConnectionInternals {
  _server: { options: { maxClients?: number; allowInsecureAuth?: boolean }; connections: Set<unknown> };
  secure: boolean;
  _setListeners(cb: () => void): void;
  connectionReady(): void;
  send(code: number, data?: string | string[], context?: string | false): void;
}

export function tuneSmtpServer(): void {
  if (applied) return;
  applied = true;
  const proto = SMTPConnection.prototype as unknown as ConnectionInternals & { init(): void };
  proto.init = function init(this: ConnectionInternals) {
    this._setListeners(() => {
      const max = this._server.options.maxClients;
      if (max && this._server.connections.size > max) {
        this.send(421, 'too many connected clients, try again in a moment', false);
        return;
      }
      this.connectionReady();
    });
  };
  const send = proto.send;
  proto.send = function patchedSend(this: ConnectionInternals, code: number, data?: string | string[], context?: string | false) {
    if (typeof data === 'string' && ENHANCED.test(data)) return send.call(this, code, data, false);
    if (Array.isArray(data) && code === 250 && !this.secure && !this._server.options.allowInsecureAuth) {
      return send.call(this, code, data.filter((line) => !/^AUTH /.test(line)), context);
    }
    return send.call(this, code, data, context);
  };
}

export const smtpServerTuned = (): boolean => applied;
