import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { VpnError } from '../errors.js';

/** TLS settings of one OpenVPN key state, taken from the profile. */
export interface TlsSettings {
  ca: string;
  cert?: string;
  key?: string;
  passphrase?: string;
  extraCerts?: string;
  /** 'TLSv1.2' | 'TLSv1.3' */
  minVersion?: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
  /** OpenSSL cipher list for TLS ≤ 1.2 (`tls-cipher`). */
  tlsCipher?: string;
  /** TLS 1.3 suites (`tls-ciphersuites`), colon-separated. */
  tlsCiphersuites?: string;
  /** `tls-groups`, colon-separated curve names. */
  groups?: string;
  /** `remote-cert-tls server`: keyUsage present and extendedKeyUsage serverAuth. */
  remoteCertTlsServer?: boolean;
  /** `verify-x509-name NAME [subject|name|name-prefix]`. */
  verifyX509Name?: { name: string; type: 'subject' | 'name' | 'name-prefix' };
  /** `peer-fingerprint` SHA-256 fingerprints (colon hex, any case). */
  peerFingerprints?: string[];
}

export interface TlsSessionEvents {
  secure: [];
  data: [Buffer];
  error: [VpnError];
}

const SERVER_AUTH_OID = '1.3.6.1.5.5.7.3.1';

/**
 * A Node TLS client running over OpenVPN's reliability layer instead of a socket: ciphertext produced by
 * TLS goes to `onCiphertext` (the caller queues it as P_CONTROL payload), and in-order P_CONTROL payloads
 * from the server are fed with `feedCiphertext`. Application writes are serialised so that each one
 * becomes its own TLS record (OpenVPN's key-method message must be alone in its record).
 */
export class TlsSession extends EventEmitter<TlsSessionEvents> {
  private readonly stream: Duplex;
  private socket: tls.TLSSocket | undefined;
  private readonly writeQueue: { bytes: Buffer; done?: () => void }[] = [];
  private writing = false;
  private failed = false;
  private secured = false;

  constructor(
    private readonly settings: TlsSettings,
    private readonly onCiphertext: (bytes: Buffer) => void,
  ) {
    super();
    this.stream = new Duplex({
      read() {},
      write: (chunk: Buffer, _enc, cb) => {
        if (!this.failed) this.onCiphertext(chunk);
        cb();
      },
      final(cb) {
        cb();
      },
    });
  }

  get isSecure(): boolean {
    return this.secured;
  }

  /** Negotiated protocol ('TLSv1.3', ...) and cipher name, once secure. */
  get protocol(): string | undefined {
    return this.socket?.getProtocol() ?? undefined;
  }
  get cipherName(): string | undefined {
    return this.socket?.getCipher()?.standardName;
  }

  start(): void {
    const s = this.settings;
    const ciphers = [s.tlsCiphersuites, s.tlsCipher].filter(Boolean).join(':') || undefined;
    const cert = s.cert && s.extraCerts ? `${s.cert.trim()}\n${s.extraCerts.trim()}\n` : s.cert;
    let sock: tls.TLSSocket;
    try {
      sock = tls.connect({
        socket: this.stream,
        // No CA with peer-fingerprint (OpenVPN 2.6's mode for self-signed setups): the fingerprint is the check.
        ca: s.ca || undefined,
        cert,
        key: s.key,
        passphrase: s.passphrase,
        minVersion: s.minVersion ?? 'TLSv1.2',
        maxVersion: s.maxVersion,
        ciphers,
        ecdhCurve: s.groups,
        // We check the chain ourselves in onSecure() so that the message can say exactly what is wrong.
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
        // OpenVPN servers do not use SNI.
        servername: '',
      });
    } catch (e) {
      this.fail(new VpnError('TLS_HANDSHAKE', `cannot set up TLS: ${(e as Error).message}`, { cause: e }));
      return;
    }
    this.socket = sock;
    sock.on('secureConnect', () => this.onSecure());
    sock.on('data', (d: Buffer) => {
      if (!this.failed) this.emit('data', d);
    });
    sock.on('error', (err: Error & { code?: string }) => {
      this.fail(mapTlsError(err));
    });
  }

  /** In-order P_CONTROL payload bytes from the server. */
  feedCiphertext(bytes: Buffer): void {
    if (!this.failed) this.stream.push(bytes);
  }

  /**
   * Send application data; each call becomes its own TLS record. The promise resolves once the record's
   * ciphertext has been handed to onCiphertext (or at once if the session failed).
   */
  writeApp(bytes: Buffer): Promise<void> {
    if (this.failed) return Promise.resolve();
    return new Promise((resolve) => {
      this.writeQueue.push({ bytes, done: resolve });
      this.pump();
    });
  }

  private pump(): void {
    if (this.writing || !this.socket || !this.secured) return;
    const next = this.writeQueue.shift();
    if (!next) return;
    this.writing = true;
    this.socket.write(next.bytes, () => {
      this.writing = false;
      next.done?.();
      // Next write on a later turn so TLS cannot merge two messages into one record.
      setImmediate(() => this.pump());
    });
  }

  /** RFC 5705 exporter, no context (OpenVPN passes none; an empty context differs under TLS 1.2). */
  exportKeyingMaterial(length: number, label: string): Buffer {
    if (!this.socket || !this.secured) throw new VpnError('INTERNAL', 'TLS exporter used before the handshake finished');
    // The typings demand a context; Node accepts none, which is what OpenVPN uses.
    const exporter = this.socket.exportKeyingMaterial as (length: number, label: string) => Buffer;
    return exporter.call(this.socket, length, label);
  }

  destroy(): void {
    this.failed = true;
    for (const w of this.writeQueue.splice(0)) w.done?.();
    this.socket?.destroy();
    this.stream.destroy();
  }

  private onSecure(): void {
    const sock = this.socket!;
    const peer = sock.getPeerX509Certificate();
    const problem = verifyServer(sock, peer, this.settings);
    if (problem) {
      this.fail(problem);
      return;
    }
    this.secured = true;
    this.emit('secure');
    this.pump();
  }

  private fail(err: VpnError): void {
    if (this.failed) return;
    this.failed = true;
    this.emit('error', err);
    this.socket?.destroy();
  }
}

function describeCert(c: X509Certificate | undefined): string {
  if (!c) return 'no certificate';
  return `subject "${oneLineDn(c.subject)}", issuer "${oneLineDn(c.issuer)}"`;
}

/** Node prints DNs one attribute per line; OpenSSL's one-line form (what verify-x509-name compares) joins them with ", ". */
export function oneLineDn(dn: string): string {
  return dn
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(', ');
}

function commonName(c: X509Certificate): string | undefined {
  for (const line of c.subject.split('\n')) {
    const m = /^CN=(.*)$/.exec(line.trim());
    if (m) return m[1];
  }
  return undefined;
}

/** True if the certificate carries a keyUsage extension (OID 2.5.29.15), found in the DER. */
function hasKeyUsageExtension(c: X509Certificate): boolean {
  return c.raw.includes(Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x0f]));
}

function verifyServer(sock: tls.TLSSocket, peer: X509Certificate | undefined, s: TlsSettings): VpnError | undefined {
  if (!peer) return new VpnError('TLS_VERIFY', 'the server sent no certificate');
  const pinnedOnly = !s.ca && s.peerFingerprints !== undefined && s.peerFingerprints.length > 0;
  if (!pinnedOnly && !sock.authorized) {
    const code = String(sock.authorizationError ?? 'unknown');
    return new VpnError('TLS_VERIFY', certErrorMessage(code, peer));
  }
  if (s.peerFingerprints && s.peerFingerprints.length > 0) {
    const fp = peer.fingerprint256.toUpperCase();
    if (!s.peerFingerprints.some((f) => f.toUpperCase() === fp)) {
      return new VpnError('TLS_VERIFY', `server certificate fingerprint ${fp} is not in peer-fingerprint`);
    }
  }
  if (s.remoteCertTlsServer) {
    const eku = peer.keyUsage ?? [];
    if (!hasKeyUsageExtension(peer) || !eku.includes(SERVER_AUTH_OID)) {
      return new VpnError(
        'TLS_VERIFY',
        `server certificate is not a TLS server certificate (remote-cert-tls server needs keyUsage and extendedKeyUsage serverAuth): ${describeCert(peer)}`,
      );
    }
  }
  if (s.verifyX509Name) {
    const { name, type } = s.verifyX509Name;
    const subject = oneLineDn(peer.subject);
    const cn = commonName(peer) ?? '';
    const ok = type === 'subject' ? subject === name : type === 'name' ? cn === name : cn.startsWith(name);
    if (!ok) {
      const got = type === 'subject' ? `subject "${subject}"` : `CN "${cn}"`;
      return new VpnError('TLS_VERIFY', `server certificate does not match verify-x509-name ${name} ${type}: it has ${got}`);
    }
  }
  return undefined;
}

function certErrorMessage(code: string, peer: X509Certificate): string {
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return `server certificate has expired (valid until ${peer.validTo}): ${describeCert(peer)}`;
    case 'CERT_NOT_YET_VALID':
      return `server certificate is not yet valid (valid from ${peer.validFrom}): ${describeCert(peer)}`;
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_SIGNATURE_FAILURE':
      return `server certificate is not signed by the CA in the profile's <ca> (${code}): ${describeCert(peer)}`;
    default:
      return `server certificate rejected (${code}): ${describeCert(peer)}`;
  }
}

function mapTlsError(err: Error & { code?: string }): VpnError {
  const msg = err.message;
  if (/bad decrypt|BAD_DECRYPT|passphrase/i.test(msg)) {
    return new VpnError('TLS_HANDSHAKE', `cannot read the client private key (wrong or missing passphrase?): ${msg}`, { cause: err });
  }
  if (/alert/i.test(msg)) {
    return new VpnError('TLS_HANDSHAKE', `the server ended the TLS handshake: ${msg}`, { cause: err });
  }
  return new VpnError('TLS_HANDSHAKE', `TLS handshake failed: ${msg}`, { cause: err });
}
