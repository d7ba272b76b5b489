/**
 * IKE fragmentation (RFC 7383): splitting an SK-protected message into SKF-carrying datagrams, and putting the
 * peer's fragments back together.
 *
 * Sending: the inner payloads are encoded once, as for SK; the plaintext is cut into pieces, and each piece
 * travels in a message of its own with the full IKE header (same exchange, flags and message ID) and one SKF
 * payload: Fragment Number | Total Fragments | IV | ciphertext | padding | Pad Length | ICV, sealed like SK
 * with the AAD/ICV over the IKE header and the SKF header including the two numbers. Only the first
 * fragment's Next Payload names the first inner payload; the others carry 0. Each piece is as large as lets
 * the whole IP datagram stay within the limit; like strongSwan's charon.fragment_size (1280 by default), the
 * limit counts IPv4 (20) + UDP (8) + the non-ESP marker (4) + the IKE message.
 *
 * Receiving: a fragment is authenticated (its own ICV/tag) before anything of it is kept; fragments are
 * collected by number for one message at a time; a higher Total Fragments than seen so far for that message
 * discards what was collected and starts over (the sender re-fragmented smaller), a lower one is dropped
 * (RFC 7383 §2.6.2); more than 255 fragments are refused (strongSwan's MAX_FRAGMENTS). Once every number is
 * there the pieces are joined in order and parsed as the inner payload chain of the first fragment's Next
 * Payload.
 */
import { VpnError, WireError } from '../../errors.js';
import { PayloadType } from '../../wire/ike-constants.js';
import { buildInnerPayloads, parseIkeMessage, parseInnerPayloads, IKE_HEADER_LENGTH, GENERIC_PAYLOAD_HEADER_LENGTH, type IkeHeader, type IkeHeaderFields, type IkeMessage, type IkePayload } from '../../wire/ike.js';
import { maxPlainInBody, openEncrypted, sealEncrypted, skBodyLength, type SealOptions, type SkAlgorithms, type SkKeys } from './sk.js';

/** strongSwan's default charon.fragment_size: the largest IP datagram an IKE fragment may make. */
export const DEFAULT_FRAGMENT_DATAGRAM = 1280;
/** IPv4 header + UDP header + the non-ESP marker in front of IKE on port 4500. */
export const IPV4_UDP_MARKER_OVERHEAD = 20 + 8 + 4;
/** The most fragments of one message (sent or accepted), as strongSwan's MAX_FRAGMENTS. */
export const MAX_FRAGMENTS = 255;
/** Fragment Number and Total Fragments, before the IV. */
const SKF_NUMBERS = 4;

/** The largest IKE message (header included, marker excluded) that fits an IP datagram of `datagram` bytes. */
export function ikeMessageLimit(datagram = DEFAULT_FRAGMENT_DATAGRAM): number {
  return datagram - IPV4_UDP_MARKER_OVERHEAD;
}

const be16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);

/**
 * The message `inner` as SKF fragments, each a whole IKE message of at most `maxMessage` bytes. Throws
 * VpnError if that takes more than MAX_FRAGMENTS or the limit leaves no room for data.
 */
export function sealFragments(header: IkeHeaderFields, inner: readonly IkePayload[], a: SkAlgorithms, keys: SkKeys, maxMessage: number, o: SealOptions = {}): Uint8Array[] {
  const { first, bytes } = buildInnerPayloads(inner);
  const per = maxPlainInBody(a, maxMessage - IKE_HEADER_LENGTH - GENERIC_PAYLOAD_HEADER_LENGTH - SKF_NUMBERS);
  if (per < 1) throw new VpnError('INTERNAL', `an IKE fragment of ${maxMessage} bytes leaves no room for data`);
  const total = Math.max(1, Math.ceil(bytes.length / per));
  if (total > MAX_FRAGMENTS) throw new VpnError('PROTOCOL', `an IKE message of ${bytes.length} bytes would take ${total} fragments (at most ${MAX_FRAGMENTS})`);
  const out: Uint8Array[] = [];
  for (let n = 1; n <= total; n++) {
    const piece = bytes.subarray((n - 1) * per, Math.min(bytes.length, n * per));
    const prefix = new Uint8Array(SKF_NUMBERS);
    prefix.set(be16(n), 0);
    prefix.set(be16(total), 2);
    const clear = n === 1 ? o.clear : undefined;
    out.push(sealEncrypted(header, { type: PayloadType.SKF, innerNext: n === 1 ? first : PayloadType.NONE, prefix }, piece, a, keys, { ...o, clear, iv: undefined }));
  }
  return out;
}

/** One fragment, authenticated and decrypted. */
export interface OpenedFragment {
  number: number;
  total: number;
  /** The SKF Next Payload (meaningful in fragment 1 only). */
  innerNext: number;
  plain: Uint8Array;
}

/**
 * Authenticates and decrypts the SKF payload that ends `msg` (`raw` is the same message as bytes). null when
 * the message has no SKF payload or it does not verify; WireError when its numbers or padding are malformed.
 */
export function openFragment(raw: Uint8Array, msg: IkeMessage, a: SkAlgorithms, keys: SkKeys): OpenedFragment | null {
  const skf = msg.payloads[msg.payloads.length - 1];
  if (!skf || skf.type !== PayloadType.SKF) return null;
  const b = skf.body;
  if (b.length < SKF_NUMBERS) throw new WireError(`SKF body of ${b.length} bytes`, 'skf.fragmentNumber', raw.length - b.length);
  const number = (b[0]! << 8) | b[1]!;
  const total = (b[2]! << 8) | b[3]!;
  if (number < 1 || number > total) throw new WireError(`fragment ${number} of ${total}`, 'skf.fragmentNumber', raw.length - b.length);
  const plain = openEncrypted(raw, b.length, SKF_NUMBERS, a, keys);
  if (!plain) return null;
  return { number, total, innerNext: skf.innerNext ?? 0, plain: Uint8Array.from(plain) };
}

/** What a fragment did: kept (more to come), or completed the message. */
export type FragmentOutcome =
  | { done: false; number: number; total: number; have: number }
  | {
      done: true;
      number: number;
      total: number;
      header: IkeHeader;
      inner: IkePayload[];
      /** The size of the message as one SK message (minimal padding): what the sender split (strongSwan logs the same). */
      length: number;
    };

interface Collecting {
  messageId: number;
  exchange: number;
  flags: number;
  total: number;
  innerNext: number;
  pieces: Map<number, Uint8Array>;
}

/**
 * Collects the fragments of one message at a time (a fragment of another message ID, exchange or direction
 * starts over). add() returns null for anything dropped: not an SKF message, not verifying, a duplicate, a
 * Total Fragments lower than the current one or above MAX_FRAGMENTS. It throws only WireError (malformed
 * input, including an authenticated plaintext that does not parse).
 */
export class FragmentReassembler {
  private cur: Collecting | undefined;

  constructor(
    private readonly a: SkAlgorithms,
    private readonly keys: SkKeys,
  ) {}

  /** Fragments held for the message in progress (tests, logs). */
  get pending(): number {
    return this.cur?.pieces.size ?? 0;
  }

  /** Drops whatever was collected. */
  reset(): void {
    this.cur = undefined;
  }

  add(raw: Uint8Array, parsed?: IkeMessage): FragmentOutcome | null {
    const msg = parsed ?? parseIkeMessage(raw);
    const f = openFragment(raw, msg, this.a, this.keys);
    if (!f || f.total > MAX_FRAGMENTS) return null;
    const h = msg.header;
    let c = this.cur;
    if (!c || c.messageId !== h.messageId || c.exchange !== h.exchange || c.flags !== h.flags) {
      c = this.cur = { messageId: h.messageId, exchange: h.exchange, flags: h.flags, total: f.total, innerNext: PayloadType.NONE, pieces: new Map() };
    } else if (f.total > c.total) {
      c.total = f.total;
      c.innerNext = PayloadType.NONE;
      c.pieces.clear();
    } else if (f.total < c.total) {
      return null;
    }
    if (c.pieces.has(f.number)) return null;
    c.pieces.set(f.number, f.plain);
    if (f.number === 1) c.innerNext = f.innerNext;
    if (c.pieces.size < c.total) return { done: false, number: f.number, total: c.total, have: c.pieces.size };
    this.cur = undefined;
    let length = 0;
    for (const p of c.pieces.values()) length += p.length;
    const plain = new Uint8Array(length);
    let off = 0;
    for (let n = 1; n <= c.total; n++) {
      const p = c.pieces.get(n)!;
      plain.set(p, off);
      off += p.length;
    }
    const header: IkeHeader = { ...h, spiI: Uint8Array.from(h.spiI), spiR: Uint8Array.from(h.spiR), nextPayload: PayloadType.SK };
    return { done: true, number: f.number, total: c.total, header, inner: parseInnerPayloads(plain, c.innerNext), length: IKE_HEADER_LENGTH + GENERIC_PAYLOAD_HEADER_LENGTH + skBodyLength(this.a, length) };
  }
}
