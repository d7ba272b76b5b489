/**
 * Sliding-window replay protection for 32-bit sequence numbers (OpenVPN data-channel packet ids,
 * ESP sequence numbers without ESN) and 64-bit ones (ESP with Extended Sequence Numbers, RFC 4303
 * §2.2.1 and Appendix A). Shared by both protocols.
 *
 * Rules:
 *  - ids are unsigned integers of 32 bits, or of 64 bits with `{ esn: true }` (held in a JS number, so
 *    exact up to 2^53: at 10^6 packets a second that is 285 years); 0 is never valid (both start at 1);
 *  - an id above the highest seen is accepted and slides the window (a jump of ≥ size clears it);
 *  - an id within `size` of the highest is accepted once (bitmap);
 *  - anything older is 'too-old'.
 * No modular wrap-around: both OpenVPN (TLS short form) and ESP without ESN must rekey before the
 * counter wraps, so after 0xFFFFFFFF small ids are simply too old. OpenVPN's time-based backtrack
 * (`--replay-window n t`) is not implemented.
 *
 * Usage: authenticate the packet first, then `accept(id)` (check + record in one step). `check(id)`
 * is a non-mutating test (e.g. a cheap pre-filter before decryption).
 */

export type ReplayVerdict = 'ok' | 'duplicate' | 'too-old' | 'invalid';

export const DEFAULT_REPLAY_WINDOW = 64;
const MAX_ID_32 = 0xffffffff;
const TWO_32 = 0x1_0000_0000;

export interface ReplayWindowOptions {
  /** 64-bit sequence numbers (ESP ESN); default 32-bit. */
  readonly esn?: boolean;
}

export class ReplayWindow {
  /** Window size in ids (a multiple of 32). */
  readonly size: number;
  private readonly bits: Uint32Array;
  /** Highest id accepted so far; 0 = none yet. */
  private top = 0;
  private readonly maxId: number;

  constructor(size: number = DEFAULT_REPLAY_WINDOW, opts: ReplayWindowOptions = {}) {
    if (!Number.isInteger(size) || size < 1 || size > 65536) throw new RangeError(`replay window size ${size} out of range 1..65536`);
    this.size = Math.ceil(size / 32) * 32;
    this.bits = new Uint32Array(this.size / 32);
    this.maxId = opts.esn ? Number.MAX_SAFE_INTEGER : MAX_ID_32;
  }

  /**
   * ESN: the full 64-bit sequence number a packet carrying only the low 32 bits most likely has
   * (RFC 4303 Appendix A2.2), relative to the highest id accepted so far. The ICV covers the high bits,
   * so the caller authenticates with this guess and then calls accept() with it. Returns 0 when the
   * guess would be below 1 (a packet from before the first subspace), which check() calls 'invalid'.
   */
  inferEsn(low: number): number {
    const low32 = low >>> 0;
    const tl = this.top % TWO_32;
    const th = Math.floor(this.top / TWO_32);
    const w = this.size;
    let high: number;
    if (tl >= w - 1) {
      // the window lies inside one 2^32 subspace: below its bottom means the next subspace
      high = low32 >= tl - w + 1 ? th : th + 1;
    } else {
      // the window straddles a subspace boundary: high low values belong to the previous subspace
      high = low32 >= (tl - w + 1 + TWO_32) % TWO_32 ? th - 1 : th;
    }
    if (high < 0) return 0;
    return high * TWO_32 + low32;
  }

  /** Highest id accepted so far (0 before the first). */
  get highest(): number {
    return this.top;
  }

  /** Tests an id without recording it. */
  check(id: number): ReplayVerdict {
    if (!(id >= 1 && id <= this.maxId) || !Number.isInteger(id)) return 'invalid';
    if (id > this.top) return 'ok';
    if (this.top - id >= this.size) return 'too-old';
    const pos = id % this.size;
    return (this.bits[pos >>> 5] & (1 << (pos & 31))) !== 0 ? 'duplicate' : 'ok';
  }

  /** Tests an id and, when it is 'ok', records it. Call only for authenticated packets. */
  accept(id: number): ReplayVerdict {
    const v = this.check(id);
    if (v !== 'ok') return v;
    if (id > this.top) {
      const jump = id - this.top;
      if (jump >= this.size) this.bits.fill(0);
      else for (let s = this.top + 1; s < id; s++) this.clearBit(s % this.size);
      this.top = id;
    }
    const pos = id % this.size;
    this.bits[pos >>> 5] |= 1 << (pos & 31);
    return 'ok';
  }

  /** Forgets everything (new key state). */
  reset(): void {
    this.bits.fill(0);
    this.top = 0;
  }

  private clearBit(pos: number): void {
    this.bits[pos >>> 5] &= ~(1 << (pos & 31));
  }
}
