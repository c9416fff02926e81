/**
 * A TCP proxy in front of PostgreSQL that a test turns into an outage: `cut` drops every connection
 * and refuses new ones (a server gone), `freeze` keeps connections open and passes nothing more in
 * either direction, accepting new ones it never answers (a server that stopped responding), `restore`
 * ends either for new connections.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface PgProxy {
  /** the target's URL with this proxy's address */
  url: string;
  cut(): void;
  freeze(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startPgProxy(target: URL): Promise<PgProxy> {
  const sockets = new Set<Socket>();
  let mode: 'open' | 'cut' | 'frozen' = 'open';
  const track = (s: Socket, peer: () => Socket | null) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {
      s.destroy();
      peer()?.destroy();
    });
  };
  const server: Server = createServer((client) => {
    if (mode === 'cut') return void client.destroy();
    let upstream: Socket | null = null;
    track(client, () => upstream);
    if (mode === 'frozen') return; // accepted, never answered
    const up = connect(Number(target.port || 5432), target.hostname);
    upstream = up;
    track(up, () => client);
    client.on('data', (b) => mode !== 'frozen' && up.write(b));
    up.on('data', (b) => mode !== 'frozen' && client.write(b));
    client.on('end', () => up.end());
    up.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target.toString());
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as { port: number }).port);
  return {
    url: url.toString(),
    cut() {
      mode = 'cut';
      for (const s of sockets) s.destroy();
    },
    freeze() {
      mode = 'frozen';
    },
    restore() {
      mode = 'open';
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
