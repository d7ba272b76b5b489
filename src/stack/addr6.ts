/**
 * Ipv6Addresses: gives every IPv6 address the IPv6 layer meets a small number (a handle, from 1), so the TCP
 * and UDP code, whose tables and pseudo-headers work on numbers, runs unchanged over IPv6. The address words of
 * each handle are pre-added once, so the pseudo-header sum of two handles is one addition.
 *
 * The table is bounded: once `max` addresses are known, a new one gets no handle (0) and the packet that
 * brought it is dropped. Handles are never reused while the layer lives.
 */
import { onesSum } from '../wire/checksum.js';
import { ipv6ToString } from '../wire/ipv6.js';

export class Ipv6Addresses {
  private readonly byKey = new Map<string, number>();
  private readonly addrs: Uint8Array[] = [new Uint8Array(16)];
  private readonly sums: number[] = [0];
  private lastHandle = 0;

  constructor(private readonly max = 65536) {}

  /** Handles given out. */
  get size(): number {
    return this.addrs.length - 1;
  }

  /** The handle of addr (a copy is kept), or 0 when the table is full. */
  intern(addr: Uint8Array): number {
    const last = this.lastHandle;
    if (last !== 0 && sameAddress(this.addrs[last]!, addr)) return last;
    const key = keyOf(addr);
    let h = this.byKey.get(key);
    if (h === undefined) {
      if (this.addrs.length > this.max) return 0;
      h = this.addrs.length;
      const copy = Uint8Array.from(addr.subarray(0, 16));
      this.addrs.push(copy);
      this.sums.push(onesSum(copy, 0, 16, 0));
      this.byKey.set(key, h);
    }
    this.lastHandle = h;
    return h;
  }

  /** The handle of addr if it has one, else 0 (does not add). */
  find(addr: Uint8Array): number {
    return this.byKey.get(keyOf(addr)) ?? 0;
  }

  /** The 16 bytes of a handle (do not modify). */
  bytes(h: number): Uint8Array {
    return this.addrs[h] ?? this.addrs[0]!;
  }

  text(h: number): string {
    return ipv6ToString(this.bytes(h));
  }

  /** Unfolded sum of both addresses' 16-bit words: the address part of the IPv6 pseudo-header. */
  pairSum(a: number, b: number): number {
    return (this.sums[a] ?? 0) + (this.sums[b] ?? 0);
  }
}

function sameAddress(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

function keyOf(a: Uint8Array): string {
  let s = '';
  for (let i = 0; i < 16; i += 2) s += String.fromCharCode((a[i]! << 8) | a[i + 1]!);
  return s;
}
