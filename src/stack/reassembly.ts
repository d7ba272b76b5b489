/**
 * Fragment reassembly for IPv4 (RFC 791 §3.2) and, through the same core, IPv6 (reassembly6.ts), sans-I/O:
 * input() takes `now` and returns the whole datagram once its last hole is filled; expire(now) drops
 * datagrams older than the timeout; nextDeadline() tells the driver when to call expire next.
 *
 * Policy:
 * - a datagram is identified by (src, dst, protocol, id) for IPv4, (src, dst, id) for IPv6;
 * - an exact duplicate fragment (same offset, same length) is ignored and counted;
 * - any other overlap drops the whole datagram (as Linux does since 4.19 and RFC 5722 asks for IPv6): overlap
 *   is only ever produced by attackers or broken middleboxes, and "which copy wins" is a classic evasion trick;
 * - limits: at most maxDatagrams in flight and maxBytes buffered in all; when a new fragment would break a limit,
 *   the oldest datagrams are evicted (fresh traffic such as a DNS answer wins over stale halves);
 * - a datagram that would exceed 65535 bytes, or a non-final fragment whose length is not a multiple of 8,
 *   is invalid and dropped.
 * The core (FragmentReassembler) knows offsets and bytes only; each family supplies the key, the size limit and
 * what to keep of the first fragment.
 */
import type { Ipv4Header, Ipv4Packet } from '../wire/ipv4.js';

export interface ReassemblyLimits {
  /** Datagrams being reassembled at once (default 16). */
  maxDatagrams?: number;
  /** Fragment payload bytes buffered in all (default 256 KiB). */
  maxBytes?: number;
  /** How long a datagram may take to complete, from its first fragment (default 30 s for IPv4, 60 s for IPv6). */
  timeoutMs?: number;
}

export interface ReassemblyStats {
  /** Fragments given to input(). */
  fragments: number;
  /** Datagrams completed. */
  reassembled: number;
  /** Exact duplicate fragments ignored. */
  duplicates: number;
  /** Datagrams dropped because two fragments overlapped differently. */
  overlaps: number;
  /** Datagrams dropped as incomplete after the timeout. */
  timeouts: number;
  /** Datagrams evicted to stay within maxDatagrams / maxBytes. */
  evicted: number;
  /** Fragments dropped as malformed (too long in all, unaligned, conflicting last fragment). */
  invalid: number;
}

/** A reassembled datagram: what the caller kept from the first fragment (offset 0) and the whole payload. */
export interface Reassembled<M> {
  first: M;
  payload: Uint8Array;
}

/** One fragment as the family-neutral core sees it. */
export interface FragmentInput<M> {
  /** Identifies the datagram (the family's tuple as text). */
  key: string;
  /** Byte offset of data in the datagram's payload (a multiple of 8). */
  offset: number;
  moreFragments: boolean;
  /** Copied when kept. */
  data: Uint8Array;
  /** Largest end offset a valid datagram may reach (65535 minus what precedes the fragmentable part). */
  maxEnd: number;
  /** Called for the offset-0 fragment only: what the datagram keeps of it (header fields). */
  first: () => M;
}

interface Fragment {
  offset: number;
  data: Uint8Array;
}

interface Pending<M> {
  key: string;
  startedAt: number;
  /** Payload length once the last fragment (MF clear) has been seen, else -1. */
  total: number;
  bytes: number;
  /** Sorted by offset, never overlapping. */
  frags: Fragment[];
  first: M | undefined;
}

/** The family-neutral core: IPv4 (below) and IPv6 (reassembly6.ts) put their header fields around it. */
export class FragmentReassembler<M> {
  readonly stats: ReassemblyStats = { fragments: 0, reassembled: 0, duplicates: 0, overlaps: 0, timeouts: 0, evicted: 0, invalid: 0 };
  private readonly maxDatagrams: number;
  private readonly maxBytes: number;
  readonly timeoutMs: number;
  /** Insertion order = age order (oldest first). */
  private readonly pending = new Map<string, Pending<M>>();
  private bytes = 0;

  constructor(limits: ReassemblyLimits = {}, defaultTimeoutMs = 30_000) {
    this.maxDatagrams = limits.maxDatagrams ?? 16;
    this.maxBytes = limits.maxBytes ?? 256 * 1024;
    this.timeoutMs = limits.timeoutMs ?? defaultTimeoutMs;
  }

  /** Datagrams in flight. */
  get size(): number {
    return this.pending.size;
  }
  /** Fragment bytes buffered. */
  get bufferedBytes(): number {
    return this.bytes;
  }

  /** Take one fragment; returns the whole datagram when this fragment completes it, else undefined. */
  add(f: FragmentInput<M>, now: number): Reassembled<M> | undefined {
    this.stats.fragments++;
    this.expire(now);
    const len = f.data.length;
    const off = f.offset;
    const end = off + len;
    if (end > f.maxEnd || (f.moreFragments && (len === 0 || len % 8 !== 0))) {
      this.stats.invalid++;
      return undefined;
    }
    if (len > this.maxBytes) {
      this.stats.invalid++;
      return undefined;
    }
    const key = f.key;
    let d = this.pending.get(key);
    if (!d) {
      while (this.pending.size >= this.maxDatagrams) this.evictOldest();
      d = { key, startedAt: now, total: -1, bytes: 0, frags: [], first: undefined };
      this.pending.set(key, d);
    }
    // The last fragment fixes the length; everything must agree with it.
    if (!f.moreFragments) {
      if ((d.total >= 0 && d.total !== end) || (d.frags.length > 0 && d.frags[d.frags.length - 1]!.offset + d.frags[d.frags.length - 1]!.data.length > end)) {
        this.stats.invalid++;
        this.drop(d);
        return undefined;
      }
      d.total = end;
    } else if (d.total >= 0 && end > d.total) {
      this.stats.invalid++;
      this.drop(d);
      return undefined;
    }
    // Find the insertion point and check neighbours for overlap.
    const frags = d.frags;
    let i = 0;
    while (i < frags.length && frags[i]!.offset < off) i++;
    const prev = i > 0 ? frags[i - 1] : undefined;
    const next = i < frags.length ? frags[i] : undefined;
    if (next && next.offset === off && next.data.length === len) {
      this.stats.duplicates++;
      return undefined;
    }
    if ((prev && prev.offset + prev.data.length > off) || (next && next.offset < end)) {
      this.stats.overlaps++;
      this.drop(d);
      return undefined;
    }
    while (this.bytes + len > this.maxBytes && this.pending.size > 0) {
      const oldest = this.pending.values().next().value as Pending<M>;
      if (oldest === d) break;
      this.evict(oldest);
    }
    if (this.bytes + len > this.maxBytes) {
      this.stats.evicted++;
      this.drop(d);
      return undefined;
    }
    frags.splice(i, 0, { offset: off, data: f.data.slice() });
    d.bytes += len;
    this.bytes += len;
    if (off === 0) d.first = f.first();
    if (d.total < 0 || d.first === undefined) return undefined;
    // Complete when the fragments tile [0, total) without a hole.
    let covered = 0;
    for (const fr of frags) {
      if (fr.offset !== covered) return undefined;
      covered += fr.data.length;
    }
    if (covered !== d.total) return undefined;
    const payload = new Uint8Array(d.total);
    for (const fr of frags) payload.set(fr.data, fr.offset);
    this.drop(d);
    this.stats.reassembled++;
    return { first: d.first, payload };
  }

  /** Drop datagrams whose time is up. */
  expire(now: number): void {
    for (const d of this.pending.values()) {
      if (now - d.startedAt < this.timeoutMs) break; // age order: the rest are younger
      this.stats.timeouts++;
      this.drop(d);
    }
  }

  /** When expire() next has work, or undefined when nothing is pending. */
  nextDeadline(): number | undefined {
    const oldest = this.pending.values().next().value as Pending<M> | undefined;
    return oldest ? oldest.startedAt + this.timeoutMs : undefined;
  }

  /** Forget everything (the link went down or changed address). */
  clear(): void {
    this.pending.clear();
    this.bytes = 0;
  }

  private evictOldest(): void {
    const oldest = this.pending.values().next().value as Pending<M> | undefined;
    if (oldest) this.evict(oldest);
  }

  private evict(d: Pending<M>): void {
    this.stats.evicted++;
    this.drop(d);
  }

  private drop(d: Pending<M>): void {
    this.pending.delete(d.key);
    this.bytes -= d.bytes;
  }
}

/** A reassembled IPv4 datagram: the first fragment's header (offset 0, MF clear, total length fixed) and the payload. */
export interface ReassembledDatagram {
  header: Ipv4Header;
  payload: Uint8Array;
}

/** IPv4 payload bytes after a minimal header. */
const MAX_PAYLOAD = 65535 - 20;

/** IPv4: keyed by (src, dst, protocol, id), 30 s by default. */
export class Reassembler extends FragmentReassembler<Ipv4Header> {
  constructor(limits: ReassemblyLimits = {}) {
    super(limits, 30_000);
  }

  /**
   * Take one fragment (a validated packet with MF set or a non-zero offset). Returns the whole datagram when
   * this fragment completes it, else undefined. The fragment's payload is copied; the input may be reused.
   */
  input(p: Ipv4Packet, now: number): ReassembledDatagram | undefined {
    const r = this.add(
      { key: `${p.src}/${p.dst}/${p.protocol}/${p.id}`, offset: p.fragmentOffset, moreFragments: p.moreFragments, data: p.payload, maxEnd: MAX_PAYLOAD, first: () => copyHeader(p) },
      now,
    );
    if (!r) return undefined;
    const header = r.first;
    header.totalLength = header.headerLength + r.payload.length;
    header.moreFragments = false;
    return { header, payload: r.payload };
  }
}

function copyHeader(h: Ipv4Header): Ipv4Header {
  return {
    tos: h.tos,
    headerLength: h.headerLength,
    totalLength: h.totalLength,
    id: h.id,
    dontFragment: h.dontFragment,
    moreFragments: h.moreFragments,
    fragmentOffset: 0,
    ttl: h.ttl,
    protocol: h.protocol,
    checksum: h.checksum,
    src: h.src,
    dst: h.dst,
    options: h.options.slice(),
  };
}
