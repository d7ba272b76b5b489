/**
 * tshark as an independent ESP decryptor, and packet captures for the lab.
 *
 *   const cap = await lab.captureOn('esp', lab.espLink, { filter: 'udp port 4500' });
 *   // ... traffic ...
 *   await cap.stop();
 *   const pkts = await espInnerPackets(cap.file, gw.saSpecs());      // inner src/dst/proto, TCP stream, ...
 *   const { client, server } = await tsharkFollowTcp(cap.file, gw.saSpecs(), 0);
 *
 * Wireshark 4.0 (Debian 12) decrypts ESP given `-o esp.enable_encryption_decode:TRUE` and one
 * `-o uat:esp_sa:RECORD` per SA, RECORD being eight quoted, comma-separated fields:
 *   "IPv4","SRC","DST","0xSPI","ENCRYPTION","0xKEY","AUTHENTICATION","0xKEY"
 * (SRC/DST an address or "*"; names as in espSaRecord below; AEAD key = key || salt, authentication "NULL"
 * with an empty key). It finds ESP inside UDP 4500 by itself. It has no ChaCha20-Poly1305 for ESP, so
 * chacha20poly1305 SAs cannot be checked with it (espSaRecord throws). With
 * `esp.enable_authentication_check:TRUE` it also checks the ICV (fields esp.icv_good / esp.icv_bad).
 */
import { existsSync } from 'node:fs';
import { Daemon, LabError, run, tail, waitFor } from './exec.js';
import type { EspSaSpec, EspSuite } from './esp-gateway.js';

/** Wireshark 4.0's names for our suites in the esp_sa table: [encryption, authentication]. */
const WIRESHARK_ALGOS: Record<EspSuite, [string, string] | undefined> = {
  aes128gcm16: ['AES-GCM with 16 octet ICV [RFC4106]', 'NULL'],
  aes256gcm16: ['AES-GCM with 16 octet ICV [RFC4106]', 'NULL'],
  chacha20poly1305: undefined,
  'aes128-sha1': ['AES-CBC [RFC3602]', 'HMAC-SHA-1-96 [RFC2404]'],
  'aes256-sha256': ['AES-CBC [RFC3602]', 'HMAC-SHA-256-128 [RFC4868]'],
  'aes256-sha512': ['AES-CBC [RFC3602]', 'HMAC-SHA-512-256 [RFC4868]'],
};

/** True if tshark (Wireshark 4.0) can decrypt this suite. */
export function tsharkCanDecrypt(suite: EspSuite): boolean {
  return WIRESHARK_ALGOS[suite] !== undefined;
}

/** One esp_sa UAT record (the value after `uat:esp_sa:`). */
export function espSaRecord(sa: EspSaSpec): string {
  const algos = WIRESHARK_ALGOS[sa.suite];
  if (!algos) throw new LabError(`tshark (Wireshark 4.0) cannot decrypt ${sa.suite} ESP`);
  const q = (s: string): string => `"${s}"`;
  const spi = `0x${sa.spi.toString(16).padStart(8, '0')}`;
  const integ = sa.integKey.length ? `0x${sa.integKey.toString('hex')}` : '';
  return [q('IPv4'), q(sa.src || '*'), q(sa.dst || '*'), q(spi), q(algos[0]), q(`0x${sa.encKey.toString('hex')}`), q(algos[1]), q(integ)].join(',');
}

/** The tshark options that decrypt (and ICV-check) ESP with these SAs (ChaCha20-Poly1305 SAs left out). */
export function espDecryptArgs(sas: readonly EspSaSpec[]): string[] {
  const a = ['-o', 'esp.enable_encryption_decode:TRUE', '-o', 'esp.enable_authentication_check:TRUE'];
  for (const sa of sas) if (tsharkCanDecrypt(sa.suite)) a.push('-o', `uat:esp_sa:${espSaRecord(sa)}`);
  return a;
}

export interface TsharkFieldsOptions {
  /** Display filter (-Y). */
  filter?: string;
  /** Timeout (default 30 s). */
  timeoutMs?: number;
}

/**
 * Runs `tshark -r PCAP` with the SAs and `-T fields` for `fields`, every occurrence of a field joined with
 * ',' (so `ip.src` of a decrypted packet is "outer,inner"). Returns one array of values per packet.
 */
export async function tsharkEspFields(pcap: string, sas: readonly EspSaSpec[], fields: readonly string[], opts: TsharkFieldsOptions = {}): Promise<string[][]> {
  if (!existsSync(pcap)) throw new LabError(`no capture file ${pcap}`);
  const args = ['-n', '-r', pcap, ...espDecryptArgs(sas), '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,', '-E', 'separator=\t'];
  if (opts.filter) args.push('-Y', opts.filter);
  for (const f of fields) args.push('-e', f);
  const r = await run('tshark', args, { timeoutMs: opts.timeoutMs ?? 30_000 });
  return r.stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split('\t'));
}

/** One ESP packet of a capture as tshark saw it. */
export interface EspInnerPacket {
  frame: number;
  /** Outer addresses. */
  outerSrc: string;
  outerDst: string;
  spi: number;
  seq: number;
  /** tshark decrypted it (an inner IPv4 header was found). */
  decrypted: boolean;
  /** tshark checked the ICV: true good, false bad, undefined not checked. */
  icvGood?: boolean;
  /** Inner packet (when decrypted). */
  src?: string;
  dst?: string;
  proto?: number;
  icmpType?: number;
  icmpSeq?: number;
  tcpStream?: number;
  srcPort?: number;
  dstPort?: number;
  tcpLen?: number;
  tcpSeq?: number;
  /** Hex flags, e.g. "0x0012". */
  tcpFlags?: string;
  udpLen?: number;
}

const FIELDS = [
  'frame.number', 'ip.src', 'ip.dst', 'esp.spi', 'esp.sequence', 'ip.proto', 'esp.icv_good', 'esp.icv_bad',
  'icmp.type', 'icmp.seq', 'tcp.stream', 'tcp.srcport', 'tcp.dstport', 'tcp.len', 'tcp.seq_raw', 'tcp.flags',
  'udp.srcport', 'udp.dstport', 'udp.length',
] as const;

const num = (s: string | undefined): number | undefined => (s === undefined || s === '' ? undefined : Number(s));
const last = (s: string | undefined): string | undefined => (s ? s.split(',').pop() : undefined);

/**
 * Every ESP packet of `pcap` (UDP-encapsulated or not) with what tshark decrypted from it using `sas`: the
 * inner addresses, protocol, ICMP type/seq, TCP stream/ports/length/flags. ChaCha20-Poly1305 packets are
 * listed with decrypted false.
 */
export async function espInnerPackets(pcap: string, sas: readonly EspSaSpec[], opts: TsharkFieldsOptions = {}): Promise<EspInnerPacket[]> {
  const rows = await tsharkEspFields(pcap, sas, FIELDS, { ...opts, filter: opts.filter ? `esp && (${opts.filter})` : 'esp' });
  return rows.map((r) => {
    const f = Object.fromEntries(FIELDS.map((k, i) => [k, r[i] ?? ''])) as Record<(typeof FIELDS)[number], string>;
    const srcs = f['ip.src'].split(',');
    const dsts = f['ip.dst'].split(',');
    const protos = f['ip.proto'].split(',');
    const decrypted = srcs.length > 1;
    const p: EspInnerPacket = {
      frame: Number(f['frame.number']),
      outerSrc: srcs[0]!,
      outerDst: dsts[0]!,
      spi: Number(f['esp.spi'].split(',')[0]),
      seq: Number(f['esp.sequence'].split(',')[0]),
      decrypted,
      icvGood: f['esp.icv_good'] === '1' ? true : f['esp.icv_bad'] === '1' ? false : undefined,
    };
    if (decrypted) {
      p.src = srcs[srcs.length - 1];
      p.dst = dsts[dsts.length - 1];
      p.proto = num(protos[protos.length - 1]);
      p.icmpType = num(last(f['icmp.type']));
      p.icmpSeq = num(last(f['icmp.seq']));
      if (p.proto === 6) {
        p.tcpStream = num(f['tcp.stream']);
        p.srcPort = num(f['tcp.srcport']);
        p.dstPort = num(f['tcp.dstport']);
        p.tcpLen = num(f['tcp.len']);
        p.tcpSeq = num(f['tcp.seq_raw']);
        p.tcpFlags = f['tcp.flags'] || undefined;
      } else if (p.proto === 17) {
        // The inner UDP header is the last one (the first is the ESP-in-UDP encapsulation).
        p.srcPort = num(last(f['udp.srcport']));
        p.dstPort = num(last(f['udp.dstport']));
        p.udpLen = num(last(f['udp.length']));
      }
    }
    return p;
  });
}

/** The two directions of a TCP stream as `tshark -z follow,tcp,raw` reassembled them. */
export interface FollowedTcp {
  /** "addr:port" of the side that sent first (node 0) and its bytes. */
  clientAddr: string;
  client: Buffer;
  serverAddr: string;
  server: Buffer;
}

/** Follows TCP stream `stream` (tcp.stream index) inside the decrypted ESP of `pcap`. */
export async function tsharkFollowTcp(pcap: string, sas: readonly EspSaSpec[], stream: number, opts: { timeoutMs?: number } = {}): Promise<FollowedTcp> {
  if (!existsSync(pcap)) throw new LabError(`no capture file ${pcap}`);
  const r = await run('tshark', ['-n', '-r', pcap, ...espDecryptArgs(sas), '-q', '-z', `follow,tcp,raw,${stream}`], {
    timeoutMs: opts.timeoutMs ?? 30_000,
  });
  const lines = r.stdout.split('\n');
  const node = (n: number): string => lines.find((l) => l.startsWith(`Node ${n}: `))?.slice(`Node ${n}: `.length).trim() ?? '';
  const start = lines.findIndex((l) => l.startsWith('Node 1: '));
  if (start < 0) throw new LabError(`tshark follow,tcp,raw,${stream}: no stream in the output:\n${tail(r.stdout, 10)}`);
  const c: Buffer[] = [];
  const s: Buffer[] = [];
  for (const l of lines.slice(start + 1)) {
    if (l.startsWith('=====')) break;
    if (!l.trim()) continue;
    if (l.startsWith('\t')) s.push(Buffer.from(l.trim(), 'hex'));
    else c.push(Buffer.from(l.trim(), 'hex'));
  }
  return { clientAddr: node(0), client: Buffer.concat(c), serverAddr: node(1), server: Buffer.concat(s) };
}

export interface CaptureOptions {
  /** Network namespace (undefined: the caller's). */
  ns?: string;
  iface: string;
  /** Capture (BPF) filter, e.g. 'udp port 4500'. */
  filter?: string;
  /** Output file (pcap). */
  file?: string;
  /** Bytes kept per packet (default 65535). */
  snaplen?: number;
  /** How long to wait for dumpcap to start capturing (default 10 s). */
  timeoutMs?: number;
}

/** dumpcap's arguments for a capture into `file` (classic pcap). */
export function dumpcapArgs(o: CaptureOptions & { file: string }): string[] {
  // A 64 MiB kernel buffer: with the default 2 MiB, a loaded 2-core machine dropped packets of a capture that a
  // test then missed (the tampered datagram of the ESP gateway's self-check, once).
  const a = ['-i', o.iface, '-w', o.file, '-P', '-s', String(o.snaplen ?? 65535), '-B', '64', '-q'];
  if (o.filter) a.push('-f', o.filter);
  return a;
}

/** A running dumpcap. Create with `lab.captureOn()` or `captureOn()`. */
export class Capture {
  constructor(
    private readonly daemon: Daemon,
    /** The pcap file (complete after stop()). */
    readonly file: string,
  ) {}

  /** Resolves once dumpcap is capturing. */
  async ready(timeoutMs = 10_000): Promise<this> {
    const d = this.daemon;
    await waitFor(
      'dumpcap capturing',
      () => {
        if (/Capturing on /.test(d.output()) && existsSync(this.file)) return true;
        if (!d.running) throw new LabError(`dumpcap ${d.status}:\n${tail(d.output(), 10)}`);
        return false;
      },
      timeoutMs,
    ).catch(async (e: unknown) => {
      await d.stop(1000);
      throw e;
    });
    return this;
  }

  get running(): boolean {
    return this.daemon.running;
  }

  /** Stops dumpcap (SIGTERM: it flushes and closes the file) and waits for it. */
  async stop(graceMs = 3000): Promise<void> {
    await this.daemon.stop(graceMs);
  }

  /** dumpcap's messages. */
  output(): string {
    return this.daemon.output();
  }
}

/**
 * A capture outside the lab's lifecycle (the caller stops it): dumpcap on `iface` in `ns` into `file`.
 * Inside a lab prefer `lab.captureOn()`, which lab.stop() stops.
 */
export async function captureOn(opts: CaptureOptions & { file: string }): Promise<Capture> {
  const d = new Daemon({ ns: opts.ns, cmd: 'dumpcap', args: dumpcapArgs(opts), outFile: `${opts.file}.log` });
  return new Capture(d, opts.file).ready(opts.timeoutMs);
}

/** Wireshark 4.0's names in the ikev2_decryption_table for our IKE SA algorithm names (IkeEncr/IkeInteg .name). */
const WIRESHARK_IKE_ENCR: Record<string, string> = {
  AES_CBC_128: 'AES-CBC-128 [RFC3602]',
  AES_CBC_192: 'AES-CBC-192 [RFC3602]',
  AES_CBC_256: 'AES-CBC-256 [RFC3602]',
  AES_GCM_16_128: 'AES-GCM-128 with 16 octet ICV [RFC5282]',
  AES_GCM_16_192: 'AES-GCM-192 with 16 octet ICV [RFC5282]',
  AES_GCM_16_256: 'AES-GCM-256 with 16 octet ICV [RFC5282]',
  AES_GCM_12_128: 'AES-GCM-128 with 12 octet ICV [RFC5282]',
  AES_GCM_12_256: 'AES-GCM-256 with 12 octet ICV [RFC5282]',
  AES_GCM_8_128: 'AES-GCM-128 with 8 octet ICV [RFC5282]',
  AES_GCM_8_256: 'AES-GCM-256 with 8 octet ICV [RFC5282]',
};
const WIRESHARK_IKE_INTEG: Record<string, string> = {
  none: 'NONE [RFC4306]',
  HMAC_SHA1_96: 'HMAC_SHA1_96 [RFC2404]',
  HMAC_SHA2_256_128: 'HMAC_SHA2_256_128 [RFC4868]',
  HMAC_SHA2_384_192: 'HMAC_SHA2_384_192 [RFC4868]',
  HMAC_SHA2_512_256: 'HMAC_SHA2_512_256 [RFC4868]',
};

/**
 * tshark's verbose dissection of the IKE_AUTH messages of `pcap`, decrypted with one IKE SA's keys as our debug
 * log prints them: [SPIi, SPIr, encr, SK_ei, SK_er, integ, SK_ai, SK_ar] (hex; names as IkeEncr/IkeInteg).
 * Wireshark 4.0's ikev2_decryption_table takes SK_e* of AEAD ciphers with the salt, as we derive them.
 */
export async function tsharkIkeAuth(pcap: string, k: readonly string[]): Promise<string> {
  if (!existsSync(pcap)) throw new LabError(`no capture file ${pcap}`);
  const [spiI, spiR, encr, ei, er, integ, ai, ar] = k as [string, string, string, string, string, string, string, string];
  const e = WIRESHARK_IKE_ENCR[encr];
  const i = WIRESHARK_IKE_INTEG[integ];
  if (!e || !i) throw new LabError(`no Wireshark name for IKE encryption ${encr} / integrity ${integ}`);
  // Byte fields are bare hex in a UAT record, names quoted.
  const q = (s: string): string => `"${s}"`;
  const record = [spiI, spiR, ei, er, q(e), ai, ar, q(i)].join(',');
  const r = await run('tshark', ['-n', '-r', pcap, '-o', `uat:ikev2_decryption_table:${record}`, '-Y', 'isakmp.exchangetype == 35', '-V'], { timeoutMs: 30_000 });
  return r.stdout;
}
