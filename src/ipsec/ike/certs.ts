/**
 * Certificates for IKE_AUTH (RFC 7296 §3.6-§3.8, RFC 7427): loading PEM/DER, the CERTREQ authority hashes
 * (SHA-1 of the CA's SubjectPublicKeyInfo), the peer's chain verified to a configured CA with node:crypto's
 * X509Certificate, its identity against IDr, and AUTH signatures made and checked: RSA PKCS#1 v1.5 (method 1,
 * SHA-1), ECDSA (methods 9/10/11, r||s) and RFC 7427 digital signatures (method 14: RSA PKCS#1 v1.5, RSA-PSS,
 * ECDSA with DER signatures).
 */
import { createHash, createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, constants, X509Certificate, type KeyObject } from 'node:crypto';
import { VpnError } from '../../errors.js';
import { AuthMethod, HashAlgorithm, IdType } from '../../wire/ike-constants.js';
import { buildSignatureAuthData, parseSignatureAuthData, type IdPayload } from '../../wire/ike-payloads.js';

/** PEM (one or more blocks) or DER bytes → DER certificates. */
export function certsFromBytes(bytes: Uint8Array): Buffer[] {
  const text = Buffer.from(bytes).toString('latin1');
  if (text.includes('-----BEGIN')) {
    const out: Buffer[] = [];
    for (const m of text.matchAll(/-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----([\s\S]*?)-----END/g)) out.push(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
    return out;
  }
  return [Buffer.from(bytes)];
}

export function parseCertificate(der: Uint8Array, what: string): X509Certificate {
  try {
    return new X509Certificate(Buffer.from(der));
  } catch (e) {
    throw new VpnError('PROTOCOL', `${what} is not an X.509 certificate: ${(e as Error).message}`);
  }
}

/** SHA-1 of the certificate's SubjectPublicKeyInfo: the CA hash of a CERTREQ (RFC 7296 §3.7). */
export function caKeyHash(ca: X509Certificate): Buffer {
  return createHash('sha1').update(ca.publicKey.export({ type: 'spki', format: 'der' })).digest();
}

// ------------------------------------------------------------------ minimal DER reading

interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}
function tlv(b: Uint8Array, o: number): Tlv {
  const tag = b[o]!;
  let l = b[o + 1]!;
  let c = o + 2;
  if (l & 0x80) {
    const n = l & 0x7f;
    l = 0;
    for (let i = 0; i < n; i++) l = l * 256 + b[c + i]!;
    c += n;
  }
  if (c + l > b.length) throw new VpnError('PROTOCOL', 'truncated DER');
  return { tag, start: o, contentStart: c, end: c + l };
}

/** The DER of the certificate's subject Name (the ID_DER_ASN1_DN identity). */
export function subjectDer(cert: X509Certificate): Buffer {
  const d = cert.raw;
  const outer = tlv(d, 0);
  const tbs = tlv(d, outer.contentStart);
  let o = tbs.contentStart;
  let t = tlv(d, o);
  if (t.tag === 0xa0) o = t.end; // version
  for (let i = 0; i < 4; i++) o = tlv(d, o).end; // serial, signature, issuer, validity
  t = tlv(d, o);
  return Buffer.from(d.subarray(t.start, t.end));
}

// ------------------------------------------------------------------ chain and identity

export interface ChainResult {
  endEntity: X509Certificate;
  ca: X509Certificate;
}

const dateOf = (s: string) => new Date(s).getTime();

function checkDates(c: X509Certificate, now: number, role: string): void {
  if (now < dateOf(c.validFrom)) throw new VpnError('CERT_EXPIRED', `the gateway's ${role} certificate '${oneLine(c.subject)}' is not valid before ${c.validFrom}`);
  if (now > dateOf(c.validTo)) throw new VpnError('CERT_EXPIRED', `the gateway's ${role} certificate '${oneLine(c.subject)}' expired on ${c.validTo}`);
}

export const oneLine = (dn: string) => dn.split('\n').filter(Boolean).join(', ');

const issues = (issuer: X509Certificate, cert: X509Certificate) => {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
};

/** The end-entity certificate (first) and the intermediates the peer sent, verified up to one of `cas`. */
export function verifyChain(sent: readonly X509Certificate[], cas: readonly X509Certificate[], now = Date.now()): ChainResult {
  if (sent.length === 0) throw new VpnError('CERT_UNTRUSTED', 'the gateway sent no certificate (no CERT payload)');
  if (cas.length === 0) throw new VpnError('CERT_UNTRUSTED', 'no CA certificate is configured to check the gateway against (remote.cacerts or x509ca/)');
  const ee = sent[0]!;
  checkDates(ee, now, 'end-entity');
  let cur = ee;
  const pool = sent.slice(1);
  for (let depth = 0; depth < 8; depth++) {
    const ca = cas.find((c) => issues(c, cur));
    if (ca) {
      checkDates(ca, now, 'CA');
      return { endEntity: ee, ca };
    }
    if (cas.some((c) => c.fingerprint256 === cur.fingerprint256)) return { endEntity: ee, ca: cur };
    const next = pool.find((c) => c !== cur && issues(c, cur));
    if (!next) break;
    checkDates(next, now, 'intermediate');
    cur = next;
  }
  throw new VpnError('CERT_UNTRUSTED', `the gateway's certificate '${oneLine(ee.subject)}' (issuer '${oneLine(cur.issuer)}') is not signed by a trusted CA (${cas.map((c) => `'${oneLine(c.subject)}'`).join(', ')})`);
}

const normDn = (s: string) =>
  s
    .split(/\n|,\s*|\/(?=[A-Za-z]+=)/)
    .map((x) => x.trim())
    .filter(Boolean)
    .map((x) => {
      const i = x.indexOf('=');
      return `${x.slice(0, i).trim().toUpperCase()}=${x.slice(i + 1).trim()}`;
    })
    .join(',');

/** Whether two DNs in text form ('C=CH, O=lab, CN=x' or node's one-per-line) are the same. */
export function sameDn(a: string, b: string): boolean {
  return normDn(a) === normDn(b);
}

function sanEntries(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Whether the certificate vouches for `id` (subjectAltName DNS/IP/email, or the subject DN). */
export function certMatchesId(cert: X509Certificate, id: IdPayload): boolean {
  const d = Buffer.from(id.data);
  const san = sanEntries(cert);
  switch (id.type) {
    case IdType.FQDN:
      return san.some((s) => s.toLowerCase() === `dns:${d.toString('utf8').toLowerCase()}`);
    case IdType.RFC822_ADDR:
      return san.some((s) => s.toLowerCase() === `email:${d.toString('utf8').toLowerCase()}`);
    case IdType.IPV4_ADDR:
      return d.length === 4 && san.includes(`IP Address:${[...d].join('.')}`);
    case IdType.DER_ASN1_DN:
      return subjectDer(cert).equals(d);
    default:
      return false;
  }
}

// ------------------------------------------------------------------ AUTH signatures

const ALG = {
  sha1Rsa: '300d06092a864886f70d0101050500',
  sha256Rsa: '300d06092a864886f70d01010b0500',
  sha384Rsa: '300d06092a864886f70d01010c0500',
  sha512Rsa: '300d06092a864886f70d01010d0500',
  ecdsaSha256: '300a06082a8648ce3d040302',
  ecdsaSha384: '300a06082a8648ce3d040303',
  ecdsaSha512: '300a06082a8648ce3d040304',
} as const;
const RSA_PSS_OID = '06092a864886f70d01010a';
const HASH_OIDS: Record<string, string> = { '608648016503040201': 'sha256', '608648016503040202': 'sha384', '608648016503040203': 'sha512', '2b0e03021a': 'sha1' };

function keyKind(key: KeyObject): 'rsa' | 'ec' | 'rsa-pss' | string {
  return key.asymmetricKeyType ?? 'unknown';
}
function curveHash(key: KeyObject): { hash: string; method: number; bytes: number } {
  const c = key.asymmetricKeyDetails?.namedCurve;
  if (c === 'prime256v1' || c === 'P-256') return { hash: 'sha256', method: AuthMethod.ECDSA_SHA256_P256, bytes: 32 };
  if (c === 'secp384r1' || c === 'P-384') return { hash: 'sha384', method: AuthMethod.ECDSA_SHA384_P384, bytes: 48 };
  if (c === 'secp521r1' || c === 'P-521') return { hash: 'sha512', method: AuthMethod.ECDSA_SHA512_P521, bytes: 66 };
  throw new VpnError('PROFILE_UNSUPPORTED', `ECDSA curve ${c ?? '?'} is not supported for IKE authentication`);
}

/** Our AUTH: method 14 (SHA-256/384/512 as the peer offers) when it sent SIGNATURE_HASH_ALGORITHMS, else 1 or 9-11. */
export function signAuth(key: KeyObject, octets: Uint8Array, peerHashes: readonly number[] | undefined): { method: number; data: Uint8Array } {
  const kind = keyKind(key);
  if (kind !== 'rsa' && kind !== 'ec') throw new VpnError('PROFILE_UNSUPPORTED', `private keys of type ${kind} are not supported for IKE authentication (RSA and ECDSA are)`);
  const data = Buffer.from(octets);
  if (peerHashes && peerHashes.length > 0) {
    if (kind === 'ec') {
      const { hash } = curveHash(key);
      const alg = hash === 'sha256' ? ALG.ecdsaSha256 : hash === 'sha384' ? ALG.ecdsaSha384 : ALG.ecdsaSha512;
      const sig = cryptoSign(hash, data, { key, dsaEncoding: 'der' });
      return { method: AuthMethod.DIGITAL_SIGNATURE, data: buildSignatureAuthData({ algorithmId: Buffer.from(alg, 'hex'), signature: sig }) };
    }
    const h = peerHashes.includes(HashAlgorithm.SHA2_256) ? 'sha256' : peerHashes.includes(HashAlgorithm.SHA2_384) ? 'sha384' : peerHashes.includes(HashAlgorithm.SHA2_512) ? 'sha512' : undefined;
    if (h) {
      const alg = h === 'sha256' ? ALG.sha256Rsa : h === 'sha384' ? ALG.sha384Rsa : ALG.sha512Rsa;
      const sig = cryptoSign(h, data, { key, padding: constants.RSA_PKCS1_PADDING });
      return { method: AuthMethod.DIGITAL_SIGNATURE, data: buildSignatureAuthData({ algorithmId: Buffer.from(alg, 'hex'), signature: sig }) };
    }
  }
  if (kind === 'ec') {
    const { hash, method } = curveHash(key);
    return { method, data: cryptoSign(hash, data, { key, dsaEncoding: 'ieee-p1363' }) };
  }
  return { method: AuthMethod.RSA_SIG, data: cryptoSign('sha1', data, { key, padding: constants.RSA_PKCS1_PADDING }) };
}

/** Checks the peer's AUTH signature over `octets` with the certificate's key; throws AUTH_FAILED. */
export function verifyAuthSignature(cert: X509Certificate, method: number, authData: Uint8Array, octets: Uint8Array, who: string): void {
  const key = cert.publicKey;
  const kind = keyKind(key);
  const data = Buffer.from(octets);
  let ok = false;
  let what = `method ${method}`;
  try {
    if (method === AuthMethod.RSA_SIG) {
      what = 'RSA PKCS#1 v1.5 SHA-1';
      ok = kind === 'rsa' && cryptoVerify('sha1', data, { key, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(authData));
    } else if (method === AuthMethod.ECDSA_SHA256_P256 || method === AuthMethod.ECDSA_SHA384_P384 || method === AuthMethod.ECDSA_SHA512_P521) {
      const c = kind === 'ec' ? curveHash(key) : undefined;
      what = `ECDSA (method ${method})`;
      ok = c !== undefined && c.method === method && cryptoVerify(c.hash, data, { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(authData));
    } else if (method === AuthMethod.DIGITAL_SIGNATURE) {
      const s = parseSignatureAuthData(authData);
      const alg = Buffer.from(s.algorithmId).toString('hex');
      const sig = Buffer.from(s.signature);
      const rsaHash = { [ALG.sha1Rsa]: 'sha1', [ALG.sha256Rsa]: 'sha256', [ALG.sha384Rsa]: 'sha384', [ALG.sha512Rsa]: 'sha512' }[alg];
      const ecHash = { [ALG.ecdsaSha256]: 'sha256', [ALG.ecdsaSha384]: 'sha384', [ALG.ecdsaSha512]: 'sha512' }[alg];
      if (rsaHash) {
        what = `RSA PKCS#1 v1.5 ${rsaHash}`;
        ok = kind === 'rsa' && cryptoVerify(rsaHash, data, { key, padding: constants.RSA_PKCS1_PADDING }, sig);
      } else if (ecHash) {
        what = `ECDSA ${ecHash}`;
        ok = kind === 'ec' && cryptoVerify(ecHash, data, { key, dsaEncoding: 'der' }, sig);
      } else if (alg.startsWith(`30${alg.slice(2, 4)}${RSA_PSS_OID}`) || alg.includes(RSA_PSS_OID)) {
        const hashOid = Object.keys(HASH_OIDS).find((o) => alg.includes(`06${(o.length / 2).toString(16).padStart(2, '0')}${o}`));
        const hash = hashOid ? HASH_OIDS[hashOid]! : 'sha1';
        const m = /a2030201([0-9a-f]{2})/.exec(alg);
        const saltLength = m ? parseInt(m[1]!, 16) : 20;
        what = `RSA-PSS ${hash}`;
        ok = (kind === 'rsa' || kind === 'rsa-pss') && cryptoVerify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, sig);
      } else {
        throw new VpnError('AUTH_FAILED', `${who} signed its AUTH with an unsupported algorithm (AlgorithmIdentifier ${alg})`);
      }
    } else {
      throw new VpnError('AUTH_FAILED', `${who} authenticated with AUTH method ${method}, which this client does not support with certificates`);
    }
  } catch (e) {
    if (e instanceof VpnError) throw e;
    ok = false;
  }
  if (!ok) throw new VpnError('AUTH_FAILED', `${who}'s AUTH signature (${what}) does not verify with the public key of its certificate`);
}

/** A private key file (PEM or DER, PKCS#1/SEC1/PKCS#8). */
export function loadPrivateKey(bytes: Uint8Array, passphrase: string | undefined, what: string): KeyObject {
  const b = Buffer.from(bytes);
  const pem = b.toString('latin1').includes('-----BEGIN');
  const tries: Parameters<typeof createPrivateKey>[0][] = pem
    ? [{ key: b, format: 'pem', ...(passphrase !== undefined ? { passphrase } : {}) }]
    : [
        { key: b, format: 'der', type: 'pkcs8', ...(passphrase !== undefined ? { passphrase } : {}) },
        { key: b, format: 'der', type: 'pkcs1' },
        { key: b, format: 'der', type: 'sec1' },
      ];
  let last: unknown;
  for (const t of tries) {
    try {
      return createPrivateKey(t);
    } catch (e) {
      last = e;
    }
  }
  throw new VpnError('PROFILE_FILE', `${what}: not a usable private key: ${(last as Error).message}`);
}

/** Whether `key` is the private half of the certificate's public key. */
export function keyMatchesCert(key: KeyObject, cert: X509Certificate): boolean {
  const a = createPublicKey(key).export({ type: 'spki', format: 'der' });
  return Buffer.from(a).equals(cert.publicKey.export({ type: 'spki', format: 'der' }));
}
