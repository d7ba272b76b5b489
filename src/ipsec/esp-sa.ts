/**
 * ESP security associations for tunnel mode (RFC 4303), sans-I/O: an OutboundSa turns an inner IPv4 or IPv6
 * packet into an ESP packet (SPI … ICV, to be sent in UDP to port 4500, RFC 3948), an InboundSa turns an ESP
 * packet back into the inner packet or a counted drop. Algorithms come from the crypto registry through the
 * suite (src/crypto/ipsec-algorithms.ts):
 *
 *  - AES-GCM (RFC 4106) and ChaCha20-Poly1305 (RFC 7634): nonce = 4-byte salt (the end of the key material)
 *    || 8-byte explicit IV; the IV is the 64-bit sequence number, unique per key. AAD = SPI || seq, or with
 *    ESN SPI || seq-high || seq-low (RFC 4106 §5).
 *  - AES-CBC (RFC 3602) with a random IV, or NULL (RFC 2410), with HMAC-SHA1-96 / SHA2 (RFC 2404, RFC 4868):
 *    ICV = truncated HMAC over SPI || seq || IV || ciphertext, with ESN the high 32 bits appended to the ICV
 *    input but not sent (RFC 4303 §3.3.2.1 / §2.2.1). The ICV is checked in constant time before decrypting.
 *
 * Outbound sequence numbers start at 1 and never wrap (RFC 4303 §3.3.3): at 2^32-1 (no ESN) seal() throws, so
 * the owner rekeys or stops. Inbound anti-replay (RFC 4303 §3.4.3): the window is checked before the ICV and
 * updated only once the ICV verified. Padding is 1, 2, 3… to the block size and 4-byte alignment (checked on
 * receive), next header 4 (IPv4) or 41 (IPv6, chosen by the inner packet's version); 59 (dummy, §2.6) is dropped silently; TFC padding (§2.7) is trimmed to the
 * inner Total Length; the inner source must lie in the remote traffic selectors and the destination must be
 * our address. Each packet costs one output buffer on seal (plus node:crypto's own) and one plaintext buffer
 * on open.
 */
import { createHmac, randomFillSync, timingSafeEqual } from 'node:crypto';
import { aeadOpenRaw, aeadSealInto } from '../crypto/aead.js';
import { cbcDecrypt, cbcEncryptInto, hmacInto, hmacVerify } from '../crypto/cbc-hmac.js';
import type { EspSuite } from '../crypto/ipsec-algorithms.js';
import { KeyLifetime, type LifetimePolicy } from '../crypto/lifetime.js';
import { ReplayWindow } from '../crypto/replay.js';
import { VpnError } from '../errors.js';
import { ESP_HEADER_LENGTH } from '../wire/esp.js';
import { IPV4_MIN_HEADER, parseIpv4Address, readU32, writeU32 } from '../wire/ipv4.js';
import { IPV6_HEADER_LENGTH, ipv6InPrefix, isIpv6Address, parseIpv6Address } from '../wire/ipv6.js';

const TWO_32 = 0x1_0000_0000;
/** RFC 4303 §2.6 Next Header values. */
const NEXT_HEADER_IPV4 = 4;
const NEXT_HEADER_IPV6 = 41;
const NEXT_HEADER_NONE = 59;
/** Outer IPv4 header + UDP header (ESP in UDP, RFC 3948). */
const OUTER_IPV4_UDP = 20 + 8;
/** Pad Length + Next Header. */
const TRAILER = 2;

export const DEFAULT_ESP_REPLAY_WINDOW = 128;
export const MIN_ESP_REPLAY_WINDOW = 32;
export const MAX_ESP_REPLAY_WINDOW = 4096;

export interface EspSaParams {
  spi: number;
  suite: EspSuite;
  /** Cipher key then salt (RFC 4106 / 7634 KEYMAT order); empty for NULL. */
  encKey: Uint8Array;
  /** HMAC key; empty for AEAD suites. */
  integKey: Uint8Array;
  /** Extended (64-bit) sequence numbers. */
  esn?: boolean;
  /** Inbound only: anti-replay window, 32..4096, default 128. */
  replayWindow?: number;
  lifetime?: LifetimePolicy;
  /** ms, the lifetime's start (default Date.now()). */
  now?: number;
}

export type EspDrop =
  | 'malformed'
  | 'unknown-spi'
  | 'replayed'
  | 'too-old'
  | 'bad-icv'
  | 'bad-padding'
  | 'bad-next-header'
  | 'dummy'
  | 'outside-selector'
  | 'not-for-us';

export const ESP_DROPS: readonly EspDrop[] = ['malformed', 'unknown-spi', 'replayed', 'too-old', 'bad-icv', 'bad-padding', 'bad-next-header', 'dummy', 'outside-selector', 'not-for-us'];

export interface EspSelectors {
  /** Traffic selectors of the remote side (IPv4 or IPv6): the inner source must fall in one of its family. */
  remote: readonly { address: string; prefix: number }[];
  /** Our IPv4 address inside the tunnel: an inner IPv4 destination must equal it. */
  local: string;
  /** Our IPv6 address inside the tunnel: an inner IPv6 destination must equal it; without it IPv6 is 'not-for-us'. */
  local6?: string;
}

const roundUp = (n: number, m: number) => Math.ceil(n / m) * m;
const hex32 = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** Bytes ESP adds to an inner packet of `innerLength` bytes: header, IV, padding, trailer, ICV (no UDP/IP). */
export function espOverhead(suite: EspSuite, innerLength: number): number {
  return ESP_HEADER_LENGTH + suite.ivBytes + roundUp(innerLength + TRAILER, suite.blockBytes) - innerLength + suite.icvBytes;
}

/**
 * The largest inner packet whose ESP-in-UDP datagram fits `outerMtu` (outer IPv4 20 + UDP 8 + ESP overhead),
 * for the link MTU and the TCP MSS. Exact for every length up to it (padding grows monotonically).
 */
export function innerMtu(suite: EspSuite, outerMtu: number): number {
  const room = outerMtu - OUTER_IPV4_UDP - ESP_HEADER_LENGTH - suite.ivBytes - suite.icvBytes;
  return Math.max(0, Math.floor(room / suite.blockBytes) * suite.blockBytes - TRAILER);
}

/** The keys of one SA, split out of the key material, and the per-packet transforms. */
class EspCrypto {
  readonly ivLen: number;
  readonly icvLen: number;
  private readonly key: Buffer;
  private readonly integKey: Buffer;
  /** salt || explicit IV (AEAD); the salt part is fixed. */
  private readonly nonce = Buffer.alloc(12);
  private readonly aad = Buffer.alloc(12);
  private readonly seqHi = Buffer.alloc(4);

  constructor(
    readonly suite: EspSuite,
    encKey: Uint8Array,
    integKey: Uint8Array,
  ) {
    if (!suite.aeadAlgorithm && !suite.digest) throw new RangeError(`ESP suite ${suite.name} has neither an AEAD nor an integrity algorithm`);
    const encLen = suite.encKeyBytes + suite.saltBytes;
    if (encKey.length !== encLen) throw new RangeError(`${suite.name}: the encryption key material must be ${encLen} bytes, got ${encKey.length}`);
    if (integKey.length !== suite.integKeyBytes) throw new RangeError(`${suite.name}: the integrity key must be ${suite.integKeyBytes} bytes, got ${integKey.length}`);
    this.key = Buffer.from(encKey.subarray(0, suite.encKeyBytes));
    this.nonce.set(encKey.subarray(suite.encKeyBytes), 0);
    this.integKey = Buffer.from(integKey);
    this.ivLen = suite.ivBytes;
    this.icvLen = suite.icvBytes;
  }

  /** Whether `n` bytes can be the ciphertext (CBC: whole blocks, at least one). */
  ciphertextLengthOk(n: number): boolean {
    const c = this.suite.cbc;
    return c ? n >= c.blockSize && n % c.blockSize === 0 : n >= 0;
  }

  /** SPI || seq, or SPI || seq-high || seq-low with ESN (RFC 4106 §5, RFC 7634 §2.1), from the packet header. */
  private aadFor(esp: Uint8Array, seqHi: number | undefined): Buffer {
    this.aad.set(esp.subarray(0, 4), 0);
    if (seqHi === undefined) {
      this.aad.set(esp.subarray(4, 8), 4);
      return this.aad.subarray(0, 8);
    }
    writeU32(this.aad, 4, seqHi);
    this.aad.set(esp.subarray(4, 8), 8);
    return this.aad;
  }

  /**
   * `out` = header | IV | plaintext of `plainLen` bytes | room for the ICV, header and IV already written:
   * encrypts the plaintext in place and writes the ICV.
   */
  sealInPlace(out: Buffer, plainLen: number, seqHi: number | undefined): void {
    const s = this.suite;
    const ctOff = ESP_HEADER_LENGTH + this.ivLen;
    const icvOff = ctOff + plainLen;
    const plain = out.subarray(ctOff, icvOff);
    if (s.aeadAlgorithm) {
      this.nonce.set(out.subarray(ESP_HEADER_LENGTH, ctOff), 4);
      aeadSealInto(s.aeadAlgorithm, this.key, this.nonce, this.aadFor(out, seqHi), plain, out, ctOff, icvOff, this.icvLen);
      return;
    }
    if (s.cbc) cbcEncryptInto(s.cbc, this.key, out.subarray(ESP_HEADER_LENGTH, ctOff), null, plain, out, ctOff, false);
    if (seqHi === undefined) {
      hmacInto(s.digest!, this.integKey, out.subarray(0, icvOff), out, icvOff, this.icvLen);
    } else {
      // ESN: the high half follows the packet in the ICV input; it sits where the ICV goes until the ICV overwrites it
      writeU32(out, icvOff, seqHi);
      hmacInto(s.digest!, this.integKey, out.subarray(0, icvOff + 4), out, icvOff, this.icvLen);
    }
  }

  /**
   * Verifies and decrypts a packet whose lengths were checked (ciphertextLengthOk). Returns the plaintext
   * (payload, padding, Pad Length, Next Header) as a fresh buffer, or null when the ICV does not verify.
   */
  open(esp: Uint8Array, seqHi: number | undefined): Buffer | null {
    const s = this.suite;
    const ctOff = ESP_HEADER_LENGTH + this.ivLen;
    const icvOff = esp.length - this.icvLen;
    const ct = esp.subarray(ctOff, icvOff);
    if (s.aeadAlgorithm) {
      this.nonce.set(esp.subarray(ESP_HEADER_LENGTH, ctOff), 4);
      return aeadOpenRaw(s.aeadAlgorithm, this.key, this.nonce, this.aadFor(esp, seqHi), ct, esp.subarray(icvOff));
    }
    if (!this.icvOk(esp, icvOff, seqHi)) return null;
    if (s.cbc) return cbcDecrypt(s.cbc, this.key, esp.subarray(ESP_HEADER_LENGTH, ctOff), ct, false);
    return Buffer.from(ct); // NULL: a copy, so what is handed on never aliases the datagram
  }

  /** Constant-time ICV check (non-AEAD suites). */
  private icvOk(esp: Uint8Array, icvOff: number, seqHi: number | undefined): boolean {
    const d = this.suite.digest!;
    const data = esp.subarray(0, icvOff);
    const tag = esp.subarray(icvOff);
    if (seqHi === undefined) return hmacVerify(d, this.integKey, data, tag);
    writeU32(this.seqHi, 0, seqHi);
    const mac = createHmac(d.nodeName, this.integKey).update(data).update(this.seqHi).digest();
    return timingSafeEqual(mac.subarray(0, tag.length), tag);
  }
}

function checkSpi(spi: number): void {
  if (!Number.isInteger(spi) || spi < 1 || spi > 0xffffffff) throw new RangeError(`ESP SPI ${spi} out of range 1..0xffffffff`);
}

/** The sending half of an SA. */
export class OutboundSa {
  readonly spi: number;
  readonly suite: EspSuite;
  readonly esn: boolean;
  readonly lifetime: KeyLifetime;
  private readonly crypto: EspCrypto;
  private readonly maxSeq: number;
  private seq_: number;

  /** `lastSeq`: the last sequence number already used (default 0; for tests, or an SA taken over mid-life). */
  constructor(p: EspSaParams & { lastSeq?: number }) {
    checkSpi(p.spi);
    this.spi = p.spi;
    this.suite = p.suite;
    this.esn = p.esn ?? false;
    this.crypto = new EspCrypto(p.suite, p.encKey, p.integKey);
    // ESN counters are held in a JS number: exact up to 2^53, centuries at any packet rate
    this.maxSeq = this.esn ? Number.MAX_SAFE_INTEGER : 0xffffffff;
    const last = p.lastSeq ?? 0;
    if (!Number.isInteger(last) || last < 0 || last > this.maxSeq) throw new RangeError(`lastSeq ${last} out of range 0..${this.maxSeq}`);
    this.seq_ = last;
    this.lifetime = new KeyLifetime(p.lifetime ?? {}, p.now ?? Date.now());
  }

  /** The last sequence number used (0 before the first packet). */
  get seq(): number {
    return this.seq_;
  }

  /** Bytes ESP adds to an inner packet of `innerLength` bytes (header, IV, padding, trailer, ICV). */
  overhead(innerLength: number): number {
    return espOverhead(this.suite, innerLength);
  }

  /**
   * Encrypts one inner IPv4 packet into an ESP packet (SPI … ICV, no UDP header), a fresh buffer the caller
   * owns. Throws VpnError('PROTOCOL') once the sequence numbers are used up (2^32-1 without ESN): rekey or
   * stop. Counts the lifetime (1 packet, the inner bytes).
   */
  seal(inner: Uint8Array): Uint8Array {
    if (this.seq_ >= this.maxSeq) {
      throw new VpnError('PROTOCOL', `ESP SA ${hex32(this.spi)}: sequence numbers used up at ${this.seq_} (they never wrap); rekey or stop`);
    }
    const seq = ++this.seq_;
    const hi = Math.floor(seq / TWO_32);
    const lo = seq - hi * TWO_32;
    const s = this.suite;
    const plainLen = roundUp(inner.length + TRAILER, s.blockBytes);
    const padLen = plainLen - inner.length - TRAILER;
    const ctOff = ESP_HEADER_LENGTH + s.ivBytes;
    const out = Buffer.allocUnsafe(ctOff + plainLen + s.icvBytes);
    writeU32(out, 0, this.spi);
    writeU32(out, 4, lo);
    if (s.aeadAlgorithm) {
      // RFC 4106 §3.1: the IV must not repeat under a key; the 64-bit sequence number never does
      writeU32(out, ESP_HEADER_LENGTH, hi);
      writeU32(out, ESP_HEADER_LENGTH + 4, lo);
    } else if (s.ivBytes > 0) {
      randomFillSync(out, ESP_HEADER_LENGTH, s.ivBytes); // RFC 3602 §2.1: unpredictable
    }
    out.set(inner, ctOff);
    let o = ctOff + inner.length;
    for (let i = 1; i <= padLen; i++) out[o++] = i;
    out[o++] = padLen;
    out[o] = inner.length > 0 && inner[0]! >> 4 === 6 ? NEXT_HEADER_IPV6 : NEXT_HEADER_IPV4;
    this.crypto.sealInPlace(out, plainLen, this.esn ? hi : undefined);
    this.lifetime.count(1, inner.length);
    return out;
  }
}

interface Cidr4 {
  readonly network: number;
  readonly mask: number;
}

/** The receiving half of an SA. */
export class InboundSa {
  readonly spi: number;
  readonly suite: EspSuite;
  readonly esn: boolean;
  readonly lifetime: KeyLifetime;
  /** Dropped packets by reason (counted here; the caller need not count them again). */
  readonly drops: Record<EspDrop, number>;
  private readonly crypto: EspCrypto;
  private readonly window: ReplayWindow;
  private readonly remote: readonly Cidr4[] | undefined;
  private readonly local: number | undefined;
  private readonly remote6: readonly Cidr6[] = [];
  private readonly local6: Uint8Array | undefined;

  /**
   * `lastSeq`: the highest sequence number already received (default 0, none), as if a packet with it had been
   * accepted: the window starts there, so it and anything a window or more below it are refused, and with ESN
   * the high half of the packets that follow is inferred from it (like the kernel's `replay-seq` /
   * `replay-seq-hi`). For tests, or an SA taken over mid-life; a fresh ESN SA cannot take a first packet from
   * the end of a subspace without it.
   */
  constructor(p: EspSaParams & { selectors?: EspSelectors; lastSeq?: number }) {
    checkSpi(p.spi);
    this.spi = p.spi;
    this.suite = p.suite;
    this.esn = p.esn ?? false;
    this.crypto = new EspCrypto(p.suite, p.encKey, p.integKey);
    const w = p.replayWindow ?? DEFAULT_ESP_REPLAY_WINDOW;
    if (!Number.isInteger(w) || w < MIN_ESP_REPLAY_WINDOW || w > MAX_ESP_REPLAY_WINDOW) {
      throw new RangeError(`ESP replay window ${w} out of range ${MIN_ESP_REPLAY_WINDOW}..${MAX_ESP_REPLAY_WINDOW}`);
    }
    this.window = new ReplayWindow(w, { esn: this.esn });
    const last = p.lastSeq ?? 0;
    const maxSeq = this.esn ? Number.MAX_SAFE_INTEGER : 0xffffffff;
    if (!Number.isInteger(last) || last < 0 || last > maxSeq) throw new RangeError(`lastSeq ${last} out of range 0..${maxSeq}`);
    if (last > 0) this.window.accept(last);
    if (p.selectors) {
      const v6 = p.selectors.remote.filter((c) => isIpv6Address(c.address));
      this.remote = p.selectors.remote
        .filter((c) => !isIpv6Address(c.address))
        .map((c) => {
          if (!Number.isInteger(c.prefix) || c.prefix < 0 || c.prefix > 32) throw new RangeError(`traffic selector ${c.address}/${c.prefix}: bad prefix`);
          const mask = c.prefix === 0 ? 0 : (0xffffffff << (32 - c.prefix)) >>> 0;
          return { network: (address(c.address) & mask) >>> 0, mask };
        });
      this.remote6 = v6.map((c) => {
        if (!Number.isInteger(c.prefix) || c.prefix < 0 || c.prefix > 128) throw new RangeError(`traffic selector ${c.address}/${c.prefix}: bad prefix`);
        return { prefix: parseIpv6Address(c.address), length: c.prefix };
      });
      this.local = address(p.selectors.local);
      if (p.selectors.local6 !== undefined) this.local6 = address6(p.selectors.local6);
    }
    this.lifetime = new KeyLifetime(p.lifetime ?? {}, p.now ?? Date.now());
    this.drops = Object.fromEntries(ESP_DROPS.map((d) => [d, 0])) as Record<EspDrop, number>;
  }

  /** The highest sequence number accepted so far (64-bit value with ESN; 0 before the first). */
  get highestSeq(): number {
    return this.window.highest;
  }

  /**
   * Decrypts an ESP packet (SPI … ICV) addressed to this SPI: the inner IPv4 packet, trimmed to its Total
   * Length, or the reason it was dropped (counted in `drops`). Never throws.
   */
  open(esp: Uint8Array): { packet: Uint8Array } | { drop: EspDrop } {
    let r: EspDrop | Uint8Array;
    try {
      r = this.unwrap(esp);
    } catch {
      r = 'malformed'; // node:crypto refusing an input we did not foresee; never the caller's problem
    }
    if (typeof r === 'string') {
      this.drops[r]++;
      return { drop: r };
    }
    this.lifetime.count(1, r.length);
    return { packet: r };
  }

  private unwrap(esp: Uint8Array): EspDrop | Uint8Array {
    const s = this.suite;
    if (esp.length < ESP_HEADER_LENGTH) return 'malformed';
    if (readU32(esp, 0) !== this.spi) return 'unknown-spi';
    const ctLen = esp.length - ESP_HEADER_LENGTH - s.ivBytes - s.icvBytes;
    if (ctLen < TRAILER || !this.crypto.ciphertextLengthOk(ctLen)) return 'malformed';

    // anti-replay, before the ICV (RFC 4303 §3.4.3); with ESN the high half is inferred (Appendix A2)
    const low = readU32(esp, 4);
    let seq: number;
    if (this.esn) {
      seq = this.window.inferEsn(low);
      if (seq === 0) return 'too-old'; // below the first subspace: older than anything we accepted
    } else {
      if (low === 0) return 'malformed'; // sequence numbers start at 1
      seq = low;
    }
    const verdict = this.window.check(seq);
    if (verdict === 'duplicate') return 'replayed';
    if (verdict !== 'ok') return 'too-old';

    const pt = this.crypto.open(esp, this.esn ? Math.floor(seq / TWO_32) : undefined);
    if (pt === null) return 'bad-icv';
    this.window.accept(seq); // authentic: recorded even if what follows drops it, so a replay of it is 'replayed'

    const n = pt.length;
    const padLen = pt[n - 2]!;
    const nextHeader = pt[n - 1]!;
    if (padLen + TRAILER > n) return 'bad-padding';
    const end = n - TRAILER - padLen;
    for (let i = 0; i < padLen; i++) if (pt[end + i] !== i + 1) return 'bad-padding';
    if (nextHeader === NEXT_HEADER_NONE) return 'dummy';
    if (nextHeader === NEXT_HEADER_IPV6) return this.inner6(pt, end);
    if (nextHeader !== NEXT_HEADER_IPV4) return 'bad-next-header';

    // the inner IPv4 packet, without TFC padding (RFC 4303 §2.7)
    if (end < IPV4_MIN_HEADER || pt[0]! >> 4 !== 4) return 'malformed';
    const ihl = (pt[0]! & 0x0f) * 4;
    const total = (pt[2]! << 8) | pt[3]!;
    if (ihl < IPV4_MIN_HEADER || total < ihl || total > end) return 'malformed';
    const packet = pt.subarray(0, total);
    if (this.remote) {
      const src = readU32(packet, 12);
      if (!this.remote.some((c) => ((src & c.mask) >>> 0) === c.network)) return 'outside-selector';
      if (readU32(packet, 16) !== this.local) return 'not-for-us';
    }
    return packet;
  }

  /** The inner IPv6 packet (next header 41), trimmed to 40 + Payload Length, its addresses checked. */
  private inner6(pt: Uint8Array, end: number): EspDrop | Uint8Array {
    if (end < IPV6_HEADER_LENGTH || pt[0]! >> 4 !== 6) return 'malformed';
    const total = IPV6_HEADER_LENGTH + ((pt[4]! << 8) | pt[5]!); // a jumbogram (length 0) never fits an ESP packet
    if (total > end) return 'malformed';
    const packet = pt.subarray(0, total);
    if (this.remote) {
      const src = packet.subarray(8, 24);
      if (!this.remote6.some((c) => ipv6InPrefix(src, c.prefix, c.length))) return 'outside-selector';
      const dst = packet.subarray(24, 40);
      if (!this.local6 || !ipv6InPrefix(dst, this.local6, 128)) return 'not-for-us';
    }
    return packet;
  }
}

interface Cidr6 {
  readonly prefix: Uint8Array;
  readonly length: number;
}

function address6(s: string): Uint8Array {
  try {
    return parseIpv6Address(s);
  } catch {
    throw new RangeError(`traffic selector: '${s}' is not an IPv6 address`);
  }
}

function address(s: string): number {
  try {
    return parseIpv4Address(s);
  } catch {
    throw new RangeError(`traffic selector: '${s}' is not an IPv4 address`);
  }
}

// ---- the transforms alone, for known-answer tests and tools (no window, no trailer handling) ----

export interface EspRawParams {
  suite: EspSuite;
  encKey: Uint8Array;
  integKey: Uint8Array;
  /** ESN: the high 32 bits of the sequence number (in the AAD / ICV input only). Absent without ESN. */
  seqHigh?: number;
}

/**
 * An ESP packet from a complete plaintext (payload, padding, Pad Length and Next Header already in place;
 * CBC: whole blocks). `iv` defaults to seqHigh || seq for AEAD suites and to random bytes for CBC.
 */
export function espSealRaw(p: EspRawParams & { spi: number; seq: number; iv?: Uint8Array }, plaintext: Uint8Array): Uint8Array {
  const c = new EspCrypto(p.suite, p.encKey, p.integKey);
  if (!c.ciphertextLengthOk(plaintext.length)) throw new RangeError(`${p.suite.name}: a plaintext of ${plaintext.length} bytes is not whole blocks`);
  const ctOff = ESP_HEADER_LENGTH + c.ivLen;
  const out = Buffer.alloc(ctOff + plaintext.length + c.icvLen);
  writeU32(out, 0, p.spi);
  writeU32(out, 4, p.seq);
  if (p.iv) {
    if (p.iv.length !== c.ivLen) throw new RangeError(`${p.suite.name}: the IV must be ${c.ivLen} bytes`);
    out.set(p.iv, ESP_HEADER_LENGTH);
  } else if (p.suite.aeadAlgorithm) {
    writeU32(out, ESP_HEADER_LENGTH, p.seqHigh ?? 0);
    writeU32(out, ESP_HEADER_LENGTH + 4, p.seq);
  } else if (c.ivLen > 0) randomFillSync(out, ESP_HEADER_LENGTH, c.ivLen);
  out.set(plaintext, ctOff);
  c.sealInPlace(out, plaintext.length, p.seqHigh);
  return out;
}

/** The plaintext (with padding, Pad Length and Next Header) of an ESP packet, or null if short or not authentic. */
export function espOpenRaw(p: EspRawParams, esp: Uint8Array): Uint8Array | null {
  const c = new EspCrypto(p.suite, p.encKey, p.integKey);
  const ctLen = esp.length - ESP_HEADER_LENGTH - c.ivLen - c.icvLen;
  if (ctLen < 0 || !c.ciphertextLengthOk(ctLen)) return null;
  return c.open(esp, p.seqHigh);
}
