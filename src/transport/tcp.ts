/**
 * TCP transport with OpenVPN's framing: every packet is preceded by a uint16 big-endian length that does
 * not count itself. A zero-length frame or one longer than maxPacketSize is a protocol error (the stream
 * is out of sync or not OpenVPN): the connection is dropped with a PROTOCOL error.
 *
 * Reassembly: a frame that lies whole inside one read chunk is delivered as a view of that chunk (no
 * copy); only frames split across chunks are copied, into one buffer reused for every split frame.
 */
import net from 'node:net';
import { VpnError } from '../errors.js';
import { TransportEmitter, TransportError, mapSocketError } from './common.js';
import { dialUpstream } from './proxy-dial.js';
import type { Transport, TransportOptions } from './types.js';
import type { UpstreamProxy } from './upstream-proxy.js';
import { hostPort } from '../util/host-port.js';

export const TCP_FRAME_HEADER = 2;
export const DEFAULT_MAX_PACKET_SIZE = 16384;

export interface TcpTransportOptions extends TransportOptions {
  /** Largest packet accepted from the server (default 16384; at most 65535). */
  maxPacketSize?: number;
  /** Drop outgoing packets (counted) while more than this many bytes wait in the socket (default 4 MiB). */
  maxQueuedBytes?: number;
  /** After close(), how long to wait for queued bytes to flush before destroying the socket (default 1000 ms). */
  closeGraceMs?: number;
}

/**
 * Incremental decoder of length-prefixed frames. push() chunks as they arrive; complete frames go to
 * onFrame (a view valid until onFrame returns). After a framing error nothing more is delivered.
 */
export class TcpFrameDecoder {
  private hi = -1; // first byte of a split length header
  private bodyLen = -1; // >= 0 while a split frame body is being collected
  private have = 0;
  private acc: Buffer | undefined;
  private failed = false;
  /** Set by the owner to stop delivery mid-chunk (e.g. the transport was closed from onFrame). */
  stopped = false;

  constructor(
    private readonly maxPacketSize: number,
    private readonly onFrame: (frame: Buffer) => void,
    private readonly onError: (err: VpnError) => void,
  ) {}

  /** Bytes of an incomplete frame held (header byte included). */
  get pendingBytes(): number {
    return (this.hi >= 0 ? 1 : 0) + (this.bodyLen >= 0 ? TCP_FRAME_HEADER + this.have : 0);
  }

  push(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    while (i < n && !this.failed && !this.stopped) {
      if (this.bodyLen < 0) {
        let len: number;
        if (this.hi >= 0) {
          len = (this.hi << 8) | chunk[i]!;
          this.hi = -1;
          i += 1;
        } else if (i + 1 < n) {
          len = (chunk[i]! << 8) | chunk[i + 1]!;
          i += 2;
        } else {
          this.hi = chunk[i]!;
          return;
        }
        if (len === 0 || len > this.maxPacketSize) {
          this.failed = true;
          this.onError(
            new VpnError(
              'PROTOCOL',
              len === 0
                ? 'TCP framing error: zero-length packet (stream out of sync, or not an OpenVPN server)'
                : `TCP framing error: packet length ${len} > ${this.maxPacketSize} (stream out of sync, or not an OpenVPN server)`,
            ),
          );
          return;
        }
        if (i + len <= n) {
          const frame = chunk.subarray(i, i + len);
          i += len;
          this.onFrame(frame);
          continue;
        }
        this.bodyLen = len;
        this.have = 0;
        if (!this.acc) this.acc = Buffer.allocUnsafe(this.maxPacketSize);
      }
      const take = Math.min(this.bodyLen - this.have, n - i);
      chunk.copy(this.acc!, this.have, i, i + take);
      this.have += take;
      i += take;
      if (this.have === this.bodyLen) {
        const len = this.bodyLen;
        this.bodyLen = -1;
        this.have = 0;
        this.onFrame(this.acc!.subarray(0, len));
      }
    }
  }
}

type State = 'idle' | 'connecting' | 'open' | 'closed';

export class TcpTransport extends TransportEmitter implements Transport {
  readonly kind = 'tcp' as const;
  private state: State = 'idle';
  private socket: net.Socket | undefined;
  private connectPromise: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  private abortConnect: ((err: Error) => void) | undefined;
  private failure: TransportError | VpnError | undefined;
  private readonly decoder: TcpFrameDecoder;
  private readonly maxPacketSize: number;
  droppedNotOpen = 0;
  droppedQueueFull = 0;
  packetsSent = 0;
  packetsReceived = 0;

  constructor(private readonly opts: TcpTransportOptions) {
    super();
    this.maxPacketSize = Math.min(opts.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE, 0xffff);
    this.decoder = new TcpFrameDecoder(this.maxPacketSize, this.onFrame, this.onFramingError);
  }

  get localAddress(): string | undefined {
    return this.state === 'open' ? this.socket?.localAddress : undefined;
  }
  get localPort(): number | undefined {
    return this.state === 'open' ? this.socket?.localPort : undefined;
  }
  /** Bytes queued in the socket and not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.socket?.writableLength ?? 0;
  }

  connect(): Promise<void> {
    if (this.connectPromise) return this.connectPromise;
    if (this.state === 'closed')
      return Promise.reject(new TransportError('TRANSPORT_CLOSED', 'TCP transport already closed', { fatal: true }));
    this.state = 'connecting';
    if (this.opts.upstreamProxy) {
      this.connectPromise = this.connectThroughProxy(this.opts.upstreamProxy);
      return this.connectPromise;
    }
    const { host, port, localAddress } = this.opts;
    const timeoutMs = this.opts.connectTimeoutMs ?? 10_000;
    this.connectPromise = new Promise<void>((resolve, reject) => {
      const family = this.opts.family;
      const sock = net.connect({ host, port, noDelay: true, ...(family ? { family } : {}), ...(localAddress ? { localAddress } : {}) });
      this.socket = sock;
      const finish = (err?: Error) => {
        clearTimeout(timer);
        sock.off('connect', onConnect);
        sock.off('error', onError);
        this.abortConnect = undefined;
        if (err) {
          sock.destroy();
          this.socket = undefined;
          this.state = 'closed';
          reject(err);
        } else resolve();
      };
      const onConnect = () => {
        if (this.state !== 'connecting') return;
        this.state = 'open';
        sock.on('data', this.onData);
        sock.on('error', this.onSocketError);
        sock.on('close', this.onSocketClose);
        finish();
      };
      const onError = (err: Error) => finish(mapSocketError(err, { proto: 'tcp', host, port, phase: 'connect', fatal: true }));
      const timer = setTimeout(
        () =>
          finish(
            new TransportError('CONNECT_TIMEOUT', `TCP connect to ${hostPort(host, port)} timed out after ${timeoutMs} ms: server down or blocked by a firewall?`, {
              fatal: true,
            }),
          ),
        timeoutMs,
      );
      this.abortConnect = finish;
      sock.once('connect', onConnect);
      sock.once('error', onError);
    });
    return this.connectPromise;
  }

  /** The socket comes from the proxy dialer, already connected through the proxy to host:port. */
  private async connectThroughProxy(proxy: UpstreamProxy): Promise<void> {
    const ac = new AbortController();
    this.abortConnect = (err) => ac.abort(err);
    try {
      const { socket, head } = await dialUpstream(
        proxy,
        { host: this.opts.host, port: this.opts.port },
        { connectTimeoutMs: this.opts.connectTimeoutMs, localAddress: this.opts.localAddress, signal: ac.signal },
      );
      if (this.state !== 'connecting') {
        socket.destroy();
        throw new TransportError('TRANSPORT_CLOSED', 'TCP transport closed before the connection was established', { fatal: true });
      }
      socket.setNoDelay(true);
      this.socket = socket;
      this.state = 'open';
      socket.on('data', this.onData);
      socket.on('error', this.onSocketError);
      socket.on('close', this.onSocketClose);
      if (head.length) this.decoder.push(head);
      socket.resume();
    } catch (err) {
      this.state = 'closed';
      throw err;
    } finally {
      this.abortConnect = undefined;
    }
  }

  private readonly onData = (chunk: Buffer): void => {
    this.decoder.push(chunk);
  };

  private readonly onFrame = (frame: Buffer): void => {
    if (this.state !== 'open') {
      this.decoder.stopped = true;
      return;
    }
    this.packetsReceived++;
    this.emitPacket(frame);
  };

  private readonly onFramingError = (err: VpnError): void => {
    this.failure ??= err;
    this.socket?.destroy();
  };

  private readonly onSocketError = (err: Error): void => {
    this.failure ??= mapSocketError(err, { proto: 'tcp', host: this.opts.host, port: this.opts.port, phase: 'io', fatal: true });
  };

  private readonly onSocketClose = (): void => {
    if (this.state !== 'open') return; // closed by us: close() emits 'close'
    this.state = 'closed';
    this.socket = undefined;
    this.decoder.stopped = true;
    let err = this.failure;
    if (!err) {
      const partial = this.decoder.pendingBytes;
      err = new TransportError(
        'TRANSPORT_CLOSED',
        `${hostPort(this.opts.host, this.opts.port)} closed the TCP connection${partial ? ` in the middle of a packet (${partial} bytes pending)` : ''}`,
        { fatal: true },
      );
    }
    this.emitError(err);
    this.emitClose();
  };

  /** Frame and send one packet (copied into the framed buffer: the caller may reuse its buffer). */
  send(packet: Uint8Array): void {
    const sock = this.socket;
    if (this.state !== 'open' || !sock) {
      this.droppedNotOpen++;
      return;
    }
    const len = packet.length;
    if (len === 0 || len > 0xffff) {
      this.emitError(new TransportError('TRANSPORT_ERROR', `cannot frame a ${len}-byte packet for TCP (1..65535)`, { fatal: false }));
      return;
    }
    if (sock.writableLength > (this.opts.maxQueuedBytes ?? 4 * 1024 * 1024)) {
      this.droppedQueueFull++;
      return;
    }
    const buf = Buffer.allocUnsafe(TCP_FRAME_HEADER + len);
    buf[0] = len >> 8;
    buf[1] = len & 0xff;
    buf.set(packet, TCP_FRAME_HEADER);
    this.packetsSent++;
    sock.write(buf);
  }

  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    const wasOpen = this.state === 'open';
    const wasConnecting = this.state === 'connecting';
    this.state = 'closed';
    this.decoder.stopped = true;
    if (wasConnecting)
      this.abortConnect?.(new TransportError('TRANSPORT_CLOSED', 'TCP transport closed before the connection was established', { fatal: true }));
    const sock = this.socket;
    this.socket = undefined;
    this.closePromise = new Promise<void>((resolve) => {
      if (!sock || sock.destroyed) return resolve();
      sock.off('close', this.onSocketClose);
      sock.once('close', () => {
        clearTimeout(grace);
        resolve();
      });
      // Flush what is queued, send FIN, then release the handle; do not wait for the peer's FIN.
      const grace = setTimeout(() => sock.destroy(), this.opts.closeGraceMs ?? 1000);
      sock.end(() => sock.destroy());
    }).then(() => {
      if (wasOpen) this.emitClose();
    });
    return this.closePromise;
  }
}
