/**
 * Long-form packet ids of the wrapped control channel (tls-auth / tls-crypt, reference §1.4):
 * `uint32 id ‖ uint32 time`. The sender pre-increments (first id 1) and fixes `time` at first use; the
 * receiver keeps a 64-id backtrack window whose unseen slots expire 15 s after a later id arrived
 * (`packet_id.c` `packet_id_test` / `packet_id_add` / `packet_id_reap`, re-implemented here).
 *
 * Sans-I/O: every call takes `nowSec` (unix seconds).
 */

/** Size of a long-form packet id on the wire. */
export const PACKET_ID_LONG_LEN = 8;
/** tls-crypt-v2 clients with early negotiation start their counter here (first id 0x0f000001). */
export const EARLY_NEG_START = 0x0f000000;
export const DEFAULT_SEQ_BACKTRACK = 64;
export const DEFAULT_TIME_BACKTRACK = 15;

export interface PacketIdLong {
  id: number;
  time: number;
}

/** Outgoing long-form packet ids. */
export class PacketIdSender {
  private id: number;
  private time = 0;
  private timeSet = false;

  /** `startId` is the value before the first pre-increment (0 normally, EARLY_NEG_START for tls-crypt-v2). */
  constructor(startId = 0) {
    this.id = startId >>> 0;
  }

  /** The next id/time pair. `time` is fixed at the first call; an id wrap starts a new (later) time. */
  next(nowSec: number): PacketIdLong {
    if (!this.timeSet) {
      this.time = nowSec >>> 0;
      this.timeSet = true;
    }
    if (this.id >= 0xffffffff) {
      // Long form: on wrap start a new sequence with a later time so the receiver accepts it.
      this.id = 0;
      this.time = Math.max(nowSec >>> 0, (this.time + 1) >>> 0);
    }
    this.id += 1;
    return { id: this.id, time: this.time };
  }

  /** Writes the next id ‖ time at out[offset..offset+8). */
  write(out: Buffer, offset: number, nowSec: number): PacketIdLong {
    const p = this.next(nowSec);
    out.writeUInt32BE(p.id, offset);
    out.writeUInt32BE(p.time, offset + 4);
    return p;
  }

  /** The last id handed out (0 / startId before the first). */
  get lastId(): number {
    return this.id;
  }
}

export type ReplayVerdict = 'ok' | 'zero-id' | 'old-time' | 'too-old' | 'replay' | 'expired';

const UNSEEN = 0;
const SEEN = 1;
const EXPIRED = 2;

/** Incoming long-form packet ids: replay and reorder window. */
export class PacketIdReceiver {
  private readonly window: number;
  private readonly timeBacktrack: number;
  private initialized = false;
  private time = 0;
  /** Highest id accepted in the current time sequence. */
  private top = 0;
  /** Per slot (id mod window): UNSEEN / SEEN / EXPIRED, and when it was seen (unix seconds). */
  private readonly state: Uint8Array;
  private readonly seenAt: Float64Array;

  constructor(opts: { seqBacktrack?: number; timeBacktrack?: number } = {}) {
    this.window = opts.seqBacktrack ?? DEFAULT_SEQ_BACKTRACK;
    this.timeBacktrack = opts.timeBacktrack ?? DEFAULT_TIME_BACKTRACK;
    this.state = new Uint8Array(this.window);
    this.seenAt = new Float64Array(this.window);
  }

  /** Would (id, time) be accepted now? Does not record it. */
  test(id: number, time: number, nowSec: number): ReplayVerdict {
    if (id === 0) return 'zero-id';
    if (!this.initialized) return 'ok';
    if (time > this.time) return 'ok';
    if (time < this.time) return 'old-time';
    if (id > this.top) return 'ok';
    const diff = this.top - id;
    if (diff >= this.window) return 'too-old';
    this.reap(nowSec);
    const s = this.state[id % this.window]!;
    if (s === UNSEEN) return 'ok';
    return s === SEEN ? 'replay' : 'expired';
  }

  /** Records an accepted (id, time). Call only after test() returned 'ok' and the packet authenticated. */
  add(id: number, time: number, nowSec: number): void {
    const w = this.window;
    if (!this.initialized || time > this.time || id - this.top >= w) {
      // New sequence (or a jump past the whole window): everything below `id` in the window is unseen.
      this.initialized = true;
      this.time = time;
      this.state.fill(UNSEEN);
      this.top = id;
    } else if (id > this.top) {
      for (let x = this.top + 1; x <= id; x++) this.state[x % w] = UNSEEN;
      this.top = id;
    }
    const slot = id % w;
    this.state[slot] = SEEN;
    this.seenAt[slot] = nowSec;
  }

  /** test() then add() when accepted. */
  check(id: number, time: number, nowSec: number): ReplayVerdict {
    const v = this.test(id, time, nowSec);
    if (v === 'ok') this.add(id, time, nowSec);
    return v;
  }

  /**
   * Walks from the newest id down: once a seen id older than timeBacktrack is met, it and every older
   * slot expire (OpenVPN's `packet_id_reap`), so a gap cannot be filled long after later ids arrived.
   */
  private reap(nowSec: number): void {
    const w = this.window;
    let expire = false;
    const n = Math.min(w, this.top);
    for (let d = 0; d < n; d++) {
      const slot = (this.top - d) % w;
      const s = this.state[slot]!;
      if (s === EXPIRED) break;
      if (!expire && s === SEEN && this.seenAt[slot]! + this.timeBacktrack < nowSec) expire = true;
      if (expire) this.state[slot] = EXPIRED;
    }
  }
}
