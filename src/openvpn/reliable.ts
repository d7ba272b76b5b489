/**
 * OpenVPN's control-channel reliability layer (reference §1.5, §1.6; `reliable.c`, `ssl.c` tls_process),
 * one instance per key state (key_id). Sans-I/O: the caller feeds decoded, unwrapped control packets to
 * receive(), asks poll(now) for what to transmit (plain ControlPacket objects it then encodes and wraps,
 * a fresh wrap per transmission), and re-arms its one timer to nextDeadline().
 *
 * Behaviour:
 *   - message ids per direction start at 0 with the hard/soft reset and grow without gaps;
 *   - send window 6: a new id is taken only while nextId - lowestUnacked < 6, TLS bytes wait otherwise;
 *   - receive window 12: ids in [expected, expected+12) are stored once and delivered strictly in order;
 *     ids beyond are dropped without an ACK; old duplicates (id < expected) are ACKed again;
 *   - retransmission after tlsTimeoutMs (2 s), doubling after every transmission (capped at maxTimeoutMs),
 *     fast retransmit once 3 later ids were ACKed, "burst" (everything due now) the first time the peer's
 *     reset arrives;
 *   - pending ACKs (≤ 8, deduplicated) ride on outgoing packets (≤ maxAcksPerPacket, default 4), the rest
 *     goes in P_ACK_V1 (≤ maxAcksPerAckPacket, default 8); as in 2.6, the 8 most recently ACKed ids are
 *     re-sent in later packets when there is room (MRU);
 *   - ACKs are taken only from packets whose remote session id is ours, otherwise the packet is dropped;
 *     P_ACK_V1 is never ACKed;
 *   - outgoing TLS bytes are a byte stream, cut (when an id is allocated) into chunks that keep the
 *     wrapped packet within maxPacketSize (default 1250, counting an assumed IPv6+UDP header as OpenVPN
 *     does);
 *   - tls-crypt-v2 early negotiation: when `resendWkc` is set (automatically from the server reset's
 *     EARLY_NEG_FLAGS if `wkcCapable`), message id 1 goes out as P_CONTROL_WKC_V1, and if ACKs are due
 *     before any TLS data exists an EMPTY P_CONTROL_WKC_V1 with id 1 carries them instead of P_ACK_V1.
 *
 * The 2.6 three-way handshake (§1.6) falls out of this: receiving the server reset puts ACK 0 in the
 * pending set, so the very next poll() returns a packet that carries ACK [0] and the server session id.
 *
 * Not handled here (session layer): hand-window timeout, which reset opcodes are acceptable for the role,
 * key_id rotation, wrapping/encoding.
 */
import { WireError } from '../errors.js';
import {
  CONTROL_SEND_ACK_MAX,
  MAX_ACKS,
  Opcode,
  SESSION_ID_LEN,
  ackBlockLength,
  isHardResetOpcode,
  isResetOpcode,
  parseEarlyNegotiation,
  type ControlPacket,
  type EarlyNegotiation,
} from '../wire/openvpn.js';

/** `TLS_RELIABLE_N_SEND_BUFFERS`. */
export const SEND_WINDOW = 6;
/** `TLS_RELIABLE_N_REC_BUFFERS`. */
export const RECV_WINDOW = 12;
/** `N_ACK_RETRANSMIT`. */
export const FAST_RETRANSMIT_ACKS = 3;
/** `TLS_MTU_DEFAULT`. */
export const DEFAULT_MAX_PACKET_SIZE = 1250;
/** IPv6 (40) + UDP (8): what OpenVPN assumes on top of a control packet when sizing chunks. */
export const DEFAULT_DATAGRAM_OVERHEAD = 48;
/** Smallest chunk we cut even if the size budget says less (OpenVPN uses 16 too). */
const MIN_CHUNK = 16;

export interface ReliableOptions {
  /** key_id of this key state (0..7). */
  keyId: number;
  /** Our 8-byte session id. */
  localSessionId: Buffer;
  /** The peer's session id when already known (soft reset); otherwise learned from the peer's reset. */
  remoteSessionId?: Buffer;
  /** Initial retransmission timeout (`--tls-timeout`), default 2000 ms. */
  tlsTimeoutMs?: number;
  /** Cap of the doubled timeout, default 60000 ms. */
  maxTimeoutMs?: number;
  /** ACKs piggy-backed on a P_CONTROL/reset packet, 1..4 (default 4). */
  maxAcksPerPacket?: number;
  /** ACKs in a dedicated P_ACK_V1, 1..8 (default 8; a 2.6 client without wrapping/EKM uses 4). */
  maxAcksPerAckPacket?: number;
  /** Size budget of a whole control packet incl. wrapping and datagramOverhead (default 1250). */
  maxPacketSize?: number;
  /** Bytes the control wrap adds (a number, or per opcode: ControlWrap.overheadFor). Default 0. */
  wrapOverhead?: number | ((opcode: number) => number);
  /** IP+UDP header assumed on top (default 48 = IPv6+UDP, like OpenVPN; 28 for IPv4). */
  datagramOverhead?: number;
  /** Fixed payload chunk size; overrides the computation from maxPacketSize. */
  maxPayload?: number;
  /** tls-crypt-v2 client with early negotiation: honour EARLY_NEG_FLAG_RESEND_WKC in the server reset. */
  wkcCapable?: boolean;
}

export type DropReason =
  | 'key-id' // packet for another key state
  | 'session-id' // sender session id is not the peer we talk to
  | 'no-peer-reset' // non-reset packet before the peer's reset
  | 'ack-session-id' // ACKs addressed to another session id
  | 'bad-reset-id' // hard reset with a message id other than 0
  | 'beyond-window'; // message id >= expected + 12

export interface ReceiveResult {
  /** false when the whole packet was dropped (see dropReason); nothing was ACKed then. */
  accepted: boolean;
  dropReason?: DropReason;
  /** TLS ciphertext released in order by this packet (possibly several, after a gap was filled). */
  delivered: Buffer[];
  /** The peer's reset was delivered by this packet (once per layer). */
  resetReceived: boolean;
  /** Opcode and payload of that reset. */
  resetOpcode?: number;
  resetPayload?: Buffer;
  /** Parsed early-negotiation TLVs of a HARD_RESET_SERVER_V2 with a payload. */
  earlyNegotiation?: EarlyNegotiation;
  /** The reset payload was not valid TLVs (OpenVPN fails the key state: "Early negotiation malformed packet"). */
  earlyNegotiationError?: WireError;
  /** Our message ids newly ACKed by this packet. */
  newlyAcked: number;
  /** The packet was an already-seen message (re-ACKed, not stored). */
  duplicate: boolean;
}

export interface ReliableStats {
  packetsSent: number;
  retransmits: number;
  fastRetransmits: number;
  acksSent: number; // P_ACK_V1 packets
  packetsReceived: number;
  duplicatesReceived: number;
  outOfWindow: number;
  dropped: number; // packets rejected for key id / session id / ack session id / reset id
  ackOverflow: number; // ids not queued for ACK because 8 were pending
  bursts: number;
}

interface SendEntry {
  messageId: number;
  opcode: number;
  payload: Buffer;
  nextTry: number;
  timeout: number;
  /** Later ids ACKed since the last transmission. */
  laterAcks: number;
  sends: number;
}

const EMPTY = Buffer.alloc(0);

export class ReliableLayer {
  readonly keyId: number;
  readonly localSessionId: Buffer;
  /** The peer's session id, learned from its reset (or given for a soft reset). */
  remoteSessionId: Buffer | undefined;
  /** Send message id 1 as P_CONTROL_WKC_V1 (tls-crypt-v2 early negotiation, §2.5). */
  resendWkc = false;
  readonly stats: ReliableStats = {
    packetsSent: 0,
    retransmits: 0,
    fastRetransmits: 0,
    acksSent: 0,
    packetsReceived: 0,
    duplicatesReceived: 0,
    outOfWindow: 0,
    dropped: 0,
    ackOverflow: 0,
    bursts: 0,
  };

  private readonly tlsTimeoutMs: number;
  private readonly maxTimeoutMs: number;
  private readonly maxAcksPerPacket: number;
  private readonly maxAcksPerAckPacket: number;
  private readonly maxPacketSize: number;
  private readonly wrapOverhead: (opcode: number) => number;
  private readonly datagramOverhead: number;
  private readonly fixedPayload: number | undefined;
  private readonly wkcCapable: boolean;

  // send side
  private nextSendId = 0;
  /** Unacked packets, ascending message id (≤ SEND_WINDOW). */
  private readonly unacked: SendEntry[] = [];
  private readonly outQueue: Buffer[] = [];
  private outQueueHead = 0; // bytes already consumed from outQueue[0]
  private outQueued = 0;

  // receive side
  private expected = 0;
  private readonly stored = new Map<number, ControlPacket>();
  private peerResetSeen = false;

  // ACKs
  private readonly pendingAcks: number[] = [];
  private readonly mruAcks: number[] = [];

  private lastNow = 0;

  constructor(opts: ReliableOptions) {
    if (opts.localSessionId.length !== SESSION_ID_LEN) throw new Error('ReliableLayer: localSessionId must be 8 bytes');
    if (!Number.isInteger(opts.keyId) || opts.keyId < 0 || opts.keyId > 7) throw new Error('ReliableLayer: keyId must be 0..7');
    this.keyId = opts.keyId;
    this.localSessionId = Buffer.from(opts.localSessionId);
    this.remoteSessionId = opts.remoteSessionId ? Buffer.from(opts.remoteSessionId) : undefined;
    this.tlsTimeoutMs = opts.tlsTimeoutMs ?? 2000;
    this.maxTimeoutMs = Math.max(this.tlsTimeoutMs, opts.maxTimeoutMs ?? 60_000);
    this.maxAcksPerPacket = clampInt(opts.maxAcksPerPacket ?? CONTROL_SEND_ACK_MAX, 1, CONTROL_SEND_ACK_MAX);
    this.maxAcksPerAckPacket = clampInt(opts.maxAcksPerAckPacket ?? MAX_ACKS, 1, MAX_ACKS);
    this.maxPacketSize = opts.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
    const wo = opts.wrapOverhead ?? 0;
    this.wrapOverhead = typeof wo === 'number' ? () => wo : wo;
    this.datagramOverhead = opts.datagramOverhead ?? DEFAULT_DATAGRAM_OVERHEAD;
    this.fixedPayload = opts.maxPayload;
    this.wkcCapable = opts.wkcCapable ?? false;
  }

  // -------------------------------------------------------------------------------------------------
  // sending

  /**
   * Queues our hard or soft reset as message id 0 (due at the next poll). `payload` is empty for every
   * reset a client sends. Throws if anything was sent on this layer before.
   */
  sendReset(opcode: number, payload: Buffer = EMPTY): void {
    if (this.nextSendId !== 0) throw new Error('ReliableLayer.sendReset: the reset must be message id 0');
    if (!isResetOpcode(opcode)) throw new Error(`ReliableLayer.sendReset: opcode ${opcode} is not a reset`);
    this.allocate(opcode, Buffer.from(payload));
  }

  /** Queues TLS ciphertext; it goes out as P_CONTROL_V1 payload (a byte stream, chunked and windowed). */
  queueData(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.outQueue.push(Buffer.from(bytes));
    this.outQueued += bytes.length;
  }

  /** Payload bytes one packet with this opcode can carry. */
  maxPayloadFor(opcode: number): number {
    if (this.fixedPayload !== undefined) return Math.max(1, this.fixedPayload);
    const header = 1 + SESSION_ID_LEN + ackBlockLength(this.maxAcksPerPacket) + 4;
    return Math.max(MIN_CHUNK, this.maxPacketSize - this.datagramOverhead - this.wrapOverhead(opcode) - header);
  }

  /**
   * Everything to transmit at `nowMs`, in this order: due packets (new, retransmitted, fast-retransmitted;
   * ascending message id, each with up to maxAcksPerPacket ACKs), then P_ACK_V1 packets for ACKs still
   * pending. The caller must encode + wrap each one (fresh replay id every time) and send them in order.
   */
  poll(nowMs: number): ControlPacket[] {
    this.lastNow = nowMs;
    const out: ControlPacket[] = [];
    this.fillWindow(nowMs);
    if (this.pendingAcks.length > 0 && this.resendWkc && this.nextSendId === 1 && this.canAllocate()) {
      // §2.5 step 4: the ACK of the server reset must travel in an (empty) P_CONTROL_WKC_V1, id 1.
      this.allocate(Opcode.P_CONTROL_WKC_V1, EMPTY);
    }
    for (const e of this.unacked) {
      const fast = e.laterAcks >= FAST_RETRANSMIT_ACKS;
      if (!fast && nowMs < e.nextTry) continue;
      out.push(this.transmit(e, nowMs, fast));
    }
    while (this.pendingAcks.length > 0 && this.remoteSessionId) {
      const acks = this.takeAcks(this.maxAcksPerAckPacket);
      out.push({
        opcode: Opcode.P_ACK_V1,
        keyId: this.keyId,
        sessionId: this.localSessionId,
        acks,
        remoteSessionId: this.remoteSessionId,
        payload: EMPTY,
      });
      this.stats.acksSent++;
      this.stats.packetsSent++;
    }
    return out;
  }

  /**
   * When poll() must run next (ms), or undefined when nothing is pending. A value ≤ now means "now"
   * (ACKs pending, data ready to go, or a packet overdue).
   */
  nextDeadline(): number | undefined {
    if (this.pendingAcks.length > 0) return this.lastNow;
    if (this.outQueued > 0 && this.canAllocate()) return this.lastNow;
    let best: number | undefined;
    for (const e of this.unacked) {
      const t = e.laterAcks >= FAST_RETRANSMIT_ACKS ? this.lastNow : Math.max(e.nextTry, this.lastNow);
      if (best === undefined || t < best) best = t;
    }
    return best;
  }

  /** Nothing of ours is unacknowledged or waiting to be sent (OpenVPN's `reliable_empty` + no queued TLS). */
  allAcked(): boolean {
    return this.unacked.length === 0 && this.outQueued === 0;
  }

  /** Message ids in flight (sent or allocated, not yet ACKed). */
  get unackedIds(): number[] {
    return this.unacked.map((e) => e.messageId);
  }
  /** Next message id we will allocate. */
  get nextMessageId(): number {
    return this.nextSendId;
  }
  /** Next message id we expect from the peer. */
  get expectedMessageId(): number {
    return this.expected;
  }
  /** Out-of-order packets held for in-order delivery. */
  get storedCount(): number {
    return this.stored.size;
  }
  /** TLS bytes queued but not yet cut into packets. */
  get queuedBytes(): number {
    return this.outQueued;
  }
  /** ACK ids waiting to be sent (a copy). */
  get pendingAckIds(): number[] {
    return this.pendingAcks.slice();
  }
  /** Whether the peer's reset was received. */
  get peerResetReceived(): boolean {
    return this.peerResetSeen;
  }

  private canAllocate(): boolean {
    const lowest = this.unacked.length > 0 ? this.unacked[0]!.messageId : this.nextSendId;
    return this.nextSendId - lowest < SEND_WINDOW;
  }

  private opcodeFor(messageId: number): number {
    return this.resendWkc && messageId === 1 ? Opcode.P_CONTROL_WKC_V1 : Opcode.P_CONTROL_V1;
  }

  private allocate(opcode: number, payload: Buffer): SendEntry {
    const e: SendEntry = {
      messageId: this.nextSendId++,
      opcode,
      payload,
      nextTry: Number.NEGATIVE_INFINITY,
      timeout: this.tlsTimeoutMs,
      laterAcks: 0,
      sends: 0,
    };
    this.unacked.push(e);
    return e;
  }

  /** Cuts queued TLS bytes into new packets while the send window allows. */
  private fillWindow(_nowMs: number): void {
    while (this.outQueued > 0 && this.canAllocate()) {
      const opcode = this.opcodeFor(this.nextSendId);
      const size = Math.min(this.maxPayloadFor(opcode), this.outQueued);
      this.allocate(opcode, this.takeBytes(size));
    }
  }

  private takeBytes(n: number): Buffer {
    const first = this.outQueue[0]!;
    const avail = first.length - this.outQueueHead;
    let chunk: Buffer;
    if (avail >= n) {
      chunk = first.subarray(this.outQueueHead, this.outQueueHead + n);
      this.outQueueHead += n;
      if (this.outQueueHead === first.length) {
        this.outQueue.shift();
        this.outQueueHead = 0;
      }
    } else {
      chunk = Buffer.allocUnsafe(n);
      let o = 0;
      while (o < n) {
        const b = this.outQueue[0]!;
        const take = Math.min(n - o, b.length - this.outQueueHead);
        b.copy(chunk, o, this.outQueueHead, this.outQueueHead + take);
        o += take;
        this.outQueueHead += take;
        if (this.outQueueHead === b.length) {
          this.outQueue.shift();
          this.outQueueHead = 0;
        }
      }
    }
    this.outQueued -= n;
    return chunk;
  }

  private transmit(e: SendEntry, nowMs: number, fast: boolean): ControlPacket {
    const acks = this.remoteSessionId ? this.takeAcks(this.maxAcksPerPacket) : [];
    const pkt: ControlPacket = {
      opcode: e.opcode,
      keyId: this.keyId,
      sessionId: this.localSessionId,
      acks,
      messageId: e.messageId,
      payload: e.payload,
    };
    if (acks.length > 0) pkt.remoteSessionId = this.remoteSessionId!;
    if (e.sends > 0) {
      this.stats.retransmits++;
      if (fast && nowMs < e.nextTry) this.stats.fastRetransmits++;
    }
    e.sends++;
    e.nextTry = nowMs + e.timeout;
    e.timeout = Math.min(e.timeout * 2, this.maxTimeoutMs);
    e.laterAcks = 0;
    this.stats.packetsSent++;
    return pkt;
  }

  /**
   * Moves up to `max` pending ACKs to the front of the MRU list and returns the first `max` MRU entries:
   * the new ACKs first, then recently sent ones again (2.6 `reliable_ack_write` + `copy_acks_to_mru`).
   */
  private takeAcks(max: number): number[] {
    const n = Math.min(this.pendingAcks.length, max);
    const fresh = this.pendingAcks.splice(0, n);
    for (let i = n - 1; i >= 0; i--) {
      const id = fresh[i]!;
      const at = this.mruAcks.indexOf(id);
      if (at >= 0) this.mruAcks.splice(at, 1);
      this.mruAcks.unshift(id);
      if (this.mruAcks.length > MAX_ACKS) this.mruAcks.pop();
    }
    return this.mruAcks.slice(0, Math.min(max, this.mruAcks.length));
  }

  // -------------------------------------------------------------------------------------------------
  // receiving

  /**
   * Processes one authenticated, decoded control packet of this key state. ACKs are applied first; then
   * the message (unless P_ACK_V1) is stored/ACKed/delivered per the receive window. Never throws for
   * peer behaviour; a dropped packet has accepted=false.
   */
  receive(pkt: ControlPacket, nowMs: number): ReceiveResult {
    this.lastNow = nowMs;
    this.stats.packetsReceived++;
    const res: ReceiveResult = { accepted: false, delivered: [], resetReceived: false, newlyAcked: 0, duplicate: false };
    const drop = (r: DropReason): ReceiveResult => {
      this.stats.dropped++;
      res.dropReason = r;
      return res;
    };
    if (pkt.keyId !== this.keyId) return drop('key-id');
    const isReset = isResetOpcode(pkt.opcode);
    if (this.remoteSessionId) {
      if (!pkt.sessionId.equals(this.remoteSessionId)) return drop('session-id');
    } else if (!isReset) {
      return drop('no-peer-reset');
    } else if (pkt.messageId !== 0) {
      return drop('bad-reset-id');
    }
    if (pkt.acks.length > 0) {
      if (!pkt.remoteSessionId || !pkt.remoteSessionId.equals(this.localSessionId)) return drop('ack-session-id');
    }
    if (!this.remoteSessionId) this.remoteSessionId = Buffer.from(pkt.sessionId);

    res.accepted = true;
    if (pkt.acks.length > 0) res.newlyAcked = this.applyAcks(pkt.acks);

    if (isReset && !this.peerResetSeen) {
      this.peerResetSeen = true;
      this.burst();
    }

    if (pkt.opcode === Opcode.P_ACK_V1) return res;
    const id = pkt.messageId;
    if (id === undefined) return res; // not produced by decodeControlPacket for non-ACK opcodes
    if (isHardResetOpcode(pkt.opcode) && id !== 0) {
      // `tls_pre_decrypt`: a hard reset with id != 0 is ignored (ACKs above were still applied)
      res.dropReason = 'bad-reset-id';
      this.stats.dropped++;
      return res;
    }
    if (id < this.expected || this.stored.has(id)) {
      this.stats.duplicatesReceived++;
      res.duplicate = true;
      this.queueAck(id);
      return res;
    }
    if (id - this.expected >= RECV_WINDOW) {
      this.stats.outOfWindow++;
      res.dropReason = 'beyond-window';
      return res;
    }
    this.queueAck(id);
    if (id === this.expected) {
      this.deliver(pkt, res);
      this.expected++;
      let next: ControlPacket | undefined;
      while ((next = this.stored.get(this.expected)) !== undefined) {
        this.stored.delete(this.expected);
        this.deliver(next, res);
        this.expected++;
      }
    } else {
      this.stored.set(id, { ...pkt, payload: Buffer.from(pkt.payload) });
    }
    return res;
  }

  private deliver(p: ControlPacket, res: ReceiveResult): void {
    if (isResetOpcode(p.opcode)) {
      res.resetReceived = true;
      res.resetOpcode = p.opcode;
      res.resetPayload = p.payload;
      if (p.opcode === Opcode.P_CONTROL_HARD_RESET_SERVER_V2 && p.payload.length > 0) {
        try {
          const en = parseEarlyNegotiation(p.payload);
          res.earlyNegotiation = en;
          if (en.resendWkc && this.wkcCapable) this.resendWkc = true;
        } catch (err) {
          if (!(err instanceof WireError)) throw err;
          res.earlyNegotiationError = err;
        }
      }
      return;
    }
    if (p.payload.length > 0) res.delivered.push(p.payload);
  }

  private queueAck(id: number): void {
    if (this.pendingAcks.includes(id)) return;
    if (this.pendingAcks.length >= MAX_ACKS) {
      this.stats.ackOverflow++;
      return;
    }
    this.pendingAcks.push(id);
  }

  private applyAcks(acks: readonly number[]): number {
    let newly = 0;
    for (const id of acks) {
      const idx = this.unacked.findIndex((e) => e.messageId === id);
      if (idx < 0) continue; // already ACKed (MRU re-send) or never sent
      this.unacked.splice(idx, 1);
      newly++;
      // ids below the newly ACKed one were probably lost: count towards fast retransmit
      for (const e of this.unacked) {
        if (e.messageId < id && e.sends > 0) e.laterAcks++;
      }
    }
    return newly;
  }

  /** `reliable_schedule_now`: everything unacked is due now, with the initial timeout again. */
  private burst(): void {
    if (this.unacked.length === 0) return;
    this.stats.bursts++;
    for (const e of this.unacked) {
      e.nextTry = Number.NEGATIVE_INFINITY;
      e.timeout = this.tlsTimeoutMs;
    }
  }
}

function clampInt(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.floor(v)));
}
