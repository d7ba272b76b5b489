/**
 * The least of PKCS#12 (RFC 7292) a client identity needs, since node:crypto reads no .p12: a PFX holding our
 * certificate (certBag, x509Certificate) and its private key (keyBag, or pkcs8ShroudedKeyBag), in plain or
 * password-encrypted SafeContents. Encryption: PBES2 (RFC 8018: PBKDF2 with HMAC-SHA1/SHA-2, AES-CBC or
 * 3DES-CBC) as OpenSSL 3 writes by default, and pbeWithSHAAnd3-KeyTripleDES-CBC with the PKCS#12 key
 * derivation (RFC 7292 appendix B) as older tools write. RC2 (OpenSSL's -legacy certificates) is refused with
 * a clear error: Node 20 has no RC2 without OpenSSL's legacy provider. The MAC is checked first, so a wrong
 * passphrase is named as such.
 */
import { createDecipheriv, createHash, createHmac, createPrivateKey, pbkdf2Sync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { VpnError } from '../../errors.js';

interface Node {
  tag: number;
  /** Content bytes. */
  body: Uint8Array;
}

function readTlv(b: Uint8Array, o: number): { node: Node; next: number } {
  if (o + 2 > b.length) throw new Error('truncated DER');
  const tag = b[o]!;
  let len = b[o + 1]!;
  let c = o + 2;
  if (len === 0x80) throw new Error('indefinite-length BER is not supported');
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n > 4 || c + n > b.length) throw new Error('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[c + i]!;
    c += n;
  }
  if (c + len > b.length) throw new Error('truncated DER');
  return { node: { tag, body: b.subarray(c, c + len) }, next: c + len };
}

function one(b: Uint8Array): Node {
  return readTlv(b, 0).node;
}

function children(n: Node): Node[] {
  const out: Node[] = [];
  for (let o = 0; o < n.body.length; ) {
    const r = readTlv(n.body, o);
    out.push(r.node);
    o = r.next;
  }
  return out;
}

function expect(n: Node | undefined, tag: number, what: string): Node {
  if (!n || n.tag !== tag) throw new Error(`${what}: expected tag 0x${tag.toString(16)}, got ${n ? `0x${n.tag.toString(16)}` : 'nothing'}`);
  return n;
}

function oid(n: Node | undefined): string {
  const b = expect(n, 0x06, 'OID').body;
  const parts: number[] = [];
  let v = 0;
  for (const x of b) {
    v = v * 128 + (x & 0x7f);
    if (!(x & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  const first = parts.shift() ?? 0;
  return [Math.min(2, Math.floor(first / 40)), first - Math.min(2, Math.floor(first / 40)) * 40, ...parts].join('.');
}

function int(n: Node | undefined): number {
  const b = expect(n, 0x02, 'INTEGER').body;
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
}

/** [0] EXPLICIT content. */
function explicit0(n: Node | undefined, what: string): Node {
  return one(expect(n, 0xa0, what).body);
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  pbeSha1TripleDes: '1.2.840.113549.1.12.1.3',
  pbeSha1Rc2_128: '1.2.840.113549.1.12.1.5',
  pbeSha1Rc2_40: '1.2.840.113549.1.12.1.6',
} as const;

const HASHES: Record<string, { name: string; v: number }> = {
  '1.3.14.3.2.26': { name: 'sha1', v: 64 },
  '2.16.840.1.101.3.4.2.4': { name: 'sha224', v: 64 },
  '2.16.840.1.101.3.4.2.1': { name: 'sha256', v: 64 },
  '2.16.840.1.101.3.4.2.2': { name: 'sha384', v: 128 },
  '2.16.840.1.101.3.4.2.3': { name: 'sha512', v: 128 },
};
const HMAC_PRFS: Record<string, string> = {
  '1.2.840.113549.2.7': 'sha1',
  '1.2.840.113549.2.8': 'sha224',
  '1.2.840.113549.2.9': 'sha256',
  '1.2.840.113549.2.10': 'sha384',
  '1.2.840.113549.2.11': 'sha512',
};
const CIPHERS: Record<string, { name: string; keyBytes: number }> = {
  '2.16.840.1.101.3.4.1.2': { name: 'aes-128-cbc', keyBytes: 16 },
  '2.16.840.1.101.3.4.1.22': { name: 'aes-192-cbc', keyBytes: 24 },
  '2.16.840.1.101.3.4.1.42': { name: 'aes-256-cbc', keyBytes: 32 },
  '1.2.840.113549.3.7': { name: 'des-ede3-cbc', keyBytes: 24 },
};

class Pkcs12Error extends Error {}

/** The password as PKCS#12's own derivation takes it: BMPString (UTF-16BE) with a two-byte terminator. */
function bmpPassword(password: string): Buffer {
  const out = Buffer.alloc((password.length + 1) * 2);
  for (let i = 0; i < password.length; i++) out.writeUInt16BE(password.charCodeAt(i), i * 2);
  return out;
}

/** RFC 7292 appendix B.2: `n` bytes of key material for purpose `id` (1 key, 2 IV, 3 MAC key). */
export function pkcs12Kdf(hash: string, v: number, password: Uint8Array, salt: Uint8Array, iterations: number, id: number, n: number): Buffer {
  const fill = (src: Uint8Array) => {
    if (src.length === 0) return Buffer.alloc(0);
    const out = Buffer.alloc(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length]!;
    return out;
  };
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([fill(salt), fill(password)]);
  const out: Buffer[] = [];
  let have = 0;
  while (have < n) {
    let A = createHash(hash).update(D).update(I).digest();
    for (let r = 1; r < iterations; r++) A = createHash(hash).update(A).digest();
    out.push(A);
    have += A.length;
    if (have >= n) break;
    const B = Buffer.alloc(v);
    for (let i = 0; i < v; i++) B[i] = A[i % A.length]!;
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const s = I[j + k]! + B[k]! + carry;
        I[j + k] = s & 0xff;
        carry = s >> 8;
      }
    }
  }
  return Buffer.concat(out).subarray(0, n);
}

function decrypt(alg: Node, data: Uint8Array, password: string): Buffer {
  const [algOid, params] = children(alg);
  const id = oid(algOid);
  let cipher: string;
  let key: Buffer;
  let iv: Buffer;
  if (id === OID.pbes2) {
    const [kdf, scheme] = children(expect(params, 0x30, 'PBES2 parameters'));
    const [kdfOid, kdfParams] = children(expect(kdf, 0x30, 'PBES2 key derivation'));
    if (oid(kdfOid) !== OID.pbkdf2) throw new Pkcs12Error(`key derivation ${oid(kdfOid)} is not PBKDF2`);
    const p = children(expect(kdfParams, 0x30, 'PBKDF2 parameters'));
    const salt = expect(p[0], 0x04, 'PBKDF2 salt (only a specified salt is supported)').body;
    const iterations = int(p[1]);
    let rest = p.slice(2);
    let keyLength: number | undefined;
    if (rest[0]?.tag === 0x02) {
      keyLength = int(rest[0]);
      rest = rest.slice(1);
    }
    const prfOid = rest[0] ? oid(children(expect(rest[0], 0x30, 'PBKDF2 PRF'))[0]) : '1.2.840.113549.2.7';
    const prf = HMAC_PRFS[prfOid];
    if (!prf) throw new Pkcs12Error(`PBKDF2 PRF ${prfOid} is not supported`);
    const [encOid, ivNode] = children(expect(scheme, 0x30, 'PBES2 encryption scheme'));
    const c = CIPHERS[oid(encOid)];
    if (!c) throw new Pkcs12Error(`cipher ${oid(encOid)} is not supported (AES-CBC and 3DES-CBC are)`);
    cipher = c.name;
    key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, keyLength ?? c.keyBytes, prf);
    iv = Buffer.from(expect(ivNode, 0x04, 'IV').body);
  } else if (id === OID.pbeSha1TripleDes) {
    const [salt, iters] = children(expect(params, 0x30, 'PBE parameters'));
    const s = expect(salt, 0x04, 'PBE salt').body;
    const n = int(iters);
    cipher = 'des-ede3-cbc';
    key = pkcs12Kdf('sha1', 64, bmpPassword(password), s, n, 1, 24);
    iv = pkcs12Kdf('sha1', 64, bmpPassword(password), s, n, 2, 8);
  } else if (id === OID.pbeSha1Rc2_40 || id === OID.pbeSha1Rc2_128) {
    throw new Pkcs12Error('it is encrypted with RC2 (openssl pkcs12 -legacy), which Node cannot decrypt; re-export it without -legacy (AES) or with -certpbe PBE-SHA1-3DES');
  } else throw new Pkcs12Error(`encryption ${id} is not supported (PBES2 with AES or 3DES, and pbeWithSHAAnd3-KeyTripleDES-CBC are)`);
  try {
    const d = createDecipheriv(cipher, key, iv);
    return Buffer.concat([d.update(data), d.final()]);
  } catch {
    throw new Pkcs12Error('cannot decrypt it: wrong passphrase?');
  }
}

function checkMac(macData: Node, authSafe: Uint8Array, password: string): void {
  const [digestInfo, saltNode, itersNode] = children(expect(macData, 0x30, 'MacData'));
  const [algId, digest] = children(expect(digestInfo, 0x30, 'DigestInfo'));
  const hOid = oid(children(expect(algId, 0x30, 'MAC algorithm'))[0]);
  const h = HASHES[hOid];
  if (!h) throw new Pkcs12Error(`MAC hash ${hOid} is not supported`);
  const salt = expect(saltNode, 0x04, 'MAC salt').body;
  const iterations = itersNode ? int(itersNode) : 1;
  const expected = expect(digest, 0x04, 'MAC').body;
  const macLen = createHash(h.name).digest().length;
  const key = pkcs12Kdf(h.name, h.v, bmpPassword(password), salt, iterations, 3, macLen);
  const mac = createHmac(h.name, key).update(authSafe).digest();
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw new Pkcs12Error('wrong passphrase (the integrity check failed)');
}

export interface Pkcs12Identity {
  /** The certificates in the container (DER), in their order. */
  certs: Uint8Array[];
  /** The private keys in the container. */
  keys: KeyObject[];
}

/** Reads a PFX (DER) with `password`. Throws VpnError PROFILE_FILE `what: …` for anything it cannot read. */
export function readPkcs12(der: Uint8Array, password: string, what: string): Pkcs12Identity {
  try {
    const [version, authSafeCi, macData] = children(expect(one(der), 0x30, 'PFX'));
    if (int(version) !== 3) throw new Pkcs12Error(`PFX version ${int(version)}, expected 3`);
    const [ctype, content] = children(expect(authSafeCi, 0x30, 'authSafe'));
    if (oid(ctype) !== OID.data) throw new Pkcs12Error('public-key protected PKCS#12 (signed authSafe) is not supported; only password integrity');
    const authSafe = expect(explicit0(content, 'authSafe content'), 0x04, 'authSafe data').body;
    if (macData) checkMac(macData, authSafe, password);
    const certs: Uint8Array[] = [];
    const keys: KeyObject[] = [];
    for (const ci of children(expect(one(authSafe), 0x30, 'AuthenticatedSafe'))) {
      const [t, c] = children(expect(ci, 0x30, 'ContentInfo'));
      let safeContents: Uint8Array;
      if (oid(t) === OID.data) safeContents = expect(explicit0(c, 'data'), 0x04, 'SafeContents').body;
      else if (oid(t) === OID.encryptedData) {
        const [, eci] = children(expect(explicit0(c, 'encryptedData'), 0x30, 'EncryptedData'));
        const [, alg, enc] = children(expect(eci, 0x30, 'EncryptedContentInfo'));
        if (!enc || (enc.tag !== 0x80 && enc.tag !== 0xa0)) throw new Pkcs12Error('encrypted content missing');
        const bytes = enc.tag === 0x80 ? enc.body : Buffer.concat(children(enc).map((p) => expect(p, 0x04, 'encrypted content').body));
        safeContents = decrypt(expect(alg, 0x30, 'encryption algorithm'), bytes, password);
      } else continue; // enveloped data: not for us
      for (const bag of children(expect(one(safeContents), 0x30, 'SafeContents'))) {
        const [bagId, value] = children(expect(bag, 0x30, 'SafeBag'));
        const id = oid(bagId);
        const v = explicit0(value, 'bag value');
        if (id === OID.certBag) {
          const [certId, certValue] = children(expect(v, 0x30, 'CertBag'));
          if (oid(certId) === OID.x509Certificate) certs.push(new Uint8Array(expect(explicit0(certValue, 'certValue'), 0x04, 'certificate').body));
        } else if (id === OID.keyBag) {
          keys.push(createPrivateKey({ key: Buffer.from(bagDer(v)), format: 'der', type: 'pkcs8' }));
        } else if (id === OID.shroudedKeyBag) {
          const [alg, enc] = children(expect(v, 0x30, 'EncryptedPrivateKeyInfo'));
          const plain = decrypt(expect(alg, 0x30, 'key encryption algorithm'), expect(enc, 0x04, 'encrypted key').body, password);
          keys.push(createPrivateKey({ key: plain, format: 'der', type: 'pkcs8' }));
        }
      }
    }
    return { certs, keys };
  } catch (e) {
    throw new VpnError('PROFILE_FILE', `${what}: cannot read the PKCS#12 container: ${(e as Error).message}`);
  }
}

/** The DER of a node again (tag, length, body). */
function bagDer(n: Node): Uint8Array {
  const len = n.body.length;
  const lenBytes = len < 0x80 ? [len] : len < 0x100 ? [0x81, len] : len < 0x10000 ? [0x82, len >> 8, len & 0xff] : [0x83, len >> 16, (len >> 8) & 0xff, len & 0xff];
  return Buffer.concat([Buffer.from([n.tag, ...lenBytes]), n.body]);
}
