/**
 * Sliding-window replay protection for 32-bit sequence numbers (OpenVPN data-channel packet ids,
 * ESP sequence numbers without ESN). Shared by both protocols.
 *
 * Rules:
 *  - ids are unsigned 32-bit integers; 0 is never valid (both protocols start at 1);
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
const MAX_ID = 0xffffffff;

export class ReplayWindow {
  /** Window size in ids (a multiple of 32). */
  readonly size: number;
  private readonly bits: Uint32Array;
  /** Highest id accepted so far; 0 = none yet. */
  private top = 0;

  constructor(size: number = DEFAULT_REPLAY_WINDOW) {
    if (!Number.isInteger(size) || size < 1 || size > 65536) throw new RangeError(`replay window size ${size} out of range 1..65536`);
    this.size = Math.ceil(size / 32) * 32;
    this.bits = new Uint32Array(this.size / 32);
  }

  /** Highest id accepted so far (0 before the first). */
  get highest(): number {
    return this.top;
  }

  /** Tests an id without recording it. */
  check(id: number): ReplayVerdict {
    if (!(id >= 1 && id <= MAX_ID) || !Number.isInteger(id)) return 'invalid';
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
