/**
 * The send buffer: bytes written by the application and not yet acknowledged, held as the caller's chunks
 * (no copy) with small writes coalesced into a tail block. Offsets are relative to the first unacknowledged
 * byte (SND.UNA). Sequential reads are served from a cached cursor, so building a segment is O(1) chunks.
 * Empty, it holds nothing (an idle connection costs a few hundred bytes).
 */
const SMALL = 2048;
const TAIL_BLOCK = 16384;

export class SendBuffer {
  private chunks: Uint8Array[] = [];
  /** Absolute start offset of each chunk. */
  private starts: number[] = [];
  private head = 0;
  /** Absolute offset of the first held byte. */
  private base = 0;
  /** Absolute offset one past the last held byte. */
  private end = 0;
  private tail: Uint8Array | undefined;
  private tailLen = 0;
  private cur = 0;

  /** Bytes held. */
  get length(): number {
    return this.end - this.base;
  }

  append(chunk: Uint8Array): void {
    const n = chunk.length;
    if (n === 0) return;
    if (n <= SMALL) {
      const last = this.chunks.length - 1;
      if (this.tail && last >= this.head && this.tailLen + n <= this.tail.length && this.chunks[last]!.buffer === this.tail.buffer &&
        this.chunks[last]!.byteOffset === this.tail.byteOffset) {
        this.tail.set(chunk, this.tailLen);
        this.tailLen += n;
        this.chunks[last] = this.tail.subarray(0, this.tailLen);
        this.end += n;
        return;
      }
      this.tail = new Uint8Array(TAIL_BLOCK);
      this.tail.set(chunk, 0);
      this.tailLen = n;
      this.chunks.push(this.tail.subarray(0, n));
      this.starts.push(this.end);
      this.end += n;
      return;
    }
    this.tail = undefined;
    this.chunks.push(chunk);
    this.starts.push(this.end);
    this.end += n;
  }

  /** Copy len bytes starting off bytes after the first held byte into dst[dstOff..]. */
  copyOut(off: number, len: number, dst: Uint8Array, dstOff: number): void {
    let abs = this.base + off;
    if (off < 0 || abs + len > this.end) throw new RangeError(`send buffer read ${off}+${len} outside ${this.length}`);
    let i = this.cur;
    if (i < this.head || i >= this.chunks.length || this.starts[i]! > abs) i = this.head;
    while (this.starts[i]! + this.chunks[i]!.length <= abs) i++;
    let left = len;
    let d = dstOff;
    while (left > 0) {
      const c = this.chunks[i]!;
      const co = abs - this.starts[i]!;
      const take = Math.min(left, c.length - co);
      if (co === 0 && take === c.length) dst.set(c, d);
      else dst.set(c.subarray(co, co + take), d);
      d += take;
      abs += take;
      left -= take;
      if (left > 0) i++;
    }
    this.cur = i;
  }

  /** Drop n acknowledged bytes from the front. */
  consume(n: number): void {
    if (n <= 0) return;
    this.base = Math.min(this.base + n, this.end);
    const chunks = this.chunks;
    while (this.head < chunks.length && this.starts[this.head]! + chunks[this.head]!.length <= this.base) {
      if (chunks[this.head]!.buffer === this.tail?.buffer && this.head === chunks.length - 1) this.tail = undefined;
      this.head++;
    }
    if (this.head === chunks.length) {
      this.chunks = [];
      this.starts = [];
      this.head = 0;
      this.cur = 0;
      this.tail = undefined;
    } else if (this.head > 64 && this.head * 2 > chunks.length) {
      this.chunks = chunks.slice(this.head);
      this.starts = this.starts.slice(this.head);
      this.cur = Math.max(0, this.cur - this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.base = this.end;
    this.chunks = [];
    this.starts = [];
    this.head = 0;
    this.cur = 0;
    this.tail = undefined;
  }
}
