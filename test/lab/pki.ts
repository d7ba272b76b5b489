/**
 * A throwaway PKI made with the openssl CLI: two CAs (ECDSA P-256 and RSA 2048) plus a FOREIGN CA, server and
 * client certificates of both key types, an expired server certificate, a server and a client certificate from
 * the foreign CA, and passphrase-protected client keys. Everything is PEM files in one directory; creating it
 * takes well under a second (RSA keys are made in parallel).
 */
import { mkdir, writeFile, readFile, access } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { run } from './exec.js';

/** Paths of a certificate and its private key (PEM). */
export interface CertKey {
  cert: string;
  key: string;
  /** The CA certificate that signed it. */
  ca: string;
}

export interface LabPki {
  dir: string;
  /** CA certificates. `bundle` = ec + rsa (what the lab's servers trust for clients). */
  ca: { ec: string; rsa: string; foreign: string; bundle: string };
  /** Server certificates, CN and SAN DNS `server.lab`, EKU serverAuth. */
  server: {
    ec: CertKey;
    rsa: CertKey;
    /** EC, signed by the EC CA, valid 2020-01-01 .. 2021-01-01. */
    expired: CertKey;
    /** EC, signed by the foreign CA (a client trusting ca.ec/ca.rsa must reject it). */
    foreign: CertKey;
  };
  /** Client certificates, CN `client.lab`, EKU clientAuth. */
  client: {
    ec: CertKey;
    rsa: CertKey;
    /** Same certificate as `ec`, key as encrypted PKCS#8 (AES-256-CBC) with `passphrase`. */
    ecEncrypted: CertKey;
    /** Same certificate as `rsa`, key as legacy "Proc-Type: 4,ENCRYPTED" PEM (AES-256-CBC) with `passphrase`. */
    rsaEncryptedLegacy: CertKey;
    /** EC, signed by the foreign CA (the lab's servers reject it). */
    foreign: CertKey;
  };
  /** Passphrase of the encrypted client keys. */
  passphrase: string;
  /** Server certificate CN (for verify-x509-name). */
  serverName: string;
  clientName: string;
}

const CNF = `
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ v3_server_ec ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:server.lab
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_server_rsa ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:server.lab
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_client ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ ca_expired ]
dir = @DIR@/ca-db
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
certificate = @DIR@/ca-ec.crt
private_key = @DIR@/ca-ec.key
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[ policy_any ]
commonName = supplied
`;

const ossl = (args: string[]) => run('openssl', args, { timeoutMs: 30_000 });

async function genKey(path: string, type: 'ec' | 'rsa' | 'rsa4096'): Promise<void> {
  const opt = type === 'ec' ? ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${type === 'rsa4096' ? 4096 : 2048}`];
  await ossl(['genpkey', ...opt, '-out', path]);
}

async function makeCa(dir: string, name: string, type: 'ec' | 'rsa', cn: string): Promise<void> {
  const key = join(dir, `${name}.key`);
  await genKey(key, type);
  await ossl(['req', '-x509', '-new', '-key', key, '-subj', `/CN=${cn}`, '-days', '3650', '-sha256',
    '-config', join(dir, 'openssl.cnf'), '-extensions', 'v3_ca', '-out', join(dir, `${name}.crt`)]);
}

async function makeLeaf(dir: string, name: string, type: 'ec' | 'rsa' | 'rsa4096', cn: string, ext: string, ca: string): Promise<CertKey> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  await genKey(key, type);
  await ossl(['req', '-new', '-key', key, '-subj', `/CN=${cn}`, '-config', join(dir, 'openssl.cnf'), '-out', csr]);
  await ossl(['x509', '-req', '-in', csr, '-CA', join(dir, `${ca}.crt`), '-CAkey', join(dir, `${ca}.key`),
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '825', '-sha256',
    '-extfile', join(dir, 'openssl.cnf'), '-extensions', ext, '-out', cert]);
  return { cert, key, ca: join(dir, `${ca}.crt`) };
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

function layout(dir: string, passphrase: string): LabPki {
  const ck = (name: string, ca: string, keyName = name): CertKey => ({
    cert: join(dir, `${name}.crt`),
    key: join(dir, `${keyName}.key`),
    ca: join(dir, `${ca}.crt`),
  });
  return {
    dir,
    ca: { ec: join(dir, 'ca-ec.crt'), rsa: join(dir, 'ca-rsa.crt'), foreign: join(dir, 'ca-foreign.crt'), bundle: join(dir, 'ca-bundle.crt') },
    server: {
      ec: ck('server-ec', 'ca-ec'),
      rsa: ck('server-rsa', 'ca-rsa'),
      expired: ck('server-expired', 'ca-ec'),
      foreign: ck('server-foreign', 'ca-foreign'),
    },
    client: {
      ec: ck('client-ec', 'ca-ec'),
      rsa: ck('client-rsa', 'ca-rsa'),
      ecEncrypted: ck('client-ec', 'ca-ec', 'client-ec-encrypted'),
      rsaEncryptedLegacy: ck('client-rsa', 'ca-rsa', 'client-rsa-encrypted-legacy'),
      foreign: ck('client-foreign', 'ca-foreign'),
    },
    passphrase,
    serverName: 'server.lab',
    clientName: 'client.lab',
  };
}

/**
 * Creates the PKI in `dir` (or returns the existing one if `dir/done` exists). Deterministic names; see LabPki.
 */
export async function createPki(dir: string): Promise<LabPki> {
  if (await exists(join(dir, 'done'))) return layout(dir, (await readFile(join(dir, 'passphrase'), 'utf8')).trim());
  await mkdir(join(dir, 'ca-db'), { recursive: true });
  const passphrase = `lab-pass-${randomBytes(4).toString('hex')}`;
  await writeFile(join(dir, 'openssl.cnf'), CNF.replaceAll('@DIR@', dir));
  await writeFile(join(dir, 'ca-db', 'index.txt'), '');
  await writeFile(join(dir, 'ca-db', 'serial'), `${randomBytes(8).toString('hex')}\n`);
  await writeFile(join(dir, 'passphrase'), `${passphrase}\n`, { mode: 0o600 });
  await Promise.all([
    makeCa(dir, 'ca-ec', 'ec', 'vpnproxy lab CA (EC)'),
    makeCa(dir, 'ca-rsa', 'rsa', 'vpnproxy lab CA (RSA)'),
    makeCa(dir, 'ca-foreign', 'ec', 'Some Other CA'),
  ]);
  const ecDone = Promise.all([
    makeLeaf(dir, 'server-ec', 'ec', 'server.lab', 'v3_server_ec', 'ca-ec'),
    makeLeaf(dir, 'client-ec', 'ec', 'client.lab', 'v3_client', 'ca-ec'),
    makeLeaf(dir, 'server-foreign', 'ec', 'server.lab', 'v3_server_ec', 'ca-foreign'),
    makeLeaf(dir, 'client-foreign', 'ec', 'client.lab', 'v3_client', 'ca-foreign'),
    (async () => {
      const key = join(dir, 'server-expired.key');
      const csr = join(dir, 'server-expired.csr');
      await genKey(key, 'ec');
      await ossl(['req', '-new', '-key', key, '-subj', '/CN=server.lab', '-config', join(dir, 'openssl.cnf'), '-out', csr]);
      await ossl(['ca', '-batch', '-notext', '-config', join(dir, 'openssl.cnf'), '-name', 'ca_expired',
        '-startdate', '20200101000000Z', '-enddate', '20210101000000Z', '-extfile', join(dir, 'openssl.cnf'),
        '-extensions', 'v3_server_ec', '-in', csr, '-out', join(dir, 'server-expired.crt')]);
    })(),
  ]);
  const rsaDone = Promise.all([
    makeLeaf(dir, 'server-rsa', 'rsa', 'server.lab', 'v3_server_rsa', 'ca-rsa'),
    makeLeaf(dir, 'client-rsa', 'rsa', 'client.lab', 'v3_client', 'ca-rsa'),
  ]);
  await Promise.all([ecDone, rsaDone]);
  await Promise.all([
    ossl(['pkey', '-in', join(dir, 'client-ec.key'), '-aes-256-cbc', '-passout', `pass:${passphrase}`, '-out', join(dir, 'client-ec-encrypted.key')]),
    ossl(['rsa', '-in', join(dir, 'client-rsa.key'), '-aes256', '-traditional', '-passout', `pass:${passphrase}`,
      '-out', join(dir, 'client-rsa-encrypted-legacy.key')]),
    (async () => {
      const [e, r] = await Promise.all([readFile(join(dir, 'ca-ec.crt'), 'utf8'), readFile(join(dir, 'ca-rsa.crt'), 'utf8')]);
      await writeFile(join(dir, 'ca-bundle.crt'), e + r);
    })(),
  ]);
  await writeFile(join(dir, 'done'), new Date().toISOString());
  return layout(dir, passphrase);
}

/**
 * An RSA chain big enough to need IKE fragmentation at 1280 bytes: a root CA (RSA 2048), one intermediate CA
 * under it for servers and one for clients (RSA 4096 each), a server certificate (RSA 4096, server.lab) and a
 * client certificate (RSA 4096, client.lab) under those. `bundle` files hold the end-entity certificate
 * followed by its intermediate (what a client sends as local.certs). Made only when a test asks for it, in
 * its own directory; the 4096-bit keys are generated in parallel (a few seconds on the lab machine).
 */
export interface ChainPki {
  dir: string;
  root: string;
  serverIntermediate: string;
  clientIntermediate: string;
  server: CertKey & { bundle: string };
  client: CertKey & { bundle: string };
}

function chainLayout(dir: string): ChainPki {
  const f = (n: string) => join(dir, n);
  return {
    dir,
    root: f('chain-root.crt'),
    serverIntermediate: f('chain-im-server.crt'),
    clientIntermediate: f('chain-im-client.crt'),
    server: { cert: f('chain-server.crt'), key: f('chain-server.key'), ca: f('chain-im-server.crt'), bundle: f('chain-server-bundle.crt') },
    client: { cert: f('chain-client.crt'), key: f('chain-client.key'), ca: f('chain-im-client.crt'), bundle: f('chain-client-bundle.crt') },
  };
}

async function makeIntermediate(dir: string, name: string, cn: string, parent: string): Promise<void> {
  await makeLeaf(dir, name, 'rsa4096', cn, 'v3_ca', parent);
}

/** Creates the chain in `dir` (or returns the existing one if `dir/done` exists). */
export async function createChainPki(dir: string): Promise<ChainPki> {
  const c = chainLayout(dir);
  if (await exists(join(dir, 'done'))) return c;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'openssl.cnf'), CNF.replaceAll('@DIR@', dir));
  // The slow part first and all at once: the four 4096-bit keys (the leaves reuse them below).
  await Promise.all([
    makeCa(dir, 'chain-root', 'rsa', 'vpnproxy lab chain root CA'),
    genKey(join(dir, 'chain-im-server.key'), 'rsa4096'),
    genKey(join(dir, 'chain-im-client.key'), 'rsa4096'),
    genKey(join(dir, 'chain-server.key'), 'rsa4096'),
    genKey(join(dir, 'chain-client.key'), 'rsa4096'),
  ]);
  const sign = async (name: string, cn: string, ext: string, ca: string) => {
    const csr = join(dir, `${name}.csr`);
    await ossl(['req', '-new', '-key', join(dir, `${name}.key`), '-subj', `/CN=${cn}`, '-config', join(dir, 'openssl.cnf'), '-out', csr]);
    await ossl(['x509', '-req', '-in', csr, '-CA', join(dir, `${ca}.crt`), '-CAkey', join(dir, `${ca}.key`),
      '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '825', '-sha256',
      '-extfile', join(dir, 'openssl.cnf'), '-extensions', ext, '-out', join(dir, `${name}.crt`)]);
  };
  await Promise.all([
    sign('chain-im-server', 'vpnproxy lab server intermediate CA', 'v3_ca', 'chain-root'),
    sign('chain-im-client', 'vpnproxy lab client intermediate CA', 'v3_ca', 'chain-root'),
  ]);
  await Promise.all([
    sign('chain-server', 'server.lab', 'v3_server_rsa', 'chain-im-server'),
    sign('chain-client', 'client.lab', 'v3_client', 'chain-im-client'),
  ]);
  const read = (p: string) => readFile(p, 'utf8');
  await writeFile(c.server.bundle, (await read(c.server.cert)) + (await read(c.serverIntermediate)));
  await writeFile(c.client.bundle, (await read(c.client.cert)) + (await read(c.clientIntermediate)));
  await writeFile(join(dir, 'done'), new Date().toISOString());
  return c;
}
