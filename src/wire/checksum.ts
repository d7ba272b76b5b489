/**
 * The Internet checksum (RFC 1071) and the IPv4 pseudo-header sum used by UDP and TCP.
 *
 * Sums are kept as plain (unfolded) numbers so several ranges can be accumulated before folding:
 *
 *   let s = pseudoHeaderSum(src, dst, 6, len);
 *   s = onesSum(bytes, off, off + len, s);
 *   const csum = finishChecksum(s); // value to store in the packet
 *
 * Every range except the last must have an even length (an odd range is padded with a zero byte, as the
 * final byte of a packet is). A buffer that carries a valid checksum sums to 0 with `finishChecksum`.
 */

/** Add the 16-bit big-endian words of bytes[start, end) to `acc` (unfolded). */
export function onesSum(bytes: Uint8Array, start: number, end: number, acc = 0): number {
  let sum = acc;
  let i = start;
  const evenEnd = end - ((end - start) & 1);
  if (evenEnd - start >= 64) {
    // Sum 32-bit words: since 2^16 = 1 (mod 0xffff), folding a sum of 32-bit big-endian words gives the same
    // result as summing 16-bit words. A double holds the unfolded sum exactly far beyond any packet size.
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (; i + 16 <= evenEnd; i += 16) sum += dv.getUint32(i) + dv.getUint32(i + 4) + dv.getUint32(i + 8) + dv.getUint32(i + 12);
    for (; i + 4 <= evenEnd; i += 4) sum += dv.getUint32(i);
  }
  for (; i < evenEnd; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  return sum;
}

/** Fold an unfolded sum into 16 bits (end-around carry), without complementing. */
export function foldSum(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** Fold and complement: the value to store in a checksum field. */
export function finishChecksum(sum: number): number {
  return ~foldSum(sum) & 0xffff;
}

/** RFC 1071 checksum of bytes[start, end). 0 when computed over a range that includes a correct checksum. */
export function internetChecksum(bytes: Uint8Array, start = 0, end = bytes.length): number {
  return finishChecksum(onesSum(bytes, start, end, 0));
}

/** Unfolded sum of the IPv4 pseudo-header (src, dst, zero, protocol, upper-layer length). */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}

/**
 * Unfolded pseudo-header sum for a transport checksum: the IPv4 one from src/dst, or, when `sum` is set, that
 * pre-added address part (IPv6: ipv6AddressSum) plus protocol and length — the same words in a different order.
 */
export function pseudoSum(p: { src: number; dst: number; sum?: number | undefined }, protocol: number, length: number): number {
  return p.sum !== undefined ? p.sum + protocol + length : pseudoHeaderSum(p.src, p.dst, protocol, length);
}

/**
 * Incremental update (RFC 1624, eqn. 3): the new checksum after one 16-bit word of the covered data
 * changed from `oldWord` to `newWord` (e.g. a TTL decrement or a NAT port rewrite).
 */
export function updateChecksum(checksum: number, oldWord: number, newWord: number): number {
  // HC' = ~(~HC + ~m + m')
  const sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return ~foldSum(sum) & 0xffff;
}
