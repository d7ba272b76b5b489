/**
 * ESP header (RFC 4303 §2) and the UDP encapsulation of port 4500 (RFC 3948): codecs only, no crypto.
 *
 * A UDP payload on port 4500 is one of
 *  - a NAT-keepalive: exactly one byte 0xFF (RFC 3948 §2.3);
 *  - IKE behind the non-ESP marker: four zero bytes, then an IKE message (RFC 3948 §2.2; the marker is not
 *    part of the IKE message, RFC 7296 §2.23);
 *  - ESP: SPI (never 0, which is what makes the marker unambiguous) and sequence number, then the rest of
 *    the ESP packet (RFC 3948 §2.1).
 */
import { WireError } from '../errors.js';
import { readU32, writeU32 } from './ipv4.js';

/** SPI + sequence number. */
export const ESP_HEADER_LENGTH = 8;
/** The four zero bytes in front of IKE messages on port 4500. */
export const NON_ESP_MARKER_LENGTH = 4;
/** The single byte of a NAT-keepalive. */
export const NAT_KEEPALIVE_BYTE = 0xff;
/** The fixed IKE header (RFC 7296 §3.1): an IKE message is never shorter. */
const IKE_HEADER_LENGTH = 28;

export interface EspHeader {
  /** Security Parameters Index (uint32). */
  spi: number;
  /** Sequence number, the low 32 bits with ESN (uint32). */
  seq: number;
}

export type Udp4500Datagram =
  | { kind: 'keepalive' }
  /** `message` is the IKE message after the marker (a view into the datagram). */
  | { kind: 'ike'; message: Uint8Array }
  | { kind: 'esp' }
  | { kind: 'malformed'; reason: string };

/** Sorts a UDP payload received on port 4500 (never throws). */
export function classifyUdp4500(payload: Uint8Array): Udp4500Datagram {
  const n = payload.length;
  if (n === 1) return payload[0] === NAT_KEEPALIVE_BYTE ? { kind: 'keepalive' } : { kind: 'malformed', reason: `1-byte datagram 0x${payload[0]!.toString(16).padStart(2, '0')} is not a NAT-keepalive` };
  if (n < NON_ESP_MARKER_LENGTH) return { kind: 'malformed', reason: `${n}-byte datagram` };
  if (readU32(payload, 0) === 0) {
    if (n < NON_ESP_MARKER_LENGTH + IKE_HEADER_LENGTH) return { kind: 'malformed', reason: `IKE message of ${n - NON_ESP_MARKER_LENGTH} bytes after the non-ESP marker (< ${IKE_HEADER_LENGTH})` };
    return { kind: 'ike', message: payload.subarray(NON_ESP_MARKER_LENGTH) };
  }
  if (n < ESP_HEADER_LENGTH) return { kind: 'malformed', reason: `${n}-byte ESP packet (< ${ESP_HEADER_LENGTH})` };
  return { kind: 'esp' };
}

/** SPI and sequence number of an ESP packet at `offset`. Throws WireError when fewer than 8 bytes are there. */
export function parseEspHeader(buf: Uint8Array, offset = 0): EspHeader {
  if (offset < 0 || buf.length - offset < ESP_HEADER_LENGTH) {
    throw new WireError(`ESP packet too short: ${Math.max(0, buf.length - offset)} bytes`, 'length', Math.max(0, offset));
  }
  return { spi: readU32(buf, offset), seq: readU32(buf, offset + 4) };
}

const isU32 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;

/** Writes SPI and sequence number at out[offset..offset+8); returns offset + 8. RangeError for bad values. */
export function writeEspHeader(out: Uint8Array, offset: number, h: EspHeader): number {
  if (!isU32(h.spi)) throw new RangeError(`ESP SPI ${h.spi} is not a 32-bit unsigned integer`);
  if (!isU32(h.seq)) throw new RangeError(`ESP sequence number ${h.seq} is not a 32-bit unsigned integer`);
  if (offset < 0 || offset + ESP_HEADER_LENGTH > out.length) throw new RangeError(`no room for an ESP header at offset ${offset} of ${out.length}`);
  writeU32(out, offset, h.spi);
  writeU32(out, offset + 4, h.seq);
  return offset + ESP_HEADER_LENGTH;
}

/** A NAT-keepalive datagram (a fresh buffer: the transport may take ownership). */
export function buildNatKeepalive(): Uint8Array {
  return Uint8Array.of(NAT_KEEPALIVE_BYTE);
}

/** `00000000 || ike`: an IKE message as sent to port 4500. */
export function withNonEspMarker(ike: Uint8Array): Uint8Array {
  const out = new Uint8Array(NON_ESP_MARKER_LENGTH + ike.length);
  out.set(ike, NON_ESP_MARKER_LENGTH);
  return out;
}
