/**
 * One IKE SA's protection and message bookkeeping (RFC 7296 §2.1–§2.3, §3.14; RFC 7383), sans-I/O: its SPIs,
 * which side is its original initiator, its keys, our request counter with the one request in flight, the
 * peer's request counter with our cached last response, and the reassembly of fragmented messages.
 *
 * "Initiator" is per IKE SA: the side that started the exchange creating it. For the IKE SA of IKE_SA_INIT
 * that is us; after the gateway rekeys the IKE SA it is the gateway (RFC 7296 §2.18), and then we set no I
 * flag, put the gateway's SPI first and seal with SK_er/SK_ar.
 *
 * Everything encrypted goes through seal() (SK, or SKF fragments when both sides support fragmentation and
 * the message is too big) and comes back through receive() (SK, or SKF fragments reassembled, each fragment
 * authenticated first). A message whose ICV does not verify is dropped without a word to the peer.
 */
import type { Logger } from '../../util/log.js';
import { IkeFlags, PayloadType } from '../../wire/ike-constants.js';
import { isFromInitiator, type IkeHeader, type IkeHeaderFields, type IkeMessage, type IkePayload } from '../../wire/ike.js';
import type { IkeKeys } from '../ike-keys.js';
import { PeerRequests, Requests } from './exchange.js';
import { FragmentReassembler, ikeMessageLimit, openFragment, sealFragments, type FragmentOutcome } from './fragments.js';
import { describeMessage, exchangeKind } from './messages.js';
import type { IkeSuite } from './proposals.js';
import { openMessage, sealMessage, type SkAlgorithms, type SkKeys } from './sk.js';

export interface IkeSaOptions {
  /** The SPIs in header order: the original initiator's first. */
  spiI: Uint8Array;
  spiR: Uint8Array;
  /** We are the original initiator of this IKE SA. */
  initiator: boolean;
  suite: IkeSuite;
  keys: IkeKeys;
  /** Our requests (message IDs and the one in flight): the initiator's own for the first IKE SA, a fresh one after a rekey. */
  requests: Requests;
  fragmentation: 'yes' | 'accept' | 'no';
  /** The peer announced IKEV2_FRAGMENTATION_SUPPORTED. */
  peerFragments: boolean;
  /** Largest IKE message before fragmenting (default: a 1280-byte IPv4 datagram). */
  fragmentLimit?: number;
  random: (n: number) => Uint8Array;
  log: Logger;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.from(a).equals(Buffer.from(b));

export class IkeSa {
  readonly spiI: Uint8Array;
  readonly spiR: Uint8Array;
  readonly initiator: boolean;
  readonly suite: IkeSuite;
  readonly keys: IkeKeys;
  readonly sk: SkAlgorithms;
  readonly requests: Requests;
  readonly peer = new PeerRequests();
  private readonly o: IkeSaOptions;
  private readonly outKeys: SkKeys;
  private readonly inKeys: SkKeys;
  private readonly responseFragments: FragmentReassembler | undefined;
  private readonly requestFragments: FragmentReassembler | undefined;

  constructor(o: IkeSaOptions) {
    this.o = o;
    this.spiI = Uint8Array.from(o.spiI);
    this.spiR = Uint8Array.from(o.spiR);
    this.initiator = o.initiator;
    this.suite = o.suite;
    this.keys = o.keys;
    this.sk = { encr: o.suite.encr, integ: o.suite.integ };
    this.requests = o.requests;
    const k = o.keys;
    const i = { encKey: k.skEi, integKey: k.skAi };
    const r = { encKey: k.skEr, integKey: k.skAr };
    this.outKeys = o.initiator ? i : r;
    this.inKeys = o.initiator ? r : i;
    if (o.fragmentation !== 'no') {
      this.responseFragments = new FragmentReassembler(this.sk, this.inKeys);
      this.requestFragments = new FragmentReassembler(this.sk, this.inKeys);
    }
  }

  /** Our SPI of this IKE SA. */
  get ourSpi(): Uint8Array {
    return this.initiator ? this.spiI : this.spiR;
  }

  /** '1a2b…_i 3c4d…_r', as strongSwan prints an IKE SA. */
  get name(): string {
    return `${hex(this.spiI)}_i ${hex(this.spiR)}_r`;
  }

  /** Whether a message belongs to this IKE SA and was sent by the peer (the I flag is the peer's role). */
  owns(h: IkeHeader): boolean {
    return same(h.spiI, this.spiI) && same(h.spiR, this.spiR) && isFromInitiator(h) !== this.initiator;
  }

  /** The header of a message of ours: I flag when we are the original initiator, R for a response. */
  header(exchange: number, messageId: number, response: boolean): IkeHeaderFields {
    return { spiI: this.spiI, spiR: this.spiR, exchange, flags: (this.initiator ? IkeFlags.INITIATOR : 0) | (response ? IkeFlags.RESPONSE : 0), messageId };
  }

  /**
   * The message as datagrams, logged: one SK message, or SKF fragments when both sides support fragmentation,
   * we may send fragments (fragmentation = yes) and the whole message would exceed the size limit.
   */
  seal(header: IkeHeaderFields, inner: readonly IkePayload[]): Uint8Array[] {
    const whole = sealMessage(header, inner, this.sk, this.outKeys, { random: this.o.random });
    const limit = this.o.fragmentLimit ?? ikeMessageLimit();
    this.o.log.debug(`sending ${describeMessage(header, inner)}`);
    if (whole.length <= limit || !this.o.peerFragments || this.o.fragmentation !== 'yes') return [whole];
    const frags = sealFragments(header, inner, this.sk, this.outKeys, limit, { random: this.o.random });
    this.o.log.debug(`sending ${exchangeKind(header)} in ${frags.length} fragments (${whole.length} bytes unfragmented, fragments of at most ${limit} bytes)`);
    return frags;
  }

  /** A new request of ours: the next message ID, sealed, recorded for retransmission. Returns its datagrams. */
  request(exchange: number, inner: readonly IkePayload[], now: number, what?: string, giveUpAfterMs?: number): Uint8Array[] {
    const m = this.seal(this.header(exchange, this.requests.nextMessageId, false), inner);
    this.requests.start(exchange, m, now, what, giveUpAfterMs);
    return m;
  }

  /** Our response to the peer's request `req`: sealed and cached for its retransmissions. */
  respond(req: IkeHeader, inner: readonly IkePayload[]): Uint8Array[] {
    const m = this.seal(this.header(req.exchange, req.messageId, true), inner);
    this.peer.answered(req.messageId, m);
    return m;
  }

  /**
   * The inner payloads of a message of the peer (SK, or the last missing SKF fragment), or undefined when it
   * does not verify, is malformed, or is a fragment of a message still incomplete (each case logged).
   */
  open(raw: Uint8Array, msg: IkeMessage, kind: 'request' | 'response'): IkePayload[] | undefined {
    if (isFragment(msg)) return this.defragment(kind === 'request' ? this.requestFragments : this.responseFragments, raw, msg);
    let inner: IkePayload[] | null;
    try {
      inner = openMessage(raw, msg, this.sk, this.inKeys);
    } catch (e) {
      this.o.log.debug(`malformed ${exchangeKind(msg.header)} dropped: ${(e as Error).message}`);
      return undefined;
    }
    if (!inner) {
      this.o.log.debug(`${describeMessage(msg.header, msg.payloads)} does not verify: dropped`);
      return undefined;
    }
    if (kind === 'response') this.responseFragments?.reset();
    return inner;
  }

  /** The fragment number of an authentic SKF fragment (for answering a retransmitted request once), else undefined. */
  fragmentNumber(raw: Uint8Array, msg: IkeMessage): number | undefined {
    if (!isFragment(msg) || !this.requestFragments) return undefined;
    try {
      return openFragment(raw, msg, this.sk, this.inKeys)?.number;
    } catch {
      return undefined;
    }
  }

  /** The peer retransmitted its last request: our cached response again, every datagram of it. */
  cachedResponse(): readonly Uint8Array[] {
    const again = this.peer.cachedResponse() ?? [];
    this.o.log.debug(`retransmitted request from the gateway: sending our response again${again.length > 1 ? ` (all ${again.length} fragments)` : ''}`);
    return again;
  }

  private defragment(r: FragmentReassembler | undefined, raw: Uint8Array, msg: IkeMessage): IkePayload[] | undefined {
    const what = exchangeKind(msg.header);
    const log = this.o.log;
    if (!r) {
      log.debug(`fragment of ${what} dropped: IKE fragmentation is off (fragmentation = no)`);
      return undefined;
    }
    let o: FragmentOutcome | null;
    try {
      o = r.add(raw, msg);
    } catch (e) {
      log.debug(`malformed fragment of ${what} dropped: ${(e as Error).message}`);
      return undefined;
    }
    if (!o) {
      log.debug(`fragment of ${what} dropped (does not verify, a duplicate, or of an older fragmentation)`);
      return undefined;
    }
    if (!o.done) {
      log.debug(`received fragment ${o.number} of ${o.total} of ${what} (${o.have} of ${o.total} so far)`);
      return undefined;
    }
    log.debug(`received fragment ${o.number} of ${o.total}, reassembled ${what} (${o.length} bytes)`);
    if (r === this.responseFragments) r.reset();
    return o.inner;
  }
}

export const isFragment = (m: IkeMessage): boolean => m.payloads[m.payloads.length - 1]?.type === PayloadType.SKF;
