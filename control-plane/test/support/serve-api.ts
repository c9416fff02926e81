/** The harness's app on a real loopback port, for clients outside the process (kumod, Ansible, node scripts). */
import { serve } from '@hono/node-server';
import type { App } from '../../src/http/app.js';
import { freePortForTest } from './ports.js';

export interface ServedApi {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function serveApi(app: App, port?: number): Promise<ServedApi> {
  const p = port ?? (await freePortForTest());
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: p }, () =>
      resolve({ url: `http://127.0.0.1:${p}`, port: p, close: () => new Promise<void>((r) => server.close(() => r())) }),
    );
  });
}
