/**
 * The sender's scoreboard (RFC 6675 with RACK-TLP, RFC 8985): one record per transmitted segment, in
 * sequence order, with SACKed / lost / retransmitted flags and the counters the "pipe" estimate needs.
 * Records leave from the front as the cumulative ACK advances.
 */
import { seqAdd, seqDiff, seqGe, seqLe, seqLt } from './seq.js';

export const SegFlag = {
  SACKED: 1,
  /** Declared lost and not yet (re)sent since. */
  LOST: 2,
  /** Retransmitted after being declared lost (in flight again). */
  RETRANS: 4,
} as const;

export interface SentSegment {
  seq: number;
  /** Sequence space used (data bytes + 1 for a FIN). */
  len: number;
  fin: boolean;
  /** Time of the last (re)transmission, ms. */
  sentAt: number;
  xmits: number;
  flags: number;
}

export class Scoreboard {
  private recs: SentSegment[] = [];
  private head = 0;
  /** Sequence-space bytes SACKed (not yet cumulatively acked). */
  sackedOut = 0;
  /** Bytes marked lost and waiting for retransmission. */
  lostOut = 0;
  /** Bytes retransmitted after a loss and still outstanding. */
  retransOut = 0;
  /** Index hint: no record below it waits for retransmission. */
  private retxHint = 0;

  get count(): number {
    return this.recs.length - this.head;
  }
  at(i: number): SentSegment {
    return this.recs[this.head + i]!;
  }
  first(): SentSegment | undefined {
    return this.recs[this.head];
  }
  last(): SentSegment | undefined {
    return this.recs.length > this.head ? this.recs[this.recs.length - 1] : undefined;
  }

  push(seq: number, len: number, fin: boolean, now: number): SentSegment {
    const r: SentSegment = { seq, len, fin, sentAt: now, xmits: 1, flags: 0 };
    this.recs.push(r);
    return r;
  }

  /** Pipe (RFC 6675): outstanding bytes not SACKed and not lost, plus retransmissions in flight. */
  pipe(flight: number): number {
    return flight - this.sackedOut - this.lostOut;
  }

  private unaccount(r: SentSegment): void {
    if (r.flags & SegFlag.SACKED) this.sackedOut -= r.len;
    else if (r.flags & SegFlag.LOST) {
      if (r.flags & SegFlag.RETRANS) this.retransOut -= r.len;
      else this.lostOut -= r.len;
    }
  }

  /**
   * Remove everything below ack. Calls onDelivered for each record newly delivered (not previously
   * SACKed). A record split by the ACK is trimmed at the front.
   */
  ackTo(ack: number, onDelivered: (r: SentSegment) => void): void {
    const recs = this.recs;
    while (this.head < recs.length) {
      const r = recs[this.head]!;
      const end = seqAdd(r.seq, r.len);
      if (seqLe(end, ack)) {
        if (!(r.flags & SegFlag.SACKED)) onDelivered(r);
        this.unaccount(r);
        this.head++;
        continue;
      }
      if (seqLt(r.seq, ack)) {
        const cut = seqDiff(ack, r.seq);
        this.unaccount(r);
        r.seq = ack;
        r.len -= cut;
        if (r.flags & SegFlag.SACKED) this.sackedOut += r.len;
        else if (r.flags & SegFlag.LOST) {
          if (r.flags & SegFlag.RETRANS) this.retransOut += r.len;
          else this.lostOut += r.len;
        }
      }
      break;
    }
    if (this.retxHint < this.head) this.retxHint = this.head;
    if (this.head === recs.length) {
      this.recs = [];
      this.head = 0;
      this.retxHint = 0;
    } else if (this.head > 256 && this.head * 2 > recs.length) {
      this.recs = recs.slice(this.head);
      this.retxHint -= this.head;
      this.head = 0;
    }
  }

  /** Index (relative) of the first record whose end is after seq. */
  private lowerBound(seq: number): number {
    let lo = this.head;
    let hi = this.recs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const r = this.recs[mid]!;
      if (seqLe(seqAdd(r.seq, r.len), seq)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Mark records wholly inside [left, right) as SACKed; onDelivered for each newly SACKed one. Returns bytes. */
  sack(left: number, right: number, onDelivered: (r: SentSegment) => void): number {
    let n = 0;
    for (let i = this.lowerBound(left); i < this.recs.length; i++) {
      const r = this.recs[i]!;
      if (seqGe(r.seq, right)) break;
      if (seqLt(r.seq, left) || seqLt(right, seqAdd(r.seq, r.len))) continue;
      if (r.flags & SegFlag.SACKED) continue;
      this.unaccount(r);
      r.flags = SegFlag.SACKED;
      this.sackedOut += r.len;
      n += r.len;
      onDelivered(r);
    }
    return n;
  }

  markLost(r: SentSegment, absIndex?: number): void {
    if (r.flags & SegFlag.SACKED) return;
    if (r.flags & SegFlag.LOST) {
      if (!(r.flags & SegFlag.RETRANS)) return;
      this.retransOut -= r.len;
    }
    r.flags = SegFlag.LOST;
    this.lostOut += r.len;
    const idx = absIndex ?? this.lowerBound(r.seq);
    if (idx < this.retxHint) this.retxHint = idx;
  }

  /** Cut a record in two after firstLen bytes (the path MSS shrank); counters stay valid. */
  split(r: SentSegment, firstLen: number): void {
    const idx = this.recs.indexOf(r, this.head);
    if (idx < 0 || firstLen <= 0 || firstLen >= r.len) return;
    const rest: SentSegment = { seq: seqAdd(r.seq, firstLen), len: r.len - firstLen, fin: r.fin, sentAt: r.sentAt, xmits: r.xmits, flags: r.flags };
    r.len = firstLen;
    r.fin = false;
    this.recs.splice(idx + 1, 0, rest);
  }

  /** After a retransmission of a lost record. */
  markRetransmitted(r: SentSegment): void {
    if ((r.flags & (SegFlag.LOST | SegFlag.RETRANS)) === SegFlag.LOST) {
      this.lostOut -= r.len;
      this.retransOut += r.len;
      r.flags |= SegFlag.RETRANS;
    }
  }

  /** First record waiting for retransmission, or undefined. */
  nextLost(): SentSegment | undefined {
    if (this.lostOut <= 0) return undefined;
    const recs = this.recs;
    let i = Math.max(this.retxHint, this.head);
    for (; i < recs.length; i++) {
      const f = recs[i]!.flags;
      if ((f & (SegFlag.LOST | SegFlag.RETRANS | SegFlag.SACKED)) === SegFlag.LOST) break;
    }
    this.retxHint = i;
    return i < recs.length ? recs[i] : undefined;
  }

  /** Mark every record not SACKed as lost (after an RTO). */
  markAllLost(): void {
    for (let i = this.head; i < this.recs.length; i++) {
      const r = this.recs[i]!;
      if (r.flags & SegFlag.SACKED) continue;
      if (r.flags & SegFlag.RETRANS) this.retransOut -= r.len;
      else if (r.flags & SegFlag.LOST) continue;
      r.flags = SegFlag.LOST;
      this.lostOut += r.len;
    }
    this.retxHint = this.head;
  }

  /** Forget SACK state (peer reneged, or after an RTO per RFC 6675 §5.1 when wanted). */
  clearSacks(): void {
    for (let i = this.head; i < this.recs.length; i++) {
      const r = this.recs[i]!;
      if (r.flags & SegFlag.SACKED) {
        r.flags = 0;
        this.sackedOut -= r.len;
      }
    }
  }

  /** Iterate records (absolute indices) for RACK: calls fn until it returns false. */
  forEach(fn: (r: SentSegment, absIndex: number) => boolean): void {
    for (let i = this.head; i < this.recs.length; i++) if (!fn(this.recs[i]!, i)) break;
  }

  clear(): void {
    this.recs = [];
    this.head = 0;
    this.sackedOut = 0;
    this.lostOut = 0;
    this.retransOut = 0;
    this.retxHint = 0;
  }
}
