/**
 * Changes to smtp-server's connection behaviour, made once at start-up and pinned to the exact
 * version in package.json (tests check each, and that the internals they rely on still exist):
 *
 * - smtp-server waits 100 ms before its greeting to catch clients that talk too early. For a
 *   submission service whose clients authenticate or come from bound networks, that wait is pure
 *   latency: with a connection per message it caps a client at ten messages a second per session.
 * - smtp-server puts its own enhanced status code in front of every reply. Our replies carry their
 *   own (550 5.7.1, 452 4.7.1, ...), which must not come out as "550 5.0.0 5.7.1"; and the replies it
 *   sends without one (a 501 to a malformed EHLO, its "too many clients" 421) get the code its table
 *   has for them, so that with ENHANCEDSTATUSCODES offered every reply but the greeting, the EHLO
 *   reply and 3xx carries one (RFC 2034 3).
 * - smtp-server lists AUTH in the EHLO reply before STARTTLS even when it will refuse AUTH there;
 *   RFC 3207 and 4954 say not to offer what the session cannot use, so it is left out until TLS.
 * - smtp-server caps the commands before AUTH only when AUTH is required for everyone; the gateway
 *   lets bound networks send without AUTH, so the cap (option `maxCommandsBeforeAuth`) is applied
 *   here to every session that is not marked `session.boundNetwork`.
 */
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { REPLIES, type GatewayReply } from '../domain/submission/replies.js';

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
let applied = false;

/** The smtp-server option (beside its own) that caps commands before AUTH; false or 0: no cap. */
export const MAX_COMMANDS_BEFORE_AUTH = 'maxCommandsBeforeAuth';

interface ConnectionInternals {
  _server: { options: { maxClients?: number; allowInsecureAuth?: boolean; hideENHANCEDSTATUSCODES?: boolean; [MAX_COMMANDS_BEFORE_AUTH]?: number | false } ; connections: Set<unknown> };
  secure: boolean;
  session: { user?: unknown; boundNetwork?: boolean };
  _nextHandler: unknown;
  _commandsBeforeAuth?: number;
  _setListeners(cb: () => void): void;
  connectionReady(): void;
  send(code: number, data?: string | string[], context?: string | false): void;
  _onCommand(command: Buffer, callback?: () => void): void;
  _getEnhancedStatusCode(code: number, context?: string | false): string;
}

const line = (r: GatewayReply): [number, string] => [r.code, `${r.enhanced} ${r.text}`];

export function tuneSmtpServer(): void {
  if (applied) return;
  applied = true;
  const proto = SMTPConnection.prototype as unknown as ConnectionInternals & { init(): void };
  proto.init = function init(this: ConnectionInternals) {
    this._setListeners(() => {
      const max = this._server.options.maxClients;
      if (max && this._server.connections.size > max) {
        this.send(...line(REPLIES.tooManyClients));
        return;
      }
      this.connectionReady();
    });
  };
  const send = proto.send;
  proto.send = function patchedSend(this: ConnectionInternals, code: number, data?: string | string[], context?: string | false) {
    if (typeof data === 'string' && ENHANCED.test(data)) return send.call(this, code, data, false);
    if (Array.isArray(data) && code === 250 && !this.secure && !this._server.options.allowInsecureAuth) {
      return send.call(this, code, data.filter((l) => !/^AUTH /.test(l)), context);
    }
    // a refusal smtp-server sends bare (context false): give it the code smtp-server's table has
    if (context === false && code >= 400 && typeof data === 'string' && !this._server.options.hideENHANCEDSTATUSCODES) {
      return send.call(this, code, `${this._getEnhancedStatusCode(code)} ${data}`, false);
    }
    return send.call(this, code, data, context);
  };
  const onCommand = proto._onCommand;
  proto._onCommand = function cappedOnCommand(this: ConnectionInternals, command: Buffer, callback?: () => void) {
    const cap = this._server.options[MAX_COMMANDS_BEFORE_AUTH];
    // an AUTH exchange's continuation lines (_nextHandler) belong to the AUTH command
    if (cap && !this.session.user && !this.session.boundNetwork && !this._nextHandler) {
      const name = command.toString('latin1').split(' ')[0]!.trim().toUpperCase();
      if (name !== 'AUTH' && name !== 'QUIT') {
        this._commandsBeforeAuth = (this._commandsBeforeAuth ?? 0) + 1;
        // a 421 closes the connection; the parser is not resumed, so nothing pipelined after runs
        if (this._commandsBeforeAuth > cap) return this.send(...line(REPLIES.tooManyCommandsBeforeAuth));
      }
    }
    return onCommand.call(this, command, callback);
  };
}

export const smtpServerTuned = (): boolean => applied;
