/**
 * Out-of-order receive queue: non-overlapping pieces (copies) sorted by sequence number, with limits on
 * pieces and bytes, and the SACK blocks (RFC 2018) that describe them, most recently changed block first.
 */
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from './seq.js';
import type { SackBlock } from '../../wire/tcp.js';

interface Piece {
  seq: number;
  end: number;
  data: Uint8Array;
}

export class Reassembly {
  private pieces: Piece[] = [];
  bytes = 0;
  /** Left edges of recently changed blocks, most recent first (at most 4). */
  private recent: number[] = [];

  constructor(
    private readonly maxPieces = 2048,
    private readonly maxBytes = 8 * 1024 * 1024,
  ) {}

  get empty(): boolean {
    return this.pieces.length === 0;
  }
  get count(): number {
    return this.pieces.length;
  }

  /**
   * Queue data at seq (seq > rcvNxt). The data is copied. Returns false when it added nothing (duplicate
   * or over the limits).
   */
  insert(seq: number, data: Uint8Array): boolean {
    let s = seq;
    let e = seqAdd(seq, data.length);
    const ps = this.pieces;
    // first piece that ends after s (pieces before it end at or before s)
    let i = ps.length;
    while (i > 0 && seqGt(ps[i - 1]!.end, s)) i--;
    if (i < ps.length && seqLe(ps[i]!.seq, s)) {
      if (seqGe(ps[i]!.end, e)) return false; // duplicate
      s = ps[i]!.end;
      i++;
    }
    // drop pieces that [s, e) covers entirely
    let j = i;
    while (j < ps.length && seqLe(ps[j]!.end, e)) {
      this.bytes -= seqDiff(ps[j]!.end, ps[j]!.seq);
      j++;
    }
    if (j > i) ps.splice(i, j - i);
    if (i < ps.length && seqLt(ps[i]!.seq, e)) e = ps[i]!.seq;
    const len = seqDiff(e, s);
    if (len <= 0) return false;
    if (ps.length >= this.maxPieces || this.bytes + len > this.maxBytes) return false;
    const off = seqDiff(s, seq);
    const copy = new Uint8Array(len);
    copy.set(data.subarray(off, off + len));
    ps.splice(i, 0, { seq: s, end: e, data: copy });
    this.bytes += len;
    this.touch(this.blockStart(i));
    return true;
  }

  /** Remove and return the next piece that starts at or before rcvNxt (trimmed to start at rcvNxt). */
  pop(rcvNxt: number): Uint8Array | undefined {
    const ps = this.pieces;
    while (ps.length) {
      const p = ps[0]!;
      if (seqGt(p.seq, rcvNxt)) return undefined;
      ps.shift();
      const len = seqDiff(p.end, p.seq);
      this.bytes -= len;
      if (seqLe(p.end, rcvNxt)) continue;
      const off = seqDiff(rcvNxt, p.seq);
      return off === 0 ? p.data : p.data.subarray(off);
    }
    return undefined;
  }

  /** Highest sequence number held (end of last piece), or undefined. */
  highest(): number | undefined {
    const n = this.pieces.length;
    return n ? this.pieces[n - 1]!.end : undefined;
  }

  private blockStart(i: number): number {
    const ps = this.pieces;
    let k = i;
    while (k > 0 && ps[k - 1]!.end === ps[k]!.seq) k--;
    return ps[k]!.seq;
  }

  private touch(left: number): void {
    const r = this.recent;
    const at = r.indexOf(left);
    if (at >= 0) r.splice(at, 1);
    r.unshift(left);
    if (r.length > 4) r.length = 4;
  }

  /** Block [left, right) containing seq, or undefined. */
  private blockAt(seq: number): SackBlock | undefined {
    const ps = this.pieces;
    for (let i = 0; i < ps.length; i++) {
      const p = ps[i]!;
      if (seqLe(p.seq, seq) && seqLt(seq, p.end)) {
        let a = i;
        while (a > 0 && ps[a - 1]!.end === ps[a]!.seq) a--;
        let b = i;
        while (b + 1 < ps.length && ps[b]!.end === ps[b + 1]!.seq) b++;
        return { left: ps[a]!.seq, right: ps[b]!.end };
      }
    }
    return undefined;
  }

  /** Up to max SACK blocks, the most recently changed first. */
  sackBlocks(max: number, out: SackBlock[]): SackBlock[] {
    out.length = 0;
    const r = this.recent;
    for (let i = 0; i < r.length && out.length < max; i++) {
      const b = this.blockAt(r[i]!);
      if (!b) continue;
      let dup = false;
      for (const o of out) if (o.left === b.left) dup = true;
      if (!dup) out.push(b);
    }
    // fill with other blocks (highest first) when the recency list ran dry
    if (out.length < max) {
      const ps = this.pieces;
      for (let i = ps.length - 1; i >= 0 && out.length < max; i--) {
        const b = this.blockAt(ps[i]!.seq)!;
        let dup = false;
        for (const o of out) if (o.left === b.left) dup = true;
        if (!dup) out.push(b);
        while (i > 0 && ps[i - 1]!.end === ps[i]!.seq) i--;
      }
    }
    // drop stale recency entries
    this.recent = r.filter((x) => this.blockAt(x) !== undefined);
    return out;
  }

  clear(): void {
    this.pieces = [];
    this.bytes = 0;
    this.recent = [];
  }
}
