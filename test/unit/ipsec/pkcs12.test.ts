/**
 * Our PKCS#12 reader against containers written by the openssl CLI: OpenSSL 3's default (PBES2 AES-256-CBC,
 * PBKDF2-HMAC-SHA256, SHA-256 MAC), the older pbeWithSHAAnd3-KeyTripleDES-CBC with a SHA-1 MAC, an empty
 * passphrase, an RSA key with a CA certificate beside it; a wrong passphrase and RC2 (-legacy) are clear errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VpnError } from '../../../src/errors.js';
import { pkcs12Kdf, readPkcs12 } from '../../../src/ipsec/ike/pkcs12.js';

const dir = mkdtempSync(join(tmpdir(), 'pkcs12-'));
const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-subj', '/CN=Test CA', '-days', '30', '-out', 'ca.crt']);
ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ec.key', '-subj', '/CN=ec client', '-days', '30', '-out', 'ec.crt']);
ossl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rsa.key', '-subj', '/CN=rsa client', '-out', 'rsa.csr']);
ossl(['x509', '-req', '-in', 'rsa.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '10', '-out', 'rsa.crt']);
const p12 = (name: string, args: string[]) => {
  ossl(['pkcs12', '-export', ...args, '-out', name]);
  return readFileSync(join(dir, name));
};
const matches = (r: ReturnType<typeof readPkcs12>, subject: string) => {
  const c = r.certs.map((d) => new X509Certificate(d)).find((x) => x.subject === subject)!;
  assert.ok(c, `holds ${subject}`);
  assert.ok(createPublicKey(r.keys[0]!).export({ type: 'spki', format: 'der' }).equals(c.publicKey.export({ type: 'spki', format: 'der' })));
};

test('OpenSSL 3 default (PBES2 AES, SHA-256 MAC), 3DES with a SHA-1 MAC, and an empty passphrase', () => {
  matches(readPkcs12(p12('a.p12', ['-in', 'ec.crt', '-inkey', 'ec.key', '-passout', 'pass:pw']), 'pw', 'a'), 'CN=ec client');
  matches(readPkcs12(p12('b.p12', ['-in', 'ec.crt', '-inkey', 'ec.key', '-passout', 'pass:pw', '-certpbe', 'PBE-SHA1-3DES', '-keypbe', 'PBE-SHA1-3DES', '-macalg', 'sha1']), 'pw', 'b'), 'CN=ec client');
  matches(readPkcs12(p12('c.p12', ['-in', 'ec.crt', '-inkey', 'ec.key', '-passout', 'pass:']), '', 'c'), 'CN=ec client');
  const r = readPkcs12(p12('d.p12', ['-in', 'rsa.crt', '-inkey', 'rsa.key', '-certfile', 'ca.crt', '-passout', 'pass:pässwort']), 'pässwort', 'd');
  assert.equal(r.certs.length, 2);
  assert.equal(r.keys[0]!.asymmetricKeyType, 'rsa');
  matches(r, 'CN=rsa client');
});

test('a wrong passphrase, RC2 and garbage are PROFILE_FILE errors saying why', () => {
  const err = (re: RegExp) => (e: unknown) => e instanceof VpnError && e.code === 'PROFILE_FILE' && re.test(e.message);
  const a = readFileSync(join(dir, 'a.p12'));
  assert.throws(() => readPkcs12(a, 'nope', 'x.p12'), err(/^x\.p12: cannot read the PKCS#12 container: wrong passphrase/));
  assert.throws(() => readPkcs12(p12('legacy.p12', ['-legacy', '-in', 'ec.crt', '-inkey', 'ec.key', '-passout', 'pass:pw']), 'pw', 'l'), err(/RC2 \(openssl pkcs12 -legacy\)/));
  assert.throws(() => readPkcs12(new Uint8Array([0x30, 0x82, 0xff]), 'pw', 'g'), err(/^g: cannot read the PKCS#12 container: /));
  assert.throws(() => readPkcs12(a.subarray(0, a.length - 10), 'pw', 't'), err(/cannot read/));
});

test('the PKCS#12 key derivation (RFC 7292 B.2): the known "smeg" vector for key and IV', () => {
  const pw = Buffer.from('\0s\0m\0e\0g\0\0', 'latin1'); // BMPString with its terminator
  const salt = Buffer.from('0a58cf64530d823f', 'hex');
  assert.equal(pkcs12Kdf('sha1', 64, pw, salt, 1, 1, 24).toString('hex'), '8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3');
  assert.equal(pkcs12Kdf('sha1', 64, pw, salt, 1, 2, 8).toString('hex'), '79993dfe048d3b76');
});
