/**
 * Certificates for the TLS tests, made with openssl: CAs, server certificates and client certificates
 * (a node's, another node's, one from a CA nobody trusts). Each call writes PEM files into `dir`.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export interface Pem {
  cert: string;
  key: string;
}

const openssl = (args: string[], cwd: string): void => {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
};

export function makeCa(dir: string, name: string): Pem {
  const base = name.replace(/[^a-z0-9]+/gi, '-');
  const pem = { cert: path.join(dir, `${base}-ca.pem`), key: path.join(dir, `${base}-ca-key.pem`) };
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', pem.key, '-out', pem.cert], dir);
  return pem;
}

/** A certificate `ca` signed for `cn` (and the SAN entries given, e.g. DNS:x or IP:127.0.0.1). */
export function issue(dir: string, ca: Pem, opts: { cn: string; san?: string[]; usage: 'server' | 'client'; file?: string }): Pem {
  const base = opts.file ?? `${opts.usage}-${opts.cn.replace(/[^a-z0-9]+/gi, '-')}-${randomBytes(3).toString('hex')}`;
  const pem = { cert: path.join(dir, `${base}.pem`), key: path.join(dir, `${base}-key.pem`) };
  const csr = path.join(dir, `${base}.csr`);
  const ext = path.join(dir, `${base}.ext`);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${opts.cn}`, '-keyout', pem.key, '-out', csr], dir);
  const lines = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', `extendedKeyUsage=${opts.usage === 'server' ? 'serverAuth' : 'clientAuth'}`];
  if (opts.san && opts.san.length > 0) lines.push(`subjectAltName=${opts.san.join(',')}`);
  writeFileSync(ext, `${lines.join('\n')}\n`);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', '30', '-extfile', ext, '-out', pem.cert], dir);
  return pem;
}
