/**
 * TcpSocket: a net.Socket-style Duplex over one TcpConnection, so that code written for net.Socket
 * (proxies piping a client socket to it, TLS over it) works unchanged.
 *
 * - 'connect'/'ready' when the handshake completes; 'error' with a VpnError (CONN_REFUSED, HOST_UNREACHABLE,
 *   CONNECT_TIMEOUT, TRANSPORT_CLOSED for a reset or a dead peer), then 'close' (with hadError, as net.Socket).
 * - write() applies backpressure: a chunk's callback is held while the connection's send buffer is over
 *   its limit, so write() returns false once writableHighWaterMark more bytes queue up; 'drain' follows.
 * - end() sends FIN after the queued data (half-close); with allowHalfOpen false (the net default) the
 *   socket ends its side by itself when the peer's FIN arrives.
 * - destroy() behaves like close(2): graceful FIN in the background, or RST when received data was unread;
 *   resetAndDestroy() always sends RST.
 * - The receive window follows what the application has read: data sits in the Readable buffer until
 *   consumed, and _read() reports the remaining amount to the connection (which reopens the window).
 */
import { Duplex } from 'node:stream';
import type { VpnError } from '../../errors.js';
import { ipv4ToString } from '../../wire/ipv4.js';
import type { ConnEvents, TcpConnection } from './connection.js';
import { TcpState } from './connection.js';

export interface TcpSocketOptions {
  allowHalfOpen?: boolean;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
}

/** What the socket needs from its stack. */
export interface SocketDriver {
  now(): number;
  /** Batch in-order data until the current batch of packets is processed (see TcpStackOptions.defer). */
  readonly defer?: (fn: () => void) => void;
}

type WriteCb = (err?: Error | null) => void;

export class TcpSocket extends Duplex implements ConnEvents {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteFamily = 'IPv4';
  bytesRead = 0;
  connecting: boolean;
  private written = 0;
  private pendingCb: WriteCb | undefined;
  private failed = false;
  private closedWithError = false;
  /** In-order data received in this batch, pushed as one chunk (when the driver defers). */
  private pend: Buffer[] = [];
  private pendBytes = 0;
  private pendQueued = false;
  private readonly flushPendCb = () => this.flushPending();

  constructor(
    private readonly conn: TcpConnection,
    private readonly drv: SocketDriver,
    connecting: boolean,
    opts: TcpSocketOptions = {},
  ) {
    super({
      allowHalfOpen: opts.allowHalfOpen ?? false,
      readableHighWaterMark: opts.readableHighWaterMark ?? 64 * 1024,
      writableHighWaterMark: opts.writableHighWaterMark ?? 64 * 1024,
      decodeStrings: true,
      emitClose: true,
      autoDestroy: true,
    });
    this.connecting = connecting;
    this.remoteAddress = ipv4ToString(conn.remoteAddr);
    this.remotePort = conn.remotePort;
    this.localAddress = ipv4ToString(conn.localAddr);
    this.localPort = conn.localPort;
    conn.events = this;
  }

  /** The underlying connection (state, counters) for diagnostics and tests. */
  get connection(): TcpConnection {
    return this.conn;
  }
  get bytesWritten(): number {
    return this.written;
  }
  get pending(): boolean {
    return this.connecting;
  }
  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.destroyed) return 'closed';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  // ---- ConnEvents ----
  onConnect(): void {
    this.connecting = false;
    process.nextTick(() => {
      if (this.destroyed) return;
      this.emit('connect');
      this.emit('ready');
    });
  }
  onData(data: Buffer): void {
    this.bytesRead += data.length;
    const defer = this.drv.defer;
    if (!defer) {
      this.push(data);
      this.conn.rcvUnread = this.readableLength;
      return;
    }
    // One push (and so one write downstream, e.g. to a proxy client) per batch instead of per segment.
    this.pend.push(data);
    this.pendBytes += data.length;
    this.conn.rcvUnread = this.readableLength + this.pendBytes;
    if (!this.pendQueued) {
      this.pendQueued = true;
      defer(this.flushPendCb);
    }
  }
  private flushPending(): void {
    this.pendQueued = false;
    const n = this.pend.length;
    if (n === 0) return;
    const chunk = n === 1 ? this.pend[0]! : Buffer.concat(this.pend, this.pendBytes);
    this.pend = [];
    this.pendBytes = 0;
    if (!this.destroyed) this.push(chunk);
    this.conn.rcvUnread = this.readableLength;
  }
  onEnd(): void {
    this.flushPending();
    this.push(null);
  }
  onDrain(): void {
    const cb = this.pendingCb;
    if (cb) {
      this.pendingCb = undefined;
      cb();
    }
  }
  onError(err: VpnError): void {
    if (this.failed) return;
    this.flushPending(); // data that arrived before the reset is delivered, as with a kernel socket
    this.failed = true;
    this.connecting = false;
    process.nextTick(() => {
      if (!this.destroyed) this.destroy(err);
    });
  }
  onTimeout(): void {
    this.emit('timeout');
  }

  // ---- Duplex implementation ----
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: WriteCb): void {
    this.written += chunk.length;
    if (this.conn.send(chunk, this.drv.now())) cb();
    else this.pendingCb = cb;
  }
  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, cb: WriteCb): void {
    let ok = true;
    const now = this.drv.now();
    for (const c of chunks) {
      this.written += c.chunk.length;
      ok = this.conn.send(c.chunk, now);
    }
    if (ok) cb();
    else this.pendingCb = cb;
  }
  override _final(cb: WriteCb): void {
    this.conn.shutdown(this.drv.now());
    cb();
  }
  override _read(): void {
    this.conn.appRead(this.readableLength, this.drv.now());
  }
  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.connecting = false;
    this.closedWithError = err !== null && err !== undefined;
    const c = this.conn;
    if (c.events === this) {
      c.events = undefined;
      if (!c.isClosed()) {
        if (err) c.reset(this.drv.now());
        else {
          c.rcvUnread = this.readableLength + this.pendBytes;
          c.close(this.drv.now());
        }
      }
    }
    this.pendingCb = undefined;
    cb(err);
  }

  /** 'close' carries `hadError` as net.Socket's does (true after a reset, refusal, timeout or destroy(err)). */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'close' && args.length === 0) return super.emit('close', this.closedWithError);
    return super.emit(event, ...args);
  }

  // ---- net.Socket API ----
  setNoDelay(noDelay = true): this {
    this.conn.setNoDelay(noDelay, this.drv.now());
    return this;
  }
  setKeepAlive(enable = false, initialDelay = 0): this {
    this.conn.setKeepAlive(enable, initialDelay, this.drv.now());
    return this;
  }
  setTimeout(ms: number, cb?: () => void): this {
    this.conn.setIdleTimeout(ms, this.drv.now());
    if (cb) {
      if (ms === 0) this.removeListener('timeout', cb);
      else this.once('timeout', cb);
    }
    return this;
  }
  /** Abort with RST. */
  resetAndDestroy(): this {
    const c = this.conn;
    if (c.events === this) {
      c.events = undefined;
      c.reset(this.drv.now());
    }
    return this.destroy();
  }
  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: 'IPv4', port: this.localPort };
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  /** TCP state name (ESTABLISHED, FIN_WAIT_2 ...). */
  get tcpState(): string {
    return this.conn.state === TcpState.CLOSED && !this.destroyed ? 'CLOSED' : this.conn.stateName;
  }
}
