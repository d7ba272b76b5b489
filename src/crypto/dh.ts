/**
 * IKEv2 key exchange, transform type 4 (ipsec.md §4.4.2, §5.1).
 *
 *   14, 15, 16  MODP 2048/3072/4096 (RFC 3526), generator 2. KE data = g^x mod p and the shared secret
 *               g^xy mod p, both big-endian and left-padded with zeros to the prime length (RFC 7296 §3.4,
 *               §2.14). A peer value y must satisfy 1 < y < p-1.
 *   19, 20, 21  ECP P-256/P-384/P-521 (RFC 5903 §7). KE data = x || y, each coordinate padded to the
 *               field size, without the 0x04 point-format octet; the shared secret is the x coordinate
 *               of the shared point only. The peer point must lie on the curve.
 *   31          Curve25519 (RFC 8031): 32-byte X25519 public value and secret; an all-zero secret (peer
 *               sent a low-order point) is rejected.
 *
 * Node's crypto does all arithmetic. Bad peer values throw VpnError('PROTOCOL'); an unsupported group
 * number throws VpnError('PROTOCOL') too (check isSupportedGroup first when the group comes from config).
 */
import {
  createDiffieHellman,
  getDiffieHellman,
  createECDH,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { VpnError } from '../errors.js';

/** IKEv2 Transform Type 4 IDs implemented here. */
export type KeyExchangeGroup = 14 | 15 | 16 | 19 | 20 | 21 | 31;

/** All implemented groups, ascending by ID. */
export const SUPPORTED_GROUPS: readonly KeyExchangeGroup[] = Object.freeze([14, 15, 16, 19, 20, 21, 31] as const);

/** One side of a key exchange: send `publicValue` in the KE payload, feed the peer's KE data to computeSecret. */
export interface KeyExchange {
  readonly group: KeyExchangeGroup;
  /** Our KE payload data, exactly keyExchangeLength(group) bytes. */
  readonly publicValue: Uint8Array;
  /** Validates the peer's KE data and returns g^ir (sharedSecretLength(group) bytes). */
  computeSecret(peer: Uint8Array): Uint8Array;
}

export interface KeyExchangeOptions {
  /**
   * A fixed private value (big-endian; for X25519 the raw 32-byte scalar) instead of a random one.
   * For known-answer tests only.
   */
  privateKey?: Uint8Array;
}

interface GroupInfo {
  readonly name: string;
  readonly kind: 'modp' | 'ecp' | 'x25519';
  /** KE data bytes. */
  readonly keLength: number;
  /** g^ir bytes. */
  readonly secretLength: number;
}

const GROUPS: Readonly<Record<KeyExchangeGroup, GroupInfo>> = Object.freeze({
  14: { name: 'MODP-2048', kind: 'modp', keLength: 256, secretLength: 256 },
  15: { name: 'MODP-3072', kind: 'modp', keLength: 384, secretLength: 384 },
  16: { name: 'MODP-4096', kind: 'modp', keLength: 512, secretLength: 512 },
  19: { name: 'ECP-256', kind: 'ecp', keLength: 64, secretLength: 32 },
  20: { name: 'ECP-384', kind: 'ecp', keLength: 96, secretLength: 48 },
  21: { name: 'ECP-521', kind: 'ecp', keLength: 132, secretLength: 66 },
  31: { name: 'Curve25519', kind: 'x25519', keLength: 32, secretLength: 32 },
});

/** True for the transform IDs this module implements. */
export function isSupportedGroup(id: number): id is KeyExchangeGroup {
  return Object.prototype.hasOwnProperty.call(GROUPS, id);
}

function info(group: number): GroupInfo {
  if (!isSupportedGroup(group)) {
    throw new VpnError(
      'PROTOCOL',
      `unsupported key exchange group ${group}; supported: ${SUPPORTED_GROUPS.map((g) => `${g} (${GROUPS[g].name})`).join(', ')}`,
    );
  }
  return GROUPS[group];
}

/** Length of the KE payload's Key Exchange Data for `group` (e.g. 256 for 14, 64 for 19, 32 for 31). */
export function keyExchangeLength(group: number): number {
  return info(group).keLength;
}

/** Length of the shared secret g^ir for `group` (e.g. 256 for 14, 32 for 19). */
export function sharedSecretLength(group: number): number {
  return info(group).secretLength;
}

/** IANA-style name of a group ('MODP-2048', 'ECP-256', 'Curve25519'). */
export function groupName(group: number): string {
  return info(group).name;
}

// ---------------------------------------------------------------------------------------------------------
// helpers

function leftPad(b: Buffer, length: number): Buffer {
  if (b.length === length) return b;
  if (b.length > length) throw new VpnError('INTERNAL', `key exchange value of ${b.length} bytes exceeds ${length}`);
  const out = Buffer.alloc(length);
  b.copy(out, length - b.length);
  return out;
}

function toBigInt(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt('0x' + Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex'));
}

function checkPeerLength(group: KeyExchangeGroup, peer: Uint8Array): void {
  if (!(peer instanceof Uint8Array)) throw new VpnError('PROTOCOL', `${GROUPS[group].name}: peer KE data is not bytes`);
  const want = GROUPS[group].keLength;
  if (peer.length !== want) {
    throw new VpnError('PROTOCOL', `${GROUPS[group].name}: peer KE data is ${peer.length} bytes, expected ${want}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// MODP (RFC 3526). Node ships these very groups ('modp14' … 'modp16'); we take their primes from it.

const NODE_MODP: Record<14 | 15 | 16, string> = { 14: 'modp14', 15: 'modp15', 16: 'modp16' };

interface ModpParams {
  readonly prime: Buffer;
  readonly p: bigint;
}
const modpCache = new Map<KeyExchangeGroup, ModpParams>();

function modpParams(group: 14 | 15 | 16): ModpParams {
  let m = modpCache.get(group);
  if (!m) {
    const prime = getDiffieHellman(NODE_MODP[group]).getPrime();
    m = { prime, p: toBigInt(prime) };
    modpCache.set(group, m);
  }
  return m;
}

/** The RFC 3526 prime of a MODP group (a copy), for tests and diagnostics. */
export function modpPrime(group: 14 | 15 | 16): Buffer {
  return Buffer.from(modpParams(group).prime);
}

function modpExchange(group: 14 | 15 | 16, privateKey: Uint8Array | undefined): KeyExchange {
  const { prime, p } = modpParams(group);
  const len = prime.length;
  const name = GROUPS[group].name;
  const dh = createDiffieHellman(prime, 2);
  if (privateKey) {
    const x = toBigInt(privateKey);
    if (x < 1n || x >= p - 1n) throw new RangeError(`${name}: private value out of range`);
    dh.setPrivateKey(Buffer.from(privateKey));
  }
  dh.generateKeys();
  const publicValue = leftPad(dh.getPublicKey(), len);
  return {
    group,
    publicValue,
    computeSecret(peer: Uint8Array): Uint8Array {
      checkPeerLength(group, peer);
      const y = toBigInt(peer);
      if (y <= 1n || y >= p - 1n) throw new VpnError('PROTOCOL', `${name}: peer public value not in (1, p-1)`);
      let s: Buffer;
      try {
        s = dh.computeSecret(Buffer.from(peer.buffer, peer.byteOffset, peer.byteLength));
      } catch (err) {
        throw new VpnError('PROTOCOL', `${name}: peer public value rejected (${(err as Error).message})`, { cause: err });
      }
      return leftPad(s, len);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// ECP (RFC 5903). Field primes: FIPS 186-4 D.1.2 (the generalized-Mersenne forms).

interface EcpParams {
  readonly curve: 'prime256v1' | 'secp384r1' | 'secp521r1';
  readonly size: number;
  readonly p: bigint;
}
const ECP: Readonly<Record<19 | 20 | 21, EcpParams>> = Object.freeze({
  19: { curve: 'prime256v1', size: 32, p: 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n },
  20: { curve: 'secp384r1', size: 48, p: 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n },
  21: { curve: 'secp521r1', size: 66, p: 2n ** 521n - 1n },
});

function ecpExchange(group: 19 | 20 | 21, privateKey: Uint8Array | undefined): KeyExchange {
  const { curve, size, p } = ECP[group];
  const name = GROUPS[group].name;
  const ecdh = createECDH(curve);
  if (privateKey) {
    if (privateKey.length > size) throw new RangeError(`${name}: private value longer than ${size} bytes`);
    try {
      ecdh.setPrivateKey(Buffer.from(privateKey));
    } catch (err) {
      throw new RangeError(`${name}: invalid private value (${(err as Error).message})`);
    }
  } else {
    ecdh.generateKeys();
  }
  const uncompressed = ecdh.getPublicKey(); // 0x04 || x || y, coordinates already field-sized
  if (uncompressed.length !== 1 + 2 * size || uncompressed[0] !== 0x04) {
    throw new VpnError('INTERNAL', `${name}: unexpected public key encoding from node:crypto`);
  }
  const publicValue = Buffer.from(uncompressed.subarray(1));
  return {
    group,
    publicValue,
    computeSecret(peer: Uint8Array): Uint8Array {
      checkPeerLength(group, peer);
      const x = toBigInt(peer.subarray(0, size));
      const y = toBigInt(peer.subarray(size));
      if (x >= p || y >= p) throw new VpnError('PROTOCOL', `${name}: peer point coordinate not below the field prime`);
      const point = Buffer.alloc(1 + 2 * size);
      point[0] = 0x04;
      point.set(peer, 1);
      let s: Buffer;
      try {
        // OpenSSL decodes the point and rejects it unless it lies on the curve.
        s = ecdh.computeSecret(point);
      } catch (err) {
        throw new VpnError('PROTOCOL', `${name}: peer point is not on the curve`, { cause: err });
      }
      return leftPad(s, size);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Curve25519 (RFC 8031, RFC 7748). Raw keys travel through fixed DER wrappers (RFC 8410):
//   SubjectPublicKeyInfo = 30 2a 30 05 06 03 2b 65 6e 03 21 00 || u(32)
//   PKCS#8 PrivateKeyInfo = 30 2e 02 01 00 30 05 06 03 2b 65 6e 04 22 04 20 || k(32)

const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

function x25519Exchange(privateKey: Uint8Array | undefined): KeyExchange {
  const group = 31 as const;
  let priv: KeyObject;
  if (privateKey) {
    if (privateKey.length !== 32) throw new RangeError('Curve25519: private value must be 32 bytes');
    priv = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, privateKey]), format: 'der', type: 'pkcs8' });
  } else {
    priv = generateKeyPairSync('x25519').privateKey;
  }
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  const publicValue = Buffer.from(spki.subarray(spki.length - 32));
  return {
    group,
    publicValue,
    computeSecret(peer: Uint8Array): Uint8Array {
      checkPeerLength(group, peer);
      let s: Buffer;
      try {
        const pub = createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, peer]), format: 'der', type: 'spki' });
        s = diffieHellman({ privateKey: priv, publicKey: pub });
      } catch (err) {
        // OpenSSL refuses to derive an all-zero secret itself; report it the same way.
        throw new VpnError('PROTOCOL', `Curve25519: peer public value rejected (${(err as Error).message})`, { cause: err });
      }
      let acc = 0;
      for (const b of s) acc |= b;
      if (acc === 0) throw new VpnError('PROTOCOL', 'Curve25519: all-zero shared secret (low-order peer value)');
      return leftPad(s, 32);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------

/**
 * Starts a key exchange for `group` with a fresh random private value (or `options.privateKey`, for
 * known-answer tests). Throws VpnError('PROTOCOL') for an unsupported group.
 */
export function createKeyExchange(group: number, options: KeyExchangeOptions = {}): KeyExchange {
  info(group); // throws for an unsupported group
  const g = group as KeyExchangeGroup;
  switch (g) {
    case 14:
    case 15:
    case 16:
      return modpExchange(g, options.privateKey);
    case 19:
    case 20:
    case 21:
      return ecpExchange(g, options.privateKey);
    case 31:
      return x25519Exchange(options.privateKey);
  }
}
