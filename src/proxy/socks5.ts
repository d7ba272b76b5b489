/**
 * SOCKS5 front-end (RFC 1928) with username/password authentication (RFC 1929): CONNECT to IPv4 and IPv6
 * literals and domain names (resolved through the Routing, i.e. the VPN's DNS: socks5h works), UDP ASSOCIATE
 * relayed over the Routing's UDP (to IPv4 and IPv6 literals and names), and one reply code per failure:
 *   0x01 general failure, 0x02 not allowed by ruleset (--allow), 0x03 network unreachable (tunnel down),
 *   0x04 host unreachable (also NXDOMAIN), 0x05 connection refused, 0x06 TTL expired (connect timeout),
 *   0x07 command not supported (BIND and unknown), 0x08 address type not supported (unknown ATYP).
 * A wrong version byte (SOCKS4, HTTP, garbage) gets a plain close.
 */
import { createServer, isIPv4, isIPv6, type Server, type Socket } from 'node:net';
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { VpnError, WireError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { AccessList } from './access.js';
import { checkCredentials, type ProxyCredentials } from './auth.js';
import { isNetworkUnreachable, type UdpLike } from './dialer.js';
import { ipv6ToString, parseIpv6Address } from '../wire/ipv6.js';
import { ProxyMetrics } from './metrics.js';
import { errorReason, hostPort, logConnection, relay, type ConnectionLogFields } from './relay.js';
import type { Routing } from './router.js';
import { ListeningServer } from './listen.js';

export const SocksReply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;

const ATYP_IPV4 = 0x01;
const ATYP_DOMAIN = 0x03;
const ATYP_IPV6 = 0x04;
const CMD_CONNECT = 0x01;
const CMD_UDP_ASSOCIATE = 0x03;

/** The SOCKS5 reply code for a failure to reach a destination. */
export function socksReplyFor(err: unknown): number {
  if (!(err instanceof VpnError)) return SocksReply.GENERAL_FAILURE;
  if (isNetworkUnreachable(err)) return SocksReply.NETWORK_UNREACHABLE;
  switch (err.code) {
    case 'DNS_NXDOMAIN':
    case 'HOST_UNREACHABLE':
      return SocksReply.HOST_UNREACHABLE;
    case 'CONN_REFUSED':
      return SocksReply.CONNECTION_REFUSED;
    case 'CONNECT_TIMEOUT':
      return SocksReply.TTL_EXPIRED;
    default:
      return SocksReply.GENERAL_FAILURE;
  }
}

export interface SocksAddress {
  atyp: number;
  /** Dotted quad, domain name, or IPv6 text. */
  host: string;
  port: number;
}

/** Encode ATYP + ADDR + PORT for a reply or a UDP header (IPv4 or IPv6 literal, else a domain name). */
export function encodeAddress(host: string, port: number): Buffer {
  if (host.includes(':') && isIPv6(host)) {
    const b = Buffer.alloc(19);
    b[0] = ATYP_IPV6;
    b.set(parseIpv6Address(host), 1);
    b.writeUInt16BE(port, 17);
    return b;
  }
  if (isIPv4(host)) {
    const b = Buffer.alloc(7);
    b[0] = ATYP_IPV4;
    host.split('.').forEach((p, i) => (b[1 + i] = Number(p)));
    b.writeUInt16BE(port, 5);
    return b;
  }
  const name = Buffer.from(host.slice(0, 255), 'latin1');
  const b = Buffer.alloc(4 + name.length);
  b[0] = ATYP_DOMAIN;
  b[1] = name.length;
  name.copy(b, 2);
  b.writeUInt16BE(port, 2 + name.length);
  return b;
}

function ipv6Text(b: Uint8Array, off: number): string {
  return ipv6ToString(b.subarray(off, off + 16));
}

/**
 * Parse the header of a UDP ASSOCIATE datagram: RSV(2) FRAG(1) ATYP ADDR PORT, then data.
 * Throws WireError on malformed input.
 */
export function parseUdpDatagram(b: Uint8Array): { frag: number; dst: SocksAddress; data: Uint8Array } {
  if (b.length < 4) throw new WireError('datagram shorter than the SOCKS5 UDP header', 'rsv', 0);
  const frag = b[2]!;
  const atyp = b[3]!;
  let off = 4;
  let host: string;
  if (atyp === ATYP_IPV4) {
    if (b.length < off + 6) throw new WireError('truncated IPv4 address', 'dst.addr', off);
    host = `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
    off += 4;
  } else if (atyp === ATYP_DOMAIN) {
    if (b.length < off + 1) throw new WireError('missing name length', 'dst.addr', off);
    const len = b[off]!;
    if (len === 0) throw new WireError('empty domain name', 'dst.addr', off);
    if (b.length < off + 1 + len + 2) throw new WireError('truncated domain name', 'dst.addr', off);
    host = Buffer.from(b.buffer, b.byteOffset + off + 1, len).toString('latin1');
    off += 1 + len;
  } else if (atyp === ATYP_IPV6) {
    if (b.length < off + 18) throw new WireError('truncated IPv6 address', 'dst.addr', off);
    host = ipv6Text(b, off);
    off += 16;
  } else {
    throw new WireError(`unknown address type ${atyp}`, 'atyp', 3);
  }
  const port = (b[off]! << 8) | b[off + 1]!;
  off += 2;
  return { frag, dst: { atyp, host, port }, data: b.subarray(off) };
}

/** Reads exact byte counts from a socket during negotiation; detach() hands the socket over to a relay. */
class Reader {
  private bufs: Buffer[] = [];
  private len = 0;
  private want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private ended = false;
  private readonly onData = (c: Buffer) => {
    this.bufs.push(c);
    this.len += c.length;
    this.pump();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.pump();
  };

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
  }

  read(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.want = { n, resolve, reject };
      this.pump();
    });
  }

  private pump(): void {
    const w = this.want;
    if (!w) return;
    if (this.len >= w.n) {
      this.want = undefined;
      const all = this.bufs.length === 1 ? this.bufs[0]! : Buffer.concat(this.bufs, this.len);
      const out = all.subarray(0, w.n);
      const rest = all.subarray(w.n);
      this.bufs = rest.length ? [rest] : [];
      this.len = rest.length;
      w.resolve(out);
    } else if (this.ended) {
      this.want = undefined;
      w.reject(new Error('client closed during negotiation'));
    }
  }

  /** Stop reading; returns the bytes received beyond the negotiation (to be forwarded first). */
  detach(): Buffer {
    this.socket.pause();
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('end', this.onEnd);
    this.socket.removeListener('close', this.onEnd);
    const rest = Buffer.concat(this.bufs, this.len);
    this.bufs = [];
    this.len = 0;
    return rest;
  }
}

export interface Socks5Options {
  routing: Routing;
  /** Listen address (default 127.0.0.1) and port (default 1080; 0 = ephemeral). */
  host?: string;
  port?: number;
  /** Require RFC 1929 username/password with these credentials. */
  auth?: ProxyCredentials;
  /** Clients allowed (default loopback only); others get reply 0x02. */
  access?: AccessList;
  logger?: Logger;
  metrics?: ProxyMetrics;
  /** Destination connect timeout, answered 0x06 (ms, default 10 000). */
  connectTimeoutMs?: number;
  /** While the tunnel is down, wait up to this long before answering 0x03 (ms, default 0). */
  readyTimeoutMs?: number;
  /** Whole negotiation (greeting, auth, request) must finish within this (ms, default 10 000). */
  handshakeTimeoutMs?: number;
  /** Close relays idle this long (ms, default 0 = never). */
  idleTimeoutMs?: number;
}

/**
 * Events: 'proxied' (ConnectionLogFields; method 'CONNECT' or 'UDP'), 'denied' ({client, reason: 'allow'|'auth'}),
 * 'listening' (AddressInfo).
 */
export class Socks5Server extends ListeningServer {
  private readonly opts: Socks5Options;
  private readonly log: Logger;
  readonly metrics: ProxyMetrics;
  private readonly access: AccessList;
  private readonly server: Server;

  constructor(opts: Socks5Options) {
    super();
    this.opts = opts;
    this.log = (opts.logger ?? silentLogger).child('socks5');
    this.metrics = opts.metrics ?? new ProxyMetrics();
    this.access = opts.access ?? new AccessList();
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.onSocket(s));
    this.server.on('error', (err) => this.log.error('listener error', { error: err.message }));
  }

  protected listenTarget(): { server: Server; port: number; host: string } {
    return { server: this.server, port: this.opts.port ?? 1080, host: this.opts.host ?? '127.0.0.1' };
  }

  private onSocket(socket: Socket): void {
    this.track(socket);
    socket.on('error', () => {});
    const timer = setTimeout(() => socket.destroy(), this.opts.handshakeTimeoutMs ?? 10_000);
    const reader = new Reader(socket);
    this.negotiate(socket, reader)
      .catch((err: Error) => {
        this.log.debug('negotiation failed', { client: hostPort(socket.remoteAddress, socket.remotePort), error: err.message });
        socket.destroy();
      })
      .finally(() => clearTimeout(timer));
  }

  private reply(socket: Socket, code: number, bind?: { host: string; port: number }): void {
    const addr = bind && isIPv4(bind.host) ? encodeAddress(bind.host, bind.port) : encodeAddress('0.0.0.0', 0);
    const head = Buffer.from([0x05, code, 0x00]);
    if (code === SocksReply.SUCCEEDED) socket.write(Buffer.concat([head, addr]));
    else {
      socket.end(Buffer.concat([head, addr]));
      const t = setTimeout(() => socket.destroy(), 2000);
      t.unref?.();
    }
  }

  private async negotiate(socket: Socket, reader: Reader): Promise<void> {
    const client = hostPort(socket.remoteAddress, socket.remotePort);
    const allowed = this.access.allows(socket.remoteAddress);

    // Greeting: VER NMETHODS METHODS.
    const [ver, nmethods] = await reader.read(2);
    if (ver !== 0x05) {
      this.log.debug('not a SOCKS5 client', { client, version: ver });
      socket.destroy();
      return;
    }
    const methods = nmethods ? await reader.read(nmethods!) : Buffer.alloc(0);
    const wantAuth = this.opts.auth !== undefined && allowed;
    let method: number;
    if (wantAuth) method = methods.includes(0x02) ? 0x02 : 0xff;
    else method = methods.includes(0x00) ? 0x00 : methods.includes(0x02) ? 0x02 : 0xff;
    if (method === 0xff) {
      if (wantAuth) {
        this.metrics.denied('socks5', 'auth');
        this.emit('denied', { client, reason: 'auth' });
      }
      socket.end(Buffer.from([0x05, 0xff]));
      return;
    }
    socket.write(Buffer.from([0x05, method]));

    if (method === 0x02) {
      // RFC 1929: VER(1) ULEN UNAME PLEN PASSWD.
      const [sver, ulen] = await reader.read(2);
      if (sver !== 0x01) {
        socket.end(Buffer.from([0x01, 0x01]));
        return;
      }
      const uname = ulen ? await reader.read(ulen!) : Buffer.alloc(0);
      const [plen] = await reader.read(1);
      const passwd = plen ? await reader.read(plen!) : Buffer.alloc(0);
      const ok = allowed && (this.opts.auth === undefined || checkCredentials(this.opts.auth, uname, passwd));
      if (!ok) {
        const reason = allowed ? 'auth' : 'allow';
        this.metrics.denied('socks5', reason);
        this.emit('denied', { client, reason });
        this.log.info('SOCKS5 client refused', { client, reason });
        socket.end(Buffer.from([0x01, 0x01]));
        return;
      }
      socket.write(Buffer.from([0x01, 0x00]));
    }

    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT.
    const [rver, cmd, , atyp] = await reader.read(4);
    if (rver !== 0x05) {
      socket.destroy();
      return;
    }
    let host: string;
    if (atyp === ATYP_IPV4) {
      const a = await reader.read(4);
      host = `${a[0]}.${a[1]}.${a[2]}.${a[3]}`;
    } else if (atyp === ATYP_DOMAIN) {
      const [len] = await reader.read(1);
      host = len ? (await reader.read(len!)).toString('latin1') : '';
    } else if (atyp === ATYP_IPV6) {
      host = ipv6Text(await reader.read(16), 0);
    } else {
      this.reply(socket, SocksReply.ADDRESS_TYPE_NOT_SUPPORTED);
      return;
    }
    const p = await reader.read(2);
    const port = p.readUInt16BE(0);

    if (!allowed) {
      this.metrics.denied('socks5', 'allow');
      this.emit('denied', { client, reason: 'allow' });
      this.log.info('SOCKS5 client refused by --allow', { client });
      this.reply(socket, SocksReply.NOT_ALLOWED);
      return;
    }
    if (cmd !== CMD_CONNECT && cmd !== CMD_UDP_ASSOCIATE) {
      this.reply(socket, SocksReply.COMMAND_NOT_SUPPORTED);
      return;
    }
    if (cmd === CMD_CONNECT) await this.connect(socket, reader, client, host, port);
    else await this.udpAssociate(socket, reader, client, host, port);
  }

  private async ready(signal: AbortSignal): Promise<boolean> {
    const r = this.opts.routing;
    return r.isUp() || r.waitUp(this.opts.readyTimeoutMs ?? 0, signal);
  }

  private async connect(socket: Socket, reader: Reader, client: string, host: string, port: number): Promise<void> {
    const abort = new AbortController();
    const onClose = () => abort.abort();
    socket.once('close', onClose);
    const fail = (code: number, reason: string) => {
      this.metrics.error('socks5', reason);
      this.log.info(`connect to ${hostPort(host, port)} failed`, { client, reply: code, reason });
      this.reply(socket, code);
    };
    try {
      if (!(await this.ready(abort.signal))) return fail(SocksReply.NETWORK_UNREACHABLE, 'TRANSPORT_CLOSED');
      if (host === '') return fail(SocksReply.HOST_UNREACHABLE, 'DNS_NXDOMAIN');
      let dialed;
      try {
        dialed = await this.opts.routing.dial(host, port, {
          timeoutMs: this.opts.connectTimeoutMs ?? 10_000,
          signal: abort.signal,
        });
      } catch (err) {
        return fail(socksReplyFor(err), errorReason(err));
      }
      const upstream = dialed.socket;
      if (socket.destroyed) {
        upstream.destroy();
        return;
      }
      upstream.setNoDelay?.(true);
      this.track(upstream);
      this.metrics.opened('socks5');
      const local = upstream.localAddress ?? '0.0.0.0';
      this.reply(socket, SocksReply.SUCCEEDED, { host: local, port: upstream.localPort ?? 0 });
      const early = reader.detach();
      if (early.length) upstream.write(early);
      relay(
        socket,
        upstream,
        (r) => {
          const up = r.up + early.length;
          this.metrics.closed('socks5', dialed.route, up, r.down);
          this.done({
            proxy: 'socks5',
            client,
            dest: hostPort(host, port),
            route: dialed.route,
            method: 'CONNECT',
            up,
            down: r.down,
            durationMs: r.durationMs,
            error: r.error,
          });
        },
        { idleTimeoutMs: this.opts.idleTimeoutMs ?? 0 },
      );
    } finally {
      socket.removeListener('close', onClose);
    }
  }

  private done(f: ConnectionLogFields): void {
    logConnection(this.log, f);
    this.emit('proxied', f);
  }

  private async udpAssociate(socket: Socket, reader: Reader, client: string, host: string, port: number): Promise<void> {
    const abort = new AbortController();
    socket.once('close', () => abort.abort());
    if (!(await this.ready(abort.signal))) {
      this.metrics.error('socks5', 'TRANSPORT_CLOSED');
      this.reply(socket, SocksReply.NETWORK_UNREACHABLE);
      return;
    }
    const clientIp = normalize(socket.remoteAddress ?? '');
    const localIp = normalize(socket.localAddress ?? '127.0.0.1');
    // Datagrams are accepted from the client's own address only (--allow was checked on it); if the client
    // announced a source port (DST.PORT), from that port only, else the first port seen is where replies go.
    const expectIp = clientIp;
    const clientPort = port;
    let outside: UdpLike;
    try {
      outside = await this.opts.routing.bindUdp();
    } catch (err) {
      this.reply(socket, socksReplyFor(err));
      return;
    }
    const family = isIPv4(localIp) ? 'udp4' : 'udp6';
    const inside: DgramSocket = createSocket(family);
    inside.on('error', () => {});
    try {
      await new Promise<void>((res, rej) => {
        inside.once('error', rej);
        inside.bind(0, localIp, () => {
          inside.removeListener('error', rej);
          res();
        });
      });
    } catch {
      outside.close();
      this.reply(socket, SocksReply.GENERAL_FAILURE);
      return;
    }
    if (socket.destroyed) {
      outside.close();
      inside.close();
      return;
    }
    this.metrics.opened('socks5');
    const started = performance.now();
    let up = 0;
    let down = 0;
    const routes = new Set<string>();
    let peerPort = clientPort;
    const names = new Map<string, Promise<string | undefined>>();

    inside.on('message', (msg, rinfo) => {
      if (normalize(rinfo.address) !== expectIp) return;
      if (clientPort && rinfo.port !== clientPort) return;
      peerPort = rinfo.port;
      let parsed;
      try {
        parsed = parseUdpDatagram(msg);
      } catch {
        return; // malformed: dropped
      }
      if (parsed.frag !== 0) return; // no fragmentation
      const { dst, data } = parsed;
      const send = (ip: string | undefined) => {
        if (!ip) return;
        const r = this.opts.routing.routeFor(ip);
        if (!r) return; // tunnel down: dropped
        routes.add(r);
        up += data.length;
        outside.send(data, dst.port, ip);
      };
      if (dst.atyp === ATYP_IPV4 || dst.atyp === ATYP_IPV6) send(dst.host);
      else {
        let p = names.get(dst.host);
        if (!p) {
          p = this.opts.routing.resolve(dst.host).then((a) => a[0], () => undefined);
          if (names.size < 256) names.set(dst.host, p);
        }
        void p.then(send);
      }
    });
    outside.onMessage((data, from) => {
      if (!peerPort) return;
      down += data.length;
      const head = Buffer.concat([Buffer.from([0, 0, 0]), encodeAddress(from.address, from.port)]);
      inside.send([head, data], peerPort, expectIp);
    });

    const addr = inside.address();
    this.reply(socket, SocksReply.SUCCEEDED, { host: isIPv4(localIp) ? localIp : '0.0.0.0', port: addr.port });
    reader.detach();
    socket.resume(); // the control connection carries nothing more; its close ends the association
    socket.on('data', () => {});
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      outside.close();
      try {
        inside.close();
      } catch {
        /* closed */
      }
      socket.destroy();
      const route = routes.size === 0 ? 'none' : [...routes].sort().join('+');
      this.metrics.closed('socks5', route, up, down);
      this.done({
        proxy: 'socks5',
        client,
        dest: hostPort(host, port),
        route,
        method: 'UDP',
        up,
        down,
        durationMs: Math.round(performance.now() - started),
      });
    };
    socket.once('end', end);
    socket.once('close', end);
    this.sockets.add({ destroy: end });
  }
}

function normalize(a: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  return m ? m[1]! : a;
}
