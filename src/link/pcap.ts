/**
 * Packet capture in the classic pcap format (LINKTYPE_RAW: every record is a bare IPv4 packet), readable
 * by tcpdump/Wireshark/tshark. Writes go to a WriteStream and never block the packet path: when the
 * stream lags more than maxBufferedBytes behind, packets are dropped from the capture (and counted).
 */
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import type { Link, LinkConfig, PacketHandler } from './link.js';

export const PCAP_MAGIC = 0xa1b2c3d4;
export const LINKTYPE_RAW = 101;
export const PCAP_GLOBAL_HEADER_LENGTH = 24;
export const PCAP_RECORD_HEADER_LENGTH = 16;

export interface PcapWriterOptions {
  /** Largest number of bytes kept per packet (default 65535). */
  snaplen?: number;
  /** Drop packets from the capture while the stream has more than this many bytes queued (default 8 MiB). */
  maxBufferedBytes?: number;
  /** Wall-clock source in ms since the epoch, fractional for sub-ms resolution (default performance clock). */
  now?: () => number;
}

/** The 24-byte pcap file header (little-endian, version 2.4, LINKTYPE_RAW). */
export function pcapGlobalHeader(snaplen = 65535): Buffer {
  const h = Buffer.alloc(PCAP_GLOBAL_HEADER_LENGTH);
  h.writeUInt32LE(PCAP_MAGIC, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeInt32LE(0, 8); // thiszone
  h.writeUInt32LE(0, 12); // sigfigs
  h.writeUInt32LE(snaplen, 16);
  h.writeUInt32LE(LINKTYPE_RAW, 20);
  return h;
}

const defaultNow = (): number => performance.timeOrigin + performance.now();

export class PcapWriter {
  private readonly snaplen: number;
  private readonly maxBuffered: number;
  private readonly now: () => number;
  private closed = false;
  private closing: Promise<void> | undefined;
  private written = 0;
  private dropped = 0;
  private error: Error | undefined;

  /** Open (truncate) a file and write the global header. */
  static open(path: string, opts?: PcapWriterOptions): PcapWriter {
    return new PcapWriter(createWriteStream(path), opts);
  }

  /** Wrap any Writable (the global header is written immediately). The writer owns and ends the stream. */
  constructor(
    private readonly stream: Writable,
    opts: PcapWriterOptions = {},
  ) {
    this.snaplen = opts.snaplen ?? 65535;
    this.maxBuffered = opts.maxBufferedBytes ?? 8 * 1024 * 1024;
    this.now = opts.now ?? defaultNow;
    stream.on('error', (err: Error) => {
      this.error ??= err;
    });
    stream.write(pcapGlobalHeader(this.snaplen));
  }

  get packetsWritten(): number {
    return this.written;
  }
  get packetsDropped(): number {
    return this.dropped;
  }
  /** The first stream error, if any (the capture stops; the packet path is unaffected). */
  get lastError(): Error | undefined {
    return this.error;
  }

  /** Record one IPv4 packet (copied; the caller may reuse its buffer). Never throws. */
  write(packet: Uint8Array, timestampMs?: number): void {
    if (this.closed || this.error || this.stream.writableLength > this.maxBuffered) {
      this.dropped++;
      return;
    }
    const ts = timestampMs ?? this.now();
    const incl = Math.min(packet.length, this.snaplen);
    const rec = Buffer.allocUnsafe(PCAP_RECORD_HEADER_LENGTH + incl);
    const sec = Math.floor(ts / 1000);
    let usec = Math.round((ts - sec * 1000) * 1000);
    if (usec > 999_999) usec = 999_999;
    rec.writeUInt32LE(sec >>> 0, 0);
    rec.writeUInt32LE(usec, 4);
    rec.writeUInt32LE(incl, 8);
    rec.writeUInt32LE(packet.length, 12);
    rec.set(incl === packet.length ? packet : packet.subarray(0, incl), PCAP_RECORD_HEADER_LENGTH);
    this.stream.write(rec);
    this.written++;
  }

  /** Flush everything written so far and close the stream. Idempotent. Resolves even if the stream failed. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    const s = this.stream;
    this.closing = new Promise<void>((resolve) => {
      if (s.destroyed || s.closed) return resolve();
      const done = (): void => resolve();
      s.once('close', done);
      s.once('error', done);
      s.end();
    });
    return this.closing;
  }
}

/** A Link that records every packet sent and received to `writer`, then passes it on unchanged. */
export function withPcap(link: Link, writer: PcapWriter): Link {
  return {
    send(packet: Uint8Array): void {
      writer.write(packet);
      link.send(packet);
    },
    onReceive(handler: PacketHandler): void {
      link.onReceive((packet) => {
        writer.write(packet);
        handler(packet);
      });
    },
    get config(): LinkConfig | undefined {
      return link.config;
    },
    get mtu(): number {
      return link.mtu;
    },
  };
}
