/**
 * TlsSession's verification in peer-fingerprint mode, against a Node TLS server over an in-memory pipe: with no
 * CA at all the pinned fingerprint is the whole check (OpenVPN 2.6's self-signed mode), a fingerprint that is
 * not listed is TLS_VERIFY, and without CA or fingerprint the unverifiable certificate is still refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { VpnError } from '../../../src/errors.js';
import { TlsSession, type TlsSettings } from '../../../src/openvpn/tls-session.js';

const KEYS = fileURLToPath(new URL('../../fixtures/profiles/keys/', import.meta.url));
// The fixture's client certificate stands in for a server's here: only its fingerprint matters.
const CERT = readFileSync(join(KEYS, 'client.crt'), 'utf8');
const KEY = readFileSync(join(KEYS, 'client.key'), 'utf8');
const FP = new X509Certificate(CERT).fingerprint256;

/** Runs one handshake; resolves 'secure' or the VpnError our side reported. */
function handshake(settings: TlsSettings): Promise<'secure' | VpnError> {
  return new Promise((resolve) => {
    let session: TlsSession | undefined;
    const serverSide = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        setImmediate(() => session?.feedCiphertext(Buffer.from(chunk)));
        cb();
      },
    });
    const server = new tls.TLSSocket(serverSide, { isServer: true, cert: CERT, key: KEY, minVersion: 'TLSv1.2' });
    server.on('error', () => undefined);
    session = new TlsSession(settings, (bytes) => setImmediate(() => serverSide.push(bytes)));
    const done = (r: 'secure' | VpnError) => {
      session?.destroy();
      server.destroy();
      resolve(r);
    };
    session.on('secure', () => done('secure'));
    session.on('error', (e) => done(e));
    session.start();
  });
}

test('no CA, the server pinned by its fingerprint: the handshake completes', async () => {
  assert.equal(await handshake({ ca: '', peerFingerprints: [FP.toLowerCase()] }), 'secure');
});

test('no CA and a fingerprint that is not the server\'s: TLS_VERIFY naming the fingerprint', async () => {
  const wrong = FP.replace(/^../, FP.startsWith('00') ? '11' : '00');
  const r = await handshake({ ca: '', peerFingerprints: [wrong] });
  assert.notEqual(r, 'secure');
  const e = r as VpnError;
  assert.equal(e.code, 'TLS_VERIFY');
  assert.match(e.message, new RegExp(`fingerprint ${FP} is not in peer-fingerprint`));
});

test('neither CA nor fingerprint: the certificate cannot be verified and is refused', async () => {
  const r = await handshake({ ca: '' });
  assert.notEqual(r, 'secure');
  assert.equal((r as VpnError).code, 'TLS_VERIFY');
});

test('a CA that did not sign the server: refused even with the right fingerprint', async () => {
  const other = readFileSync(join(KEYS, 'client.crt'), 'utf8'); // a leaf, not the issuer of the server certificate
  const r = await handshake({ ca: other, peerFingerprints: [FP] });
  assert.notEqual(r, 'secure');
  assert.equal((r as VpnError).code, 'TLS_VERIFY');
});
