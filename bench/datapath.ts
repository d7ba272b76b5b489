/**
 * The data path's per-packet cost with no I/O, ESP next to OpenVPN: one core sealing and opening 1400-byte inner
 * packets with AES-256-GCM through our own OutboundSa/InboundSa (ESP, RFC 4106) and DataChannelKey (OpenVPN
 * P_DATA_V2), the exact objects the sessions use. Rounds alternate between the two; the result is µs per packet
 * for each step. Run by run.ts in-process after a warm-up (so both are JIT-compiled).
 */
import { performance } from 'node:perf_hooks';
import { ESP_SUITES } from '../src/crypto/ipsec-algorithms.js';
import { InboundSa, OutboundSa } from '../src/ipsec/esp-sa.js';
import { DataChannelKey } from '../src/openvpn/datachannel.js';
import { sliceKey2 } from '../src/openvpn/keys.js';

export interface DataPathRound {
  espSealUs: number;
  espOpenUs: number;
  ovpnSealUs: number;
  ovpnOpenUs: number;
}

/** A 1400-byte IPv4/UDP packet (valid header, zero payload). */
function innerPacket(bytes: number): Buffer {
  const p = Buffer.alloc(bytes);
  p.writeUInt8(0x45, 0);
  p.writeUInt16BE(bytes, 2);
  p.writeUInt8(64, 8);
  p.writeUInt8(17, 9);
  p.set([10, 0, 0, 1], 12);
  p.set([10, 0, 0, 2], 16);
  p.writeUInt16BE(bytes - 20, 24);
  return p;
}

function timePerPacket(n: number, fn: (i: number) => void): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  return ((performance.now() - t0) * 1000) / n;
}

/** One ESP round: n seals, then n opens of what was sealed (fresh SAs, so sequence numbers start at 1). */
function espRound(n: number, inner: Buffer): { seal: number; open: number } {
  const suite = ESP_SUITES.aes256gcm16!;
  const encKey = Buffer.alloc(suite.encKeyBytes + suite.saltBytes, 7);
  const out = new OutboundSa({ spi: 0x1000, suite, encKey, integKey: Buffer.alloc(0) });
  const inb = new InboundSa({ spi: 0x1000, suite, encKey, integKey: Buffer.alloc(0), replayWindow: 1024 });
  const sealed: Uint8Array[] = new Array(n);
  const seal = timePerPacket(n, (i) => (sealed[i] = out.seal(inner)));
  let bad = 0;
  const open = timePerPacket(n, (i) => {
    if (!('packet' in inb.open(sealed[i]!))) bad++;
  });
  if (bad) throw new Error(`ESP: ${bad} of ${n} packets did not open`);
  return { seal, open };
}

/** One OpenVPN round: n encrypts by the client's key, then n decrypts by the server's. */
function ovpnRound(n: number, inner: Buffer): { seal: number; open: number } {
  const key2 = Buffer.alloc(256, 9);
  const client = new DataChannelKey({ keyId: 0, cipher: 'AES-256-GCM', keys: sliceKey2(key2, 'normal'), peerId: 1, replayWindow: 1024 });
  const server = new DataChannelKey({ keyId: 0, cipher: 'AES-256-GCM', keys: sliceKey2(key2, 'inverse'), peerId: 1, replayWindow: 1024 });
  const sealed: Buffer[] = new Array(n);
  const seal = timePerPacket(n, (i) => (sealed[i] = client.encrypt(inner)));
  let bad = 0;
  const open = timePerPacket(n, (i) => {
    if (server.decrypt(sealed[i]!).length !== inner.length) bad++;
  });
  if (bad) throw new Error(`OpenVPN: ${bad} of ${n} packets did not decrypt`);
  return { seal, open };
}

/** `rounds` alternating rounds of `packets` packets each, after one small warm-up round of each. */
export function measureDataPath(packets: number, rounds: number, innerBytes = 1400): DataPathRound[] {
  const inner = innerPacket(innerBytes);
  espRound(2000, inner);
  ovpnRound(2000, inner);
  const out: DataPathRound[] = [];
  for (let r = 0; r < rounds; r++) {
    const first = r % 2 === 0;
    const a = first ? espRound(packets, inner) : undefined;
    const o = ovpnRound(packets, inner);
    const e = a ?? espRound(packets, inner);
    out.push({ espSealUs: e.seal, espOpenUs: e.open, ovpnSealUs: o.seal, ovpnOpenUs: o.open });
  }
  return out;
}
