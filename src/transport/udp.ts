/**
 * UDP transport: one connected datagram socket, one OpenVPN packet per datagram.
 *
 * The socket is connect()ed, so the kernel only delivers datagrams from the server; anything else that
 * still arrives is dropped and counted. ICMP errors (port/host unreachable) show up on a connected
 * socket as ECONNREFUSED/EHOSTUNREACH on a later receive: they are reported as a non-fatal
 * TransportError (code CONN_REFUSED / HOST_UNREACHABLE, fatal=false) and the socket stays open, so the
 * session can decide whether to keep trying (the server may be restarting) or give up with close().
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { TransportEmitter, TransportError, mapSocketError } from './common.js';
import type { Transport, TransportOptions } from './types.js';
import { hostPort } from '../util/host-port.js';

export interface UdpTransportOptions extends TransportOptions {
  /** Kernel socket buffer sizes to request (bytes, default 1 MiB; failures are ignored). */
  socketBufferBytes?: number;
}

type State = 'idle' | 'connecting' | 'open' | 'closed';

export class UdpTransport extends TransportEmitter implements Transport {
  readonly kind = 'udp' as const;
  private state: State = 'idle';
  private socket: dgram.Socket | undefined;
  private remoteAddress = '';
  private connectPromise: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  private abortConnect: ((err: Error) => void) | undefined;
  /** Datagrams from another source (should not happen on a connected socket). */
  droppedForeign = 0;
  /** Packets given to send() while not open. */
  droppedNotOpen = 0;
  packetsSent = 0;
  packetsReceived = 0;

  constructor(private readonly opts: UdpTransportOptions) {
    super();
  }

  get localAddress(): string | undefined {
    return this.state === 'open' ? this.socket?.address().address : undefined;
  }
  get localPort(): number | undefined {
    return this.state === 'open' ? this.socket?.address().port : undefined;
  }
  /** The server address actually used (after name resolution). */
  get remote(): string {
    return this.remoteAddress;
  }

  connect(): Promise<void> {
    if (this.connectPromise) return this.connectPromise;
    if (this.state === 'closed') return Promise.reject(this.closedError('connect'));
    this.state = 'connecting';
    this.connectPromise = this.doConnect();
    return this.connectPromise;
  }

  private async doConnect(): Promise<void> {
    const { host, port } = this.opts;
    const timeoutMs = this.opts.connectTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const aborted = new Promise<never>((_, reject) => {
      this.abortConnect = reject;
      timer = setTimeout(
        () => reject(new TransportError('CONNECT_TIMEOUT', `UDP setup for ${hostPort(host, port)} timed out after ${timeoutMs} ms (name resolution or bind)`, { fatal: true })),
        timeoutMs,
      );
    });
    aborted.catch(() => {});
    try {
      await Promise.race([this.setup(), aborted]);
      if (this.state !== 'connecting') throw this.closedError('connect');
      this.state = 'open';
    } catch (err) {
      this.release();
      this.state = 'closed';
      throw err instanceof TransportError ? err : mapSocketError(err, { proto: 'udp', host, port, phase: 'connect', fatal: true });
    } finally {
      clearTimeout(timer);
      this.abortConnect = undefined;
    }
  }

  private async setup(): Promise<void> {
    const { host, port, localAddress } = this.opts;
    let address = host;
    let family = isIP(host);
    if (family === 0) {
      const r = await lookup(host, this.opts.family ? { family: this.opts.family } : {});
      address = r.address;
      family = r.family;
    }
    if (this.state !== 'connecting') throw this.closedError('connect');
    const sock = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
    this.socket = sock;
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error) => reject(e);
      sock.once('error', onErr);
      const doConnect = () =>
        sock.connect(port, address, () => {
          sock.off('error', onErr);
          resolve();
        });
      if (localAddress) sock.bind({ address: localAddress, port: 0, exclusive: true }, doConnect);
      else doConnect();
    });
    // The kernel's spelling of the peer, which is what rinfo.address carries: an IPv6 literal may be written
    // in many ways in a profile (leading zeros, uppercase, '::' placement) but arrives in one.
    this.remoteAddress = sock.remoteAddress().address;
    const bufBytes = this.opts.socketBufferBytes ?? 1024 * 1024;
    try {
      sock.setRecvBufferSize(bufBytes);
      sock.setSendBufferSize(bufBytes);
    } catch {
      /* best effort */
    }
    sock.on('message', this.onMessage);
    sock.on('error', this.onSocketError);
    sock.on('close', this.onSocketClose);
  }

  private readonly onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    if (rinfo.port !== this.opts.port || rinfo.address !== this.remoteAddress) {
      this.droppedForeign++;
      return;
    }
    this.packetsReceived++;
    this.emitPacket(msg);
  };

  private readonly onSocketError = (err: Error): void => {
    if (this.state !== 'open') return;
    this.emitError(mapSocketError(err, { proto: 'udp', host: this.opts.host, port: this.opts.port, phase: 'io', fatal: false }));
  };

  private readonly onSocketClose = (): void => {
    // Only reached when the socket closes without close() (should not happen with dgram); report it.
    if (this.state === 'open') {
      this.state = 'closed';
      this.socket = undefined;
      this.emitError(new TransportError('TRANSPORT_CLOSED', 'UDP socket closed unexpectedly', { fatal: true }));
      this.emitClose();
    }
  };

  /**
   * Send one datagram. The bytes are copied, so the caller may reuse its buffer at once (Node may queue
   * the datagram when the socket buffer is full). Dropped (and counted) when not open.
   */
  send(packet: Uint8Array, owned = false): void {
    const sock = this.socket;
    if (this.state !== 'open' || !sock) {
      this.droppedNotOpen++;
      return;
    }
    let copy: Uint8Array;
    if (owned) copy = packet;
    else {
      copy = Buffer.allocUnsafe(packet.length);
      copy.set(packet);
    }
    this.packetsSent++;
    try {
      // No callback: with one, Node queues a nextTick per datagram; without, a send error comes as the
      // socket's 'error' event, which onSocketError handles the same way.
      sock.send(copy);
    } catch (err) {
      this.onSocketError(err as Error);
    }
  }

  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    const wasOpen = this.state === 'open';
    const wasConnecting = this.state === 'connecting';
    this.state = 'closed';
    if (wasConnecting) this.abortConnect?.(this.closedError('connect'));
    const sock = this.socket;
    this.socket = undefined;
    this.closePromise = new Promise<void>((resolve) => {
      if (!sock) return resolve();
      sock.off('close', this.onSocketClose);
      try {
        sock.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    }).then(() => {
      if (wasOpen) this.emitClose();
    });
    return this.closePromise;
  }

  private release(): void {
    const sock = this.socket;
    this.socket = undefined;
    if (sock) {
      try {
        sock.close();
      } catch {
        /* not running */
      }
    }
  }

  private closedError(what: string): TransportError {
    return new TransportError('TRANSPORT_CLOSED', `UDP transport closed before ${what} completed`, { fatal: true });
  }
}
