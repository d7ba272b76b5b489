/**
 * OpenVPN data-channel key material (openvpn.md §3.5, §3.6, §7):
 *  - key2 (256 bytes) from the key-method-2 randoms by the OpenVPN TLS1-PRF method, or from the TLS
 *    exporter (EKM, computed by the caller with tlsSocket.exportKeyingMaterial(256, EKM_LABEL) and NO context);
 *  - slicing key2 into the four data-channel keys by key direction;
 *  - rejection of all-zero keys (2.6 check_key).
 */
import { VpnError } from '../errors.js';
import { tls1Prf } from '../crypto/prf.js';
import { dataCipher, digestSize } from './algorithms.js';

export const KEY2_LENGTH = 256;
export const MASTER_SECRET_LENGTH = 48;
export const PRE_MASTER_LENGTH = 48;
export const RANDOM_LENGTH = 32;
export const SESSION_ID_LENGTH = 8;
/** One `struct key` slice: cipher[64] or hmac[64]. */
export const KEY_SLICE_LENGTH = 64;
/** Label for the TLS keying-material exporter. Pass no context argument (not an empty one). */
export const EKM_LABEL = 'EXPORTER-OpenVPN-datakeys';
export const EKM_LENGTH = 256;

const MASTER_LABEL = Buffer.from('OpenVPN master secret', 'latin1');
const EXPANSION_LABEL = Buffer.from('OpenVPN key expansion', 'latin1');

/** The client's key source (it alone sends pre_master). */
export interface ClientKeySource {
  preMaster: Uint8Array;
  random1: Uint8Array;
  random2: Uint8Array;
}
/** The server's key source. */
export interface ServerKeySource {
  random1: Uint8Array;
  random2: Uint8Array;
}

function need(b: Uint8Array, len: number, what: string): void {
  if (b.length !== len) throw new VpnError('INTERNAL', `${what} must be ${len} bytes, got ${b.length}`);
}

/** master[48] = PRF(pre_master, "OpenVPN master secret" || client.random1 || server.random1). */
export function openvpnMasterSecret(client: ClientKeySource, server: ServerKeySource): Buffer {
  need(client.preMaster, PRE_MASTER_LENGTH, 'pre_master');
  need(client.random1, RANDOM_LENGTH, 'client random1');
  need(server.random1, RANDOM_LENGTH, 'server random1');
  const seed = Buffer.concat([MASTER_LABEL, client.random1, server.random1]);
  return tls1Prf(client.preMaster, seed, MASTER_SECRET_LENGTH);
}

/**
 * key2[256] by the OpenVPN PRF method:
 *   PRF(master, "OpenVPN key expansion" || client.random2 || server.random2 || client_sid || server_sid).
 * Session ids are the 8-byte control-channel session ids (client's first).
 */
export function deriveKey2Prf(
  client: ClientKeySource,
  server: ServerKeySource,
  clientSessionId: Uint8Array,
  serverSessionId: Uint8Array,
): Buffer {
  need(client.random2, RANDOM_LENGTH, 'client random2');
  need(server.random2, RANDOM_LENGTH, 'server random2');
  need(clientSessionId, SESSION_ID_LENGTH, 'client session id');
  need(serverSessionId, SESSION_ID_LENGTH, 'server session id');
  const master = openvpnMasterSecret(client, server);
  const seed = Buffer.concat([EXPANSION_LABEL, client.random2, server.random2, clientSessionId, serverSessionId]);
  const key2 = tls1Prf(master, seed, KEY2_LENGTH);
  master.fill(0);
  return key2;
}

/** key2 from 256 bytes of TLS exporter output (copied). */
export function key2FromEkm(ekm: Uint8Array): Buffer {
  need(ekm, EKM_LENGTH, 'EKM output');
  return Buffer.from(ekm);
}

/**
 * Key direction (openvpn.md §2.1): 'normal' = TLS client and `key-direction 0`/`secret f 0`,
 * 'inverse' = TLS server and direction 1, 'bidirectional' = no direction (both ways keys[0]).
 */
export type KeyDirection = 'normal' | 'inverse' | 'bidirectional';

/** The four 64-byte slices a key state uses; consumers take the first keyLength / digest-size bytes. */
export interface DataKeys {
  /** Cipher key for what we send. */
  encryptCipher: Buffer;
  /** HMAC key for what we send; for AEAD its first 8 bytes are the implicit IV. */
  encryptHmac: Buffer;
  /** Cipher key for what we receive. */
  decryptCipher: Buffer;
  /** HMAC key (or AEAD implicit IV in its first 8 bytes) for what we receive. */
  decryptHmac: Buffer;
}

/** Slices key2 (copies). Client: encrypt K[0..64)/K[64..128), decrypt K[128..192)/K[192..256). */
export function sliceKey2(key2: Uint8Array, direction: KeyDirection = 'normal'): DataKeys {
  need(key2, KEY2_LENGTH, 'key2');
  const part = (i: number) => Buffer.from(key2.subarray(i * KEY_SLICE_LENGTH, (i + 1) * KEY_SLICE_LENGTH));
  const [enc, dec] = direction === 'normal' ? [0, 1] : direction === 'inverse' ? [1, 0] : [0, 0];
  return {
    encryptCipher: part(enc * 2),
    encryptHmac: part(enc * 2 + 1),
    decryptCipher: part(dec * 2),
    decryptHmac: part(dec * 2 + 1),
  };
}

function allZero(b: Uint8Array, len: number): boolean {
  for (let i = 0; i < len; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Rejects keys whose used part is all zero (as OpenVPN's check_key does): the cipher key for any
 * cipher, the HMAC key for CBC and `cipher none` with an `auth` digest. Throws VpnError PROTOCOL.
 */
export function checkDataKeys(keys: DataKeys, cipher: string, auth: string): void {
  const c = dataCipher(cipher);
  const hlen = c.kind === 'aead' ? 0 : digestSize(auth);
  const parts: [Buffer, number, string][] = [
    [keys.encryptCipher, c.keyLength, 'encrypt cipher'],
    [keys.decryptCipher, c.keyLength, 'decrypt cipher'],
    [keys.encryptHmac, hlen, 'encrypt HMAC'],
    [keys.decryptHmac, hlen, 'decrypt HMAC'],
  ];
  for (const [b, len, what] of parts) {
    if (len > b.length) throw new VpnError('INTERNAL', `${what} key slice is ${b.length} bytes, need ${len}`);
    if (len > 0 && allZero(b, len)) throw new VpnError('PROTOCOL', `${what} key is all zero; refusing to use it`);
  }
}

/** Slice + check for one data-channel configuration (client side by default). */
export function dataKeysFromKey2(
  key2: Uint8Array,
  cipher: string,
  auth: string,
  direction: KeyDirection = 'normal',
): DataKeys {
  const keys = sliceKey2(key2, direction);
  checkDataKeys(keys, cipher, auth);
  return keys;
}
