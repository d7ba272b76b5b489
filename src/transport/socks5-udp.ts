/**
 * A UDP transport through a SOCKS5 proxy's UDP ASSOCIATE: the TCP control connection stays open for the
 * life of the association (its end ends the transport), and every datagram to and from the relay carries
 * the RFC 1928 §7 header naming the VPN server. Datagrams from anyone but the relay, or relayed from
 * anyone but the server, are dropped and counted.
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type net from 'node:net';
import { TransportEmitter, TransportError, mapSocketError } from './common.js';
import { decodeUdpDatagram, encodeAddress, socks5UdpAssociate, type SocksAddress } from './socks5.js';
import type { Transport, TransportOptions } from './types.js';
import { describeProxy, type UpstreamProxy } from './upstream-proxy.js';

type State = 'idle' | 'connecting' | 'open' | 'closed';

export class Socks5UdpTransport extends TransportEmitter implements Transport {
  readonly kind = 'udp' as const;
  private state: State = 'idle';
  private control: net.Socket | undefined;
  private socket: dgram.Socket | undefined;
  private relay: SocksAddress | undefined;
  private header: Buffer | undefined;
  private connectPromise: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  private readonly abort = new AbortController();
  droppedForeign = 0;
  droppedMalformed = 0;
  droppedNotOpen = 0;
  packetsSent = 0;
  packetsReceived = 0;

  constructor(
    private readonly opts: TransportOptions,
    private readonly proxy: UpstreamProxy,
  ) {
    super();
  }

  get localAddress(): string | undefined {
    return this.state === 'open' ? this.socket?.address().address : undefined;
  }
  get localPort(): number | undefined {
    return this.state === 'open' ? this.socket?.address().port : undefined;
  }
  /** The proxy's UDP relay in use. */
  get relayAddress(): SocksAddress | undefined {
    return this.relay;
  }

  connect(): Promise<void> {
    if (this.connectPromise) return this.connectPromise;
    if (this.state === 'closed') return Promise.reject(this.closedError());
    this.state = 'connecting';
    this.connectPromise = this.doConnect();
    return this.connectPromise;
  }

  private async doConnect(): Promise<void> {
    const { host, port } = this.opts;
    try {
      this.header = Buffer.concat([Buffer.from([0, 0, 0]), encodeAddress(host, port)]);
      const { control, relay } = await socks5UdpAssociate(this.proxy, {
        connectTimeoutMs: this.opts.connectTimeoutMs,
        localAddress: this.opts.localAddress,
        signal: this.abort.signal,
      });
      if (this.state !== 'connecting') {
        control.destroy();
        throw this.closedError();
      }
      this.control = control;
      this.relay = relay;
      control.on('data', () => {}); // nothing is expected; keep the stream flowing
      control.on('error', () => {});
      control.on('close', this.onControlClose);
      control.resume();
      const sock = dgram.createSocket({ type: isIP(relay.host) === 6 ? 'udp6' : 'udp4' });
      this.socket = sock;
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.connect(relay.port, relay.host, () => {
          sock.off('error', reject);
          resolve();
        });
      });
      if (this.state !== 'connecting') throw this.closedError();
      try {
        sock.setRecvBufferSize(1024 * 1024);
        sock.setSendBufferSize(1024 * 1024);
      } catch {
        /* best effort */
      }
      sock.on('message', this.onMessage);
      sock.on('error', this.onSocketError);
      this.state = 'open';
    } catch (err) {
      this.release();
      this.state = 'closed';
      throw err instanceof TransportError ? err : mapSocketError(err, { proto: 'udp', host, port, phase: 'connect', fatal: true });
    }
  }

  private readonly onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    const relay = this.relay!;
    if (rinfo.port !== relay.port || rinfo.address !== relay.host) {
      this.droppedForeign++;
      return;
    }
    let d: { from: SocksAddress; payload: Buffer };
    try {
      d = decodeUdpDatagram(msg);
    } catch {
      this.droppedMalformed++;
      return;
    }
    // The relay names the server by address; when we named it by a host name only the port can be checked.
    if (d.from.port !== this.opts.port || (isIP(this.opts.host) !== 0 && d.from.host !== this.opts.host) || d.payload.length === 0) {
      this.droppedForeign++;
      return;
    }
    this.packetsReceived++;
    this.emitPacket(d.payload);
  };

  private readonly onSocketError = (err: Error): void => {
    if (this.state !== 'open') return;
    const r = this.relay!;
    this.emitError(mapSocketError(err, { proto: 'udp', host: r.host, port: r.port, phase: 'io', fatal: false }));
  };

  private readonly onControlClose = (): void => {
    if (this.state !== 'open') return;
    this.state = 'closed';
    this.release();
    this.emitError(
      new TransportError('TRANSPORT_CLOSED', `the ${describeProxy(this.proxy)} closed the control connection of our UDP association`, { fatal: true }),
    );
    this.emitClose();
  };

  send(packet: Uint8Array): void {
    const sock = this.socket;
    if (this.state !== 'open' || !sock) {
      this.droppedNotOpen++;
      return;
    }
    const h = this.header!;
    const out = Buffer.allocUnsafe(h.length + packet.length);
    h.copy(out, 0);
    out.set(packet, h.length);
    this.packetsSent++;
    try {
      sock.send(out);
    } catch (err) {
      this.onSocketError(err as Error);
    }
  }

  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    const wasOpen = this.state === 'open';
    const wasConnecting = this.state === 'connecting';
    this.state = 'closed';
    if (wasConnecting) this.abort.abort(this.closedError());
    this.closePromise = this.release().then(() => {
      if (wasOpen) this.emitClose();
    });
    return this.closePromise;
  }

  private release(): Promise<void> {
    const sock = this.socket;
    const control = this.control;
    this.socket = undefined;
    this.control = undefined;
    control?.off('close', this.onControlClose);
    control?.destroy();
    return new Promise<void>((resolve) => {
      if (!sock) return resolve();
      try {
        sock.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  private closedError(): TransportError {
    return new TransportError('TRANSPORT_CLOSED', 'UDP transport through the SOCKS5 proxy closed before its association was set up', { fatal: true });
  }
}
