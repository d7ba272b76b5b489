/**
 * The web host's TLS certificate: EC P-256, signed by the lab's EC CA (`pki.ca.ec`, what a client passes as
 * its CA, e.g. `curl --cacert`), with the web host's addresses and names in its subjectAltName.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { run } from './exec.js';
import type { CertKey, LabPki } from './pki.js';

export async function makeWebCert(pki: LabPki, dir: string, sans: { ips: string[]; names: string[] }): Promise<CertKey> {
  await mkdir(dir, { recursive: true });
  const key = join(dir, 'web.key');
  const csr = join(dir, 'web.csr');
  const cert = join(dir, 'web.crt');
  const ext = join(dir, 'web.ext');
  const san = [...sans.names.map((n) => `DNS:${n}`), ...sans.ips.map((i) => `IP:${i}`)].join(',');
  await writeFile(
    ext,
    `basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = ${san}\n`,
  );
  const ossl = (args: string[]) => run('openssl', args, { timeoutMs: 30_000 });
  await ossl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  await ossl(['req', '-new', '-key', key, '-subj', `/CN=${sans.names[0] ?? sans.ips[0] ?? 'web'}`, '-config', join(pki.dir, 'openssl.cnf'), '-out', csr]);
  const caKey = pki.ca.ec.replace(/\.crt$/, '.key');
  await ossl(['x509', '-req', '-in', csr, '-CA', pki.ca.ec, '-CAkey', caKey, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
    '-days', '825', '-sha256', '-extfile', ext, '-out', cert]);
  return { cert, key, ca: pki.ca.ec };
}
