/**
 * IKEv2 message IDs and retransmission (RFC 7296 §2.1–§2.3), sans-I/O on the caller's clock.
 *
 * Requests: one outstanding request at a time (window size 1; we never send SET_WINDOW_SIZE); only the
 * requester retransmits, byte-identical (every fragment again when it went out in fragments, RFC 7383
 * §2.6.1), with exponential backoff capped at 8 s: by default after 1, 2, 4, 8, 8 and 8 s (six
 * retransmissions), and the exchange fails 8 s after the last one, 39 s after the first send, with a
 * HANDSHAKE_TIMEOUT that says what went unanswered; a request may also give up earlier (a DPD's dpd_timeout). A response is ours only if it carries the R flag, the
 * exchange type and the message ID of the outstanding request.
 *
 * Requests from the peer: their message IDs count separately from ours, from 0. The next expected ID is
 * processed; the previous one is a retransmission, answered with the cached response (byte-identical, not
 * re-encrypted; all its fragments if it was fragmented); anything else is dropped.
 */
import { VpnError } from '../../errors.js';
import { exchangeName } from '../../wire/ike-constants.js';

export interface RetransmitPolicy {
  /** Delay before the first retransmission, ms. */
  readonly initialMs: number;
  /** Each further delay is the previous one times this. */
  readonly factor: number;
  /** Cap on one delay, ms. */
  readonly maxIntervalMs: number;
  /** How many retransmissions before giving up (the wait after the last one is one more delay). */
  readonly retransmits: number;
}

// Capped at 8 s so that a gateway back from a restart hears from us within 8 s (strongSwan's own schedule, 4 s
// times 1.8 up to 165 s, suits a server better than a client that a user waits for).
export const DEFAULT_RETRANSMIT: RetransmitPolicy = Object.freeze({ initialMs: 1000, factor: 2, maxIntervalMs: 8000, retransmits: 6 });

/** The delay after transmission number `n` (0 = the first send). */
export function retransmitDelay(p: RetransmitPolicy, n: number): number {
  return Math.min(p.maxIntervalMs, p.initialMs * p.factor ** n);
}

/** How long an unanswered request lives, ms (first send to giving up). */
export function requestLifetime(p: RetransmitPolicy): number {
  let t = 0;
  for (let n = 0; n <= p.retransmits; n++) t += retransmitDelay(p, n);
  return t;
}

interface Pending {
  exchange: number;
  messageId: number;
  /** The datagrams that make up the request: one message, or its fragments. */
  datagrams: readonly Uint8Array[];
  /** What the request is, for the timeout message ('IKE_SA_INIT', 'IKE_AUTH', 'INFORMATIONAL (DELETE)'). */
  what: string;
  firstAt: number;
  transmissions: number;
  nextAt: number;
  /** Give up at this time even with retransmissions left (a DPD with dpd_timeout), or undefined. */
  giveUpAt?: number;
}

export type TimerOutcome = { resend: readonly Uint8Array[] } | { timeout: VpnError } | undefined;

/** Our own requests: message IDs and the retransmission of the one in flight. */
export class Requests {
  private next = 0;
  private pending: Pending | undefined;

  /** `peer` names the gateway in timeout messages ('192.0.2.1:500'); update it when the port changes. */
  constructor(
    private readonly policy: RetransmitPolicy = DEFAULT_RETRANSMIT,
    public peer = 'the gateway',
  ) {}

  /** The message ID the next request will take. */
  get nextMessageId(): number {
    return this.next;
  }

  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** The exchange type and message ID in flight. */
  get outstanding(): { exchange: number; messageId: number; what: string } | undefined {
    const p = this.pending;
    return p && { exchange: p.exchange, messageId: p.messageId, what: p.what };
  }

  /**
   * Records a new request that the caller sends now: it takes the next message ID (which the caller put in
   * the header: nextMessageId). Throws if one is still outstanding (window size 1).
   */
  start(exchange: number, datagrams: readonly Uint8Array[], now: number, what = exchangeName(exchange), giveUpAfterMs?: number): void {
    if (this.pending) throw new VpnError('INTERNAL', `IKE request ${what} while ${this.pending.what} is outstanding`);
    const giveUpAt = giveUpAfterMs !== undefined && giveUpAfterMs > 0 ? now + giveUpAfterMs : undefined;
    this.pending = { exchange, messageId: this.next, datagrams, what, firstAt: now, transmissions: 1, nextAt: Math.min(now + retransmitDelay(this.policy, 0), giveUpAt ?? Infinity), giveUpAt };
    this.next = (this.next + 1) >>> 0;
  }

  /**
   * The outstanding request is replaced by new datagrams under the same message ID (IKE_SA_INIT again with a
   * COOKIE or another key exchange group): its schedule starts over.
   */
  restart(datagrams: readonly Uint8Array[], now: number): void {
    const p = this.pending;
    if (!p) throw new VpnError('INTERNAL', 'no IKE request to restart');
    this.pending = { ...p, datagrams, firstAt: now, transmissions: 1, nextAt: now + retransmitDelay(this.policy, 0) };
  }

  /** Whether a response (R flag already checked) with this exchange type and message ID answers ours. */
  matches(exchange: number, messageId: number): boolean {
    const p = this.pending;
    return p !== undefined && p.exchange === exchange && p.messageId === messageId;
  }

  /** The response arrived: nothing is outstanding any more. */
  complete(): void {
    this.pending = undefined;
  }

  /** When onTimer should run next (ms), or undefined. */
  deadline(): number | undefined {
    return this.pending?.nextAt;
  }

  /** Due retransmission (the same datagrams again) or the timeout once the retransmissions are used up. */
  onTimer(now: number): TimerOutcome {
    const p = this.pending;
    if (!p || now < p.nextAt) return undefined;
    if (p.transmissions > this.policy.retransmits || (p.giveUpAt !== undefined && now >= p.giveUpAt)) {
      this.pending = undefined;
      const secs = Math.round((now - p.firstAt) / 1000);
      return {
        timeout: new VpnError('HANDSHAKE_TIMEOUT', `no answer to ${p.what} from ${this.peer} after ${p.transmissions} transmissions over ${secs} s (IKE message ID ${p.messageId})`),
      };
    }
    p.nextAt = Math.min(now + retransmitDelay(this.policy, p.transmissions), p.giveUpAt ?? Infinity);
    p.transmissions++;
    return { resend: p.datagrams };
  }
}

/** Requests from the peer: the next expected message ID and the cached last response. */
export class PeerRequests {
  private expected = 0;
  private cached: { messageId: number; datagrams: readonly Uint8Array[] } | undefined;

  get expectedMessageId(): number {
    return this.expected;
  }

  /** 'new': process it; 'retransmit': send cachedResponse() again; 'old': drop it. */
  classify(messageId: number): 'new' | 'retransmit' | 'old' {
    if (messageId === this.expected) return 'new';
    if (this.cached && messageId === this.cached.messageId) return 'retransmit';
    return 'old';
  }

  /** Our response to request `messageId` (sent now, as one message or its fragments; kept for retransmissions of the request). */
  answered(messageId: number, datagrams: readonly Uint8Array[]): void {
    this.cached = { messageId, datagrams };
    this.expected = (messageId + 1) >>> 0;
  }

  cachedResponse(): readonly Uint8Array[] | undefined {
    return this.cached?.datagrams;
  }
}
