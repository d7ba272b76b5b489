/**
 * OpenVPN compression framing (openvpn.md §4.8) as PayloadFraming objects for DataChannelKey /
 * StaticKeyChannel. Applied inside the encryption to every payload: IP packets, the keepalive ping and
 * OCC messages alike (§4.6).
 *
 * We NEVER compress on send (2.7 dropped it and 2.6 only does it with `allow-compression yes`; compression
 * under encryption leaks plaintext, VORACLE). On receive we decompress LZO and LZ4, bounded.
 *
 *   family   config                                send (uncompressed)                  receive
 *   none     (nothing)                             packet                               packet
 *   lzo      comp-lzo no|yes|adaptive, compress lzo 0xFA || packet                       0xFA || packet, 0x66 || LZO1X
 *   swap     compress, compress stub|lz4           0xFB || packet[1..] || packet[0]     0xFB swap form, 0x69 swap form = LZ4
 *   v2       compress stub-v2|lz4-v2               packet, or 0x50 0x00 || packet       raw, 0x50 0x00 || packet,
 *                                                  when packet[0] == 0x50               0x50 0x01 || LZ4
 *
 * Receive is lenient within a family: the stub forms (`comp-lzo no`, `compress stub`, `stub-v2`) also
 * decompress what the matching algorithm would have sent. 2.6 would drop such packets, but a server whose
 * config says `comp-lzo` while pushing `comp-lzo no` (or the other way round) exists in the wild, and
 * decoding costs nothing when it is not used. Anything outside the family is a WireError (count, drop).
 */
import { VpnError, WireError } from '../errors.js';
import { lz4DecompressInto } from '../crypto/lz4.js';
import { lzoDecompressInto } from '../crypto/lzo.js';
import type { PayloadFraming } from './datachannel.js';
import type { CompressionSetting } from './profile-types.js';
import type { PushedCompression } from './push.js';

/** Framing bytes (comp.h). */
export const COMP_BYTE = {
  /** LZO-compressed payload follows (lzo.c LZO_COMPRESS_BYTE). */
  LZO: 0x66,
  /** LZ4-compressed payload, swap form (comp-lz4.c LZ4_COMPRESS_BYTE). */
  LZ4: 0x69,
  /** Uncompressed, prefix form (NO_COMPRESS_BYTE). */
  NO_COMPRESS: 0xfa,
  /** Uncompressed, swap form (NO_COMPRESS_BYTE_SWAP). */
  NO_COMPRESS_SWAP: 0xfb,
  /** v2 framing: first byte 0x50 announces a method byte (COMP_ALGV2_INDICATOR_BYTE). */
  V2_INDICATOR: 0x50,
  V2_UNCOMPRESSED: 0x00,
  V2_LZ4: 0x01,
} as const;

/**
 * Default bound for a decompressed payload: a 1500-byte tun MTU plus room for tun-mtu 1600-ish servers
 * and OCC messages. Larger output is refused (WireError), so a decompression bomb costs at most this.
 */
export const DEFAULT_MAX_DECOMPRESSED = 2048;

export type FramingFamily = 'none' | 'lzo' | 'swap' | 'v2';

export interface CompressionFraming extends PayloadFraming {
  readonly family: FramingFamily;
  /** The setting this framing implements (undefined = none). */
  readonly setting: CompressionSetting | undefined;
  /** Largest decompressed payload accepted. */
  readonly maxDecompressed: number;
  /** Packets that arrived compressed (LZO or LZ4) and were decompressed. */
  readonly stats: { decompressed: number };
}

export interface FramingOptions {
  /** Bound for decompressed payloads (default DEFAULT_MAX_DECOMPRESSED; at least 64). */
  maxDecompressed?: number;
  /** See resolveCompression. */
  refusePushedAlgorithms?: boolean;
}

const COMPRESS_ALGOS = ['stub', 'stub-v2', 'lzo', 'lz4', 'lz4-v2'] as const;
type ClientCompressAlgo = (typeof COMPRESS_ALGOS)[number];

/** True if the setting names a real algorithm (the peer may send compressed payloads). */
export function isRealCompression(s: CompressionSetting | undefined): boolean {
  if (s === undefined) return false;
  if (s.kind === 'comp-lzo') return s.mode !== 'no';
  return s.algo === 'lzo' || s.algo === 'lz4' || s.algo === 'lz4-v2';
}

function describe(s: CompressionSetting | undefined): string {
  if (s === undefined) return 'no compression';
  return s.kind === 'comp-lzo' ? `comp-lzo ${s.mode}` : `compress ${s.algo}`;
}

/**
 * The compression setting in effect after a PUSH_REPLY: a pushed `comp-lzo` / `compress` replaces the
 * profile's (OpenVPN applies pushed compression options over its own); without one the profile's stays.
 *
 * Pushed real algorithms (`comp-lzo [yes|adaptive]`, `compress lzo|lz4|lz4-v2`) when the profile has no
 * compression: 2.6 refuses them ("server pushed compression settings that are not allowed and will result
 * in a non-working connection") because a 2.6 client with the default `allow-compression no` cannot
 * decompress. We CAN decompress both and never compress ourselves, so the connection does work and we
 * ACCEPT them by default: refusing would only break servers (old provider setups push `comp-lzo`) without
 * protecting anything, since the compression side that leaks (VORACLE) is the server's, which we cannot
 * switch off anyway. `refusePushedAlgorithms: true` restores 2.6's refusal (e.g. for a profile that says
 * `allow-compression no` explicitly and wants 2.6's behaviour).
 *
 * Throws VpnError PROTOCOL for a pushed `compress` algorithm we do not know (or `migrate`, which is
 * server-side only), and for a refused algorithm.
 */
export function resolveCompression(
  profile: CompressionSetting | undefined,
  pushed?: PushedCompression,
  opts: { refusePushedAlgorithms?: boolean } = {},
): CompressionSetting | undefined {
  if (pushed === undefined) return profile;
  let s: CompressionSetting;
  if (pushed.kind === 'comp-lzo') s = { kind: 'comp-lzo', mode: pushed.mode };
  else {
    const algo = pushed.algo.toLowerCase();
    if (!(COMPRESS_ALGOS as readonly string[]).includes(algo)) {
      throw new VpnError(
        'PROTOCOL',
        `server pushed "compress ${pushed.algo}", which a client cannot use; supported: ${COMPRESS_ALGOS.join(', ')}`,
      );
    }
    s = { kind: 'compress', algo: algo as ClientCompressAlgo };
  }
  if (opts.refusePushedAlgorithms && isRealCompression(s) && !isRealCompression(profile)) {
    throw new VpnError(
      'PROTOCOL',
      `server pushed "${describe(s)}" but the profile allows no compression (${describe(profile)}): server pushed compression settings that are not allowed`,
    );
  }
  return s;
}

function familyOf(s: CompressionSetting | undefined): FramingFamily {
  if (s === undefined) return 'none';
  if (s.kind === 'comp-lzo') return 'lzo';
  switch (s.algo) {
    case 'lzo':
      return 'lzo';
    case 'stub':
    case 'lz4':
      return 'swap';
    case 'stub-v2':
    case 'lz4-v2':
      return 'v2';
    default:
      // `compress migrate` is a server-side option (it decides per client what to push); a client with it
      // behaves as one without compression until the server pushes something.
      return 'none';
  }
}

function bad(message: string, offset = 0): WireError {
  return new WireError(`compression framing: ${message}`, 'compression', offset);
}

/**
 * The PayloadFraming for a profile setting and an optional pushed one (merged by resolveCompression).
 * frame() never compresses; unframe() strips/decompresses and throws WireError for anything else.
 */
export function framingFor(
  setting: CompressionSetting | undefined,
  pushed?: PushedCompression,
  opts: FramingOptions = {},
): CompressionFraming {
  const eff = resolveCompression(setting, pushed, opts);
  const max = opts.maxDecompressed ?? DEFAULT_MAX_DECOMPRESSED;
  if (!Number.isInteger(max) || max < 64 || max > 65536) throw new VpnError('INTERNAL', `maxDecompressed ${max} out of range 64..65536`);
  const family = familyOf(eff);
  // one scratch buffer per framing; the result is copied out so callers may keep it
  let scratch: Buffer | null = null;
  const stats = { decompressed: 0 };
  const inflate = (kind: 'lzo' | 'lz4', src: Uint8Array): Buffer => {
    scratch ??= Buffer.allocUnsafe(max);
    const n = kind === 'lzo' ? lzoDecompressInto(src, scratch) : lz4DecompressInto(src, scratch);
    stats.decompressed++;
    return Buffer.from(scratch.subarray(0, n));
  };
  const base = { family, setting: eff, maxDecompressed: max, stats };
  const name = eff === undefined ? 'none' : describe(eff);

  switch (family) {
    case 'none':
      return Object.freeze({ ...base, name, overhead: 0, frame: (p: Uint8Array) => p, unframe: (p: Buffer) => p });
    case 'lzo':
      return Object.freeze({
        ...base,
        name,
        overhead: 1,
        frame(p: Uint8Array): Uint8Array {
          const out = Buffer.allocUnsafe(p.length + 1);
          out[0] = COMP_BYTE.NO_COMPRESS;
          out.set(p, 1);
          return out;
        },
        unframe(p: Buffer): Buffer {
          if (p.length === 0) return p;
          const c = p[0]!;
          if (c === COMP_BYTE.NO_COMPRESS) return p.subarray(1);
          if (c === COMP_BYTE.LZO) return inflate('lzo', p.subarray(1));
          throw bad(`unexpected header byte 0x${c.toString(16).padStart(2, '0')} (expected 0xfa or 0x66 for ${name})`);
        },
      });
    case 'swap':
      return Object.freeze({
        ...base,
        name,
        overhead: 1,
        frame(p: Uint8Array): Uint8Array {
          if (p.length === 0) return p;
          const out = Buffer.allocUnsafe(p.length + 1);
          out[0] = COMP_BYTE.NO_COMPRESS_SWAP;
          out.set(p.subarray(1), 1);
          out[p.length] = p[0]!;
          return out;
        },
        unframe(p: Buffer): Buffer {
          if (p.length === 0) return p;
          const c = p[0]!;
          if (c !== COMP_BYTE.NO_COMPRESS_SWAP && c !== COMP_BYTE.LZ4) {
            throw bad(`unexpected header byte 0x${c.toString(16).padStart(2, '0')} (expected 0xfb or 0x69 for ${name})`);
          }
          // undo the swap: the original first byte travels at the end
          const n = p.length - 1;
          const body = Buffer.allocUnsafe(n);
          if (n > 0) {
            body[0] = p[n]!;
            p.copy(body, 1, 1, n);
          }
          return c === COMP_BYTE.LZ4 ? inflate('lz4', body) : body;
        },
      });
    case 'v2':
      return Object.freeze({
        ...base,
        name,
        overhead: 2,
        frame(p: Uint8Array): Uint8Array {
          if (p.length === 0 || p[0] !== COMP_BYTE.V2_INDICATOR) return p;
          const out = Buffer.allocUnsafe(p.length + 2);
          out[0] = COMP_BYTE.V2_INDICATOR;
          out[1] = COMP_BYTE.V2_UNCOMPRESSED;
          out.set(p, 2);
          return out;
        },
        unframe(p: Buffer): Buffer {
          if (p.length === 0 || p[0] !== COMP_BYTE.V2_INDICATOR) return p;
          if (p.length < 2) throw bad('v2 indicator without a method byte', 1);
          const m = p[1]!;
          if (m === COMP_BYTE.V2_UNCOMPRESSED) return p.subarray(2);
          if (m === COMP_BYTE.V2_LZ4) return inflate('lz4', p.subarray(2));
          throw bad(`unsupported v2 compression method ${m} for ${name}`, 1);
        },
      });
  }
}

/**
 * Compression lines for the peer-info (IV_*), as 2.6's comp_generate_peer_info_string: the stub
 * capabilities always; the algorithms only when the profile itself names a real one (so servers with
 * `compress migrate`/`comp-lzo` push no real compression to a profile that did not ask for it).
 */
export function compressionPeerInfo(setting: CompressionSetting | undefined): string[] {
  const lines: string[] = [];
  if (isRealCompression(setting)) lines.push('IV_LZ4=1', 'IV_LZ4v2=1', 'IV_LZO=1');
  else lines.push('IV_LZO_STUB=1');
  lines.push('IV_COMP_STUB=1', 'IV_COMP_STUBv2=1');
  return lines;
}

/** OCC options string: `comp-lzo` appears when any compression framing is in effect (§3.3). */
export function occHasCompLzo(setting: CompressionSetting | undefined): boolean {
  return familyOf(setting) !== 'none';
}
