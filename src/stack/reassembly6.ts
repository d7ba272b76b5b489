/**
 * IPv6 fragment reassembly (RFC 8200 §4.5) on the core that IPv4 uses (reassembly.ts), sans-I/O like it:
 * input(packet, now) takes a parsed packet that carried a fragment header and returns a whole packet once the
 * datagram is complete; expire(now) and nextDeadline() serve the caller's one timer.
 *
 * Rules, beyond the core's (exact duplicates ignored, any other overlap drops the whole datagram as RFC 5722
 * asks, oldest datagram evicted past maxDatagrams / maxBytes):
 * - a datagram is identified by (source, destination, fragment identification); the upper-layer protocol is not
 *   part of the key as it is for IPv4;
 * - the timeout runs 60 s from the first fragment that arrived (RFC 8200 §4.5);
 * - a fragment whose length and offset would make the reassembled Payload Length exceed 65535 (the
 *   unfragmentable extension headers count) is invalid and dropped, as is a non-final fragment whose length is
 *   not a multiple of 8; we never send the Parameter Problem RFC 8200 suggests (we are a client, not a router);
 * - an atomic fragment (offset 0, M clear; RFC 6946) never enters the queues: it is a whole packet already and
 *   cannot complete or spoil a datagram in progress that happens to share its identification.
 *
 * What comes out is a new IPv6 packet: the first fragment's fixed header, its payload length fixed, its next
 * header set to the fragment header's, followed by the reassembled fragmentable part. The unfragmentable
 * extension headers (hop-by-hop, routing, destination options before the fragment header) are not kept: the
 * stack ignores them anyway. The caller parses the result again like any packet, so extension headers that
 * travelled inside the fragmentable part are walked as usual.
 */
import { IPV6_HEADER_LENGTH, writeIpv6Header, type Ipv6Packet } from '../wire/ipv6.js';
import { FragmentReassembler, type ReassemblyLimits, type ReassemblyStats } from './reassembly.js';

/** RFC 8200 §4.5: the time allowed to receive all fragments of a packet. */
export const IPV6_REASSEMBLY_TIMEOUT_MS = 60_000;
const FRAGMENT_HEADER_LENGTH = 8;
const MAX_PAYLOAD_LENGTH = 0xffff;

export interface Reassembly6Stats extends ReassemblyStats {
  /** Atomic fragments (offset 0, M clear) passed on as whole packets. */
  atomic: number;
}

interface First6 {
  trafficClass: number;
  flowLabel: number;
  hopLimit: number;
  protocol: number;
  src: Uint8Array;
  dst: Uint8Array;
}

export class Reassembler6 {
  private readonly core: FragmentReassembler<First6>;
  readonly stats: Reassembly6Stats;

  constructor(limits: ReassemblyLimits = {}) {
    this.core = new FragmentReassembler<First6>(limits, IPV6_REASSEMBLY_TIMEOUT_MS);
    this.stats = Object.assign(this.core.stats, { atomic: 0 });
  }

  get size(): number {
    return this.core.size;
  }
  get bufferedBytes(): number {
    return this.core.bufferedBytes;
  }
  get timeoutMs(): number {
    return this.core.timeoutMs;
  }

  /**
   * One packet that carried a fragment header (ip.fragment set). Returns the whole packet (fragment header
   * gone) when this fragment completes its datagram or is atomic, else undefined. Copies what it keeps.
   */
  input(ip: Ipv6Packet, now: number): Uint8Array | undefined {
    const frag = ip.fragment;
    if (!frag) throw new TypeError('Reassembler6.input needs a packet with a fragment header');
    if (frag.offset === 0 && !frag.moreFragments) {
      this.stats.atomic++;
      return rebuild(firstOf(ip), ip.payload);
    }
    const unfragmentable = ip.headerLength - IPV6_HEADER_LENGTH - FRAGMENT_HEADER_LENGTH;
    const r = this.core.add(
      {
        key: `${hex(ip.src)}/${hex(ip.dst)}/${frag.id}`,
        offset: frag.offset,
        moreFragments: frag.moreFragments,
        data: ip.payload,
        maxEnd: MAX_PAYLOAD_LENGTH - unfragmentable,
        first: () => firstOf(ip),
      },
      now,
    );
    return r ? rebuild(r.first, r.payload) : undefined;
  }

  expire(now: number): void {
    this.core.expire(now);
  }

  nextDeadline(): number | undefined {
    return this.core.nextDeadline();
  }

  clear(): void {
    this.core.clear();
  }
}

function firstOf(ip: Ipv6Packet): First6 {
  return { trafficClass: ip.trafficClass, flowLabel: ip.flowLabel, hopLimit: ip.hopLimit, protocol: ip.protocol, src: ip.src.slice(), dst: ip.dst.slice() };
}

function rebuild(h: First6, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(IPV6_HEADER_LENGTH + payload.length);
  writeIpv6Header({ src: h.src, dst: h.dst, nextHeader: h.protocol, hopLimit: h.hopLimit, trafficClass: h.trafficClass, flowLabel: h.flowLabel }, payload.length, out, 0);
  out.set(payload, IPV6_HEADER_LENGTH);
  return out;
}

function hex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return s;
}
