/**
 * An authoritative DNS server on loopback UDP for the tests' own zone: kumod resolves MX records of
 * test domains through it (kumo.dns.configure_resolver), and the DKIM verifier reads TXT records
 * from the same records. Names it does not hold are NXDOMAIN; a type it does not hold for a name it
 * does is an empty answer, as a real server gives.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import dnsPacket from 'dns-packet';

export interface Zone {
  mx?: Record<string, { exchange: string; preference?: number }[]>;
  a?: Record<string, string[]>;
  txt?: Record<string, string[]>;
}

export interface DnsServer {
  /** `127.0.0.1:<port>`, as kumo.dns.configure_resolver takes it */
  address: string;
  zone: Required<Zone>;
  queries: { name: string; type: string }[];
  /** TXT lookup in the same records, shaped like node:dns resolveTxt */
  resolveTxt(name: string): string[][];
  close(): Promise<void>;
}

const lower = <T>(r: Record<string, T> | undefined): Record<string, T> => Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k.toLowerCase(), v]));

export async function startDnsServer(zone: Zone): Promise<DnsServer> {
  const z = { mx: lower(zone.mx), a: lower(zone.a), txt: lower(zone.txt) };
  const queries: { name: string; type: string }[] = [];
  const socket: Socket = createSocket('udp4');
  const known = (name: string) => name in z.mx || name in z.a || name in z.txt;
  socket.on('message', (msg, rinfo) => {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const q = query.questions?.[0];
    if (!q) return;
    const name = q.name.toLowerCase().replace(/\.$/, '');
    queries.push({ name, type: q.type });
    const answers: dnsPacket.Answer[] = [];
    if (q.type === 'MX') for (const mx of z.mx[name] ?? []) answers.push({ type: 'MX', name: q.name, ttl: 60, data: { exchange: mx.exchange, preference: mx.preference ?? 10 } });
    if (q.type === 'A') for (const ip of z.a[name] ?? []) answers.push({ type: 'A', name: q.name, ttl: 60, data: ip });
    if (q.type === 'TXT') for (const t of z.txt[name] ?? []) answers.push({ type: 'TXT', name: q.name, ttl: 60, data: t.match(/.{1,255}/g) ?? [''] });
    // the response code is the low four bits of the flags (3: NXDOMAIN, for names not held)
    const rcode = known(name) ? 0 : 3;
    const response = dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE | rcode,
      questions: query.questions,
      answers,
    });
    socket.send(response, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    zone: z,
    queries,
    resolveTxt: (name) => (z.txt[name.toLowerCase()] ?? []).map((t) => [t]),
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}
