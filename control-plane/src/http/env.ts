import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { Actor, Caller } from '../app/actor.js';
import type { AppContext } from '../context.js';

/** What middleware puts on the Hono context for handlers. */
export interface HonoEnv {
  /** what @hono/node-server passes for each request; absent when a test calls the app in-process */
  Bindings: { incoming?: IncomingMessage };
  Variables: {
    ctx: AppContext;
    requestId: string;
    log: Logger;
    actor: Actor;
    node: { id: string; name: string };
  };
}

export const callerOf = (c: { var: HonoEnv['Variables'] }): Caller => ({ actor: c.var.actor, requestId: c.var.requestId });
