/**
 * Port forwards, as ssh -L and -R:
 *  - LocalForward (--forward [BIND:]LPORT:HOST:PORT): listens on this host, each connection is dialed to
 *    HOST:PORT through the Routing (the VPN) and relayed.
 *  - RemoteForward (--remote-forward RPORT:HOST:PORT): listens on the VPN side through a `listen` function
 *    supplied by the stack, each connection is dialed to HOST:PORT from this host (direct dialer) and relayed.
 * Every connection ends with one info log line (client, destination, route, bytes each way, duration).
 */
import { EventEmitter } from 'node:events';
import { createServer, isIPv4, isIPv6, type AddressInfo, type Server, type Socket } from 'node:net';
import { VpnError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { AccessList } from './access.js';
import { netDialer, type DialedSocket, type Dialer } from './dialer.js';
import { ProxyMetrics, type ProxyKind } from './metrics.js';
import { errorReason, hostPort, logConnection, relay, type ConnectionLogFields } from './relay.js';
import type { Routing } from './router.js';
import { ListeningServer } from './listen.js';

export interface ForwardSpec {
  bindHost: string;
  bindPort: number;
  host: string;
  port: number;
}

export interface RemoteForwardSpec {
  remotePort: number;
  host: string;
  port: number;
}

function parsePort(s: string, what: string, spec: string, allowZero = false): number {
  if (!/^\d{1,5}$/.test(s)) throw new VpnError('USAGE', `${what} in ${JSON.stringify(spec)} is not a port number`);
  const n = Number(s);
  if (n > 65535 || (n === 0 && !allowZero)) throw new VpnError('USAGE', `${what} ${n} in ${JSON.stringify(spec)} is out of range`);
  return n;
}

const usage = (msg: string): VpnError => new VpnError('USAGE', msg);

interface SpecPart {
  text: string;
  /** Written as [text]: must then be an IPv6 literal. */
  bracketed: boolean;
}

/**
 * Split a spec on ':' outside brackets. A bracket pair must enclose a whole part ("[fd00::1]"); a stray or
 * unclosed bracket is a usage error naming it.
 */
function splitSpec(s: string, flag: string): SpecPart[] {
  const parts: SpecPart[] = [];
  let i = 0;
  for (;;) {
    if (s[i] === '[') {
      const j = s.indexOf(']', i);
      if (j < 0) throw usage(`${flag} ${JSON.stringify(s)}: "[" without its closing "]"`);
      if (j + 1 < s.length && s[j + 1] !== ':') throw usage(`${flag} ${JSON.stringify(s)}: "]" must be followed by ":"`);
      parts.push({ text: s.slice(i + 1, j), bracketed: true });
      i = j + 1;
    } else {
      let j = s.indexOf(':', i);
      if (j < 0) j = s.length;
      const text = s.slice(i, j);
      if (/[[\]]/.test(text)) throw usage(`${flag} ${JSON.stringify(s)}: brackets go around a whole IPv6 address, as in [fd00::1]`);
      parts.push({ text, bracketed: false });
      i = j;
    }
    if (i >= s.length) return parts;
    i++; // the ':'
    if (i === s.length) {
      parts.push({ text: '', bracketed: false });
      return parts;
    }
  }
}

/** The wrong number of parts: say what was expected, and about brackets when an IPv6 address was left bare. */
function shapeError(flag: string, form: string, s: string, v6Example: string): VpnError {
  const bare = /::|(?:[0-9a-f]{0,4}:){4}/i.test(s.replace(/\[[^\]]*\]/g, '[]'));
  return usage(`${flag} expects ${form}, got ${JSON.stringify(s)}${bare ? `; an IPv6 address goes in brackets, as in ${v6Example}` : ''}`);
}

/** A destination host: a name or IPv4 address as written, or a bracketed IPv6 literal (brackets removed). */
function destHost(p: SpecPart, spec: string): string {
  if (p.bracketed && (!isIPv6(p.text) || p.text.includes('%')))
    throw usage(`destination [${p.text}] in ${JSON.stringify(spec)} is not an IPv6 address (brackets are only for IPv6 literals)`);
  return p.text;
}

/**
 * "[BIND:]LPORT:HOST:PORT". BIND defaults to 127.0.0.1 and is an IPv4 address, localhost or a bracketed IPv6
 * address; HOST is a name, an IPv4 address or a bracketed IPv6 address ("8080:[fd00:b:2::2]:80"). Throws
 * VpnError USAGE naming what is wrong.
 */
export function parseForwardSpec(s: string): ForwardSpec {
  const parts = splitSpec(s, '--forward');
  if ((parts.length !== 3 && parts.length !== 4) || parts.some((p) => p.text === '')) {
    throw shapeError('--forward', '[BIND:]LPORT:HOST:PORT', s, '8080:[fd00::1]:80');
  }
  const [bind, lport, host, port] = parts.length === 4 ? parts : [{ text: '127.0.0.1', bracketed: false }, ...parts];
  const bindHost = bind!.text;
  if (bind!.bracketed ? !isIPv6(bindHost) : !isIPv4(bindHost) && bindHost !== 'localhost') {
    throw usage(`--forward bind address ${JSON.stringify(bindHost)} must be an IPv4 address, localhost or [IPv6]`);
  }
  if (lport!.bracketed || port!.bracketed) throw usage(`--forward ${JSON.stringify(s)}: ports are not written in brackets`);
  return {
    bindHost,
    bindPort: parsePort(lport!.text, 'local port', s, true),
    host: destHost(host!, s),
    port: parsePort(port!.text, 'destination port', s),
  };
}

/** "RPORT:HOST:PORT" (HOST as for --forward). Throws VpnError USAGE. */
export function parseRemoteForwardSpec(s: string): RemoteForwardSpec {
  const parts = splitSpec(s, '--remote-forward');
  if (parts.length !== 3 || parts.some((p) => p.text === '')) {
    throw shapeError('--remote-forward', 'RPORT:HOST:PORT', s, '2222:[::1]:22');
  }
  if (parts[0]!.bracketed || parts[2]!.bracketed) throw usage(`--remote-forward ${JSON.stringify(s)}: ports are not written in brackets`);
  return {
    remotePort: parsePort(parts[0]!.text, 'remote port', s),
    host: destHost(parts[1]!, s),
    port: parsePort(parts[2]!.text, 'destination port', s),
  };
}

/**
 * A ForwardSpec given as an object (library): the host may be written "[v6]" as in the string form. Returns
 * the spec with the brackets removed; a bracketed host that is not IPv6 throws VpnError USAGE.
 */
export function normalizeForwardSpec<T extends { host: string }>(spec: T): T {
  const h = spec.host;
  if (!h.startsWith('[') || !h.endsWith(']')) return spec;
  return { ...spec, host: destHost({ text: h.slice(1, -1), bracketed: true }, h) };
}

interface Common {
  logger?: Logger;
  metrics?: ProxyMetrics;
  /** Destination connect timeout (ms, default 10 000). */
  connectTimeoutMs?: number;
  /** Close relays idle this long (ms, default 0 = never). */
  idleTimeoutMs?: number;
}

export interface LocalForwardOptions extends Common {
  spec: ForwardSpec;
  routing: Routing;
  /** If given, clients outside it are dropped (a forward has no protocol to say why). Default: no check. */
  access?: AccessList;
  /** While the tunnel is down, wait up to this long before dropping a client (ms, default 0). */
  readyTimeoutMs?: number;
}

/** Events: 'proxied' (ConnectionLogFields), 'failed' ({client, dest, reason}), 'listening' (AddressInfo). */
export class LocalForward extends ListeningServer {
  private readonly log: Logger;
  readonly metrics: ProxyMetrics;
  private readonly server: Server;

  constructor(private readonly opts: LocalForwardOptions) {
    super();
    this.log = (opts.logger ?? silentLogger).child('forward');
    this.metrics = opts.metrics ?? new ProxyMetrics();
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => void this.onSocket(s));
    this.server.on('error', (err) => this.log.error('listener error', { error: err.message }));
  }

  protected listenTarget(): { server: Server; port: number; host: string } {
    return { server: this.server, port: this.opts.spec.bindPort, host: this.opts.spec.bindHost };
  }

  private async onSocket(socket: Socket): Promise<void> {
    socket.on('error', () => {});
    socket.pause();
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const client = hostPort(socket.remoteAddress, socket.remotePort);
    const { host, port } = this.opts.spec;
    const dest = hostPort(host, port);
    if (this.opts.access && !this.opts.access.allows(socket.remoteAddress)) {
      this.metrics.denied('forward', 'allow');
      this.log.info('client refused by --allow', { client, dest });
      socket.destroy();
      return;
    }
    const abort = new AbortController();
    socket.once('close', () => abort.abort());
    const routing = this.opts.routing;
    let dialed;
    try {
      if (!routing.isUp() && !(await routing.waitUp(this.opts.readyTimeoutMs ?? 0, abort.signal))) {
        throw new VpnError('TRANSPORT_CLOSED', 'the VPN tunnel is not up');
      }
      dialed = await routing.dial(host, port, { timeoutMs: this.opts.connectTimeoutMs ?? 10_000, signal: abort.signal });
    } catch (err) {
      const reason = errorReason(err);
      this.metrics.error('forward', reason);
      this.log.info(`forward to ${dest} failed`, { client, reason, error: (err as Error).message });
      this.emit('failed', { client, dest, reason });
      socket.destroy();
      return;
    }
    runRelay(this, 'forward', socket, dialed.socket, { client, dest, route: dialed.route }, this.opts.idleTimeoutMs);
  }

  /** @internal */
  finish(kind: ProxyKind, f: ConnectionLogFields): void {
    this.metrics.closed(kind, f.route, f.up, f.down);
    logConnection(this.log, f);
    this.emit('proxied', f);
  }
  /** @internal */
  hold(s: { destroy(): unknown; once(ev: 'close', f: () => void): unknown }): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }
}

/** The VPN side's listener: calls onConnection for every accepted connection on `port` of the tunnel address. */
export type VpnListen = (
  port: number,
  onConnection: (socket: DialedSocket) => void,
) => Promise<{ close(): void | Promise<void> }>;

export interface RemoteForwardOptions extends Common {
  spec: RemoteForwardSpec;
  listen: VpnListen;
  /** Dialer for the local destination (default netDialer()). */
  dialer?: Dialer;
}

/** Events: 'proxied' (ConnectionLogFields, route 'direct'), 'failed' ({client, dest, reason}), 'listening' ({port}). */
export class RemoteForward extends EventEmitter {
  private readonly log: Logger;
  readonly metrics: ProxyMetrics;
  private readonly dialer: Dialer;
  private readonly sockets = new Set<{ destroy(): unknown }>();
  private listener: { close(): void | Promise<void> } | undefined;

  constructor(private readonly opts: RemoteForwardOptions) {
    super();
    this.log = (opts.logger ?? silentLogger).child('remote-forward');
    this.metrics = opts.metrics ?? new ProxyMetrics();
    this.dialer = opts.dialer ?? netDialer();
  }

  /** Start listening on the VPN side (rejects if the VPN side cannot listen). */
  async start(): Promise<void> {
    this.listener = await this.opts.listen(this.opts.spec.remotePort, (s) => void this.onSocket(s));
    this.emit('listening', { port: this.opts.spec.remotePort });
  }

  async close(): Promise<void> {
    const l = this.listener;
    this.listener = undefined;
    for (const s of this.sockets) s.destroy();
    await l?.close();
  }

  private async onSocket(socket: DialedSocket): Promise<void> {
    socket.on('error', () => {});
    socket.pause();
    this.hold(socket);
    const client = hostPort(socket.remoteAddress, socket.remotePort);
    const { host, port } = this.opts.spec;
    const dest = hostPort(host, port);
    const abort = new AbortController();
    socket.once('close', () => abort.abort());
    let upstream: DialedSocket;
    try {
      upstream = await this.dialer.connect(host, port, {
        timeoutMs: this.opts.connectTimeoutMs ?? 10_000,
        signal: abort.signal,
      });
    } catch (err) {
      const reason = errorReason(err);
      this.metrics.error('remote-forward', reason);
      this.log.info(`remote forward to ${dest} failed`, { client, reason, error: (err as Error).message });
      this.emit('failed', { client, dest, reason });
      socket.destroy();
      return;
    }
    runRelay(this, 'remote-forward', socket, upstream, { client, dest, route: 'direct' }, this.opts.idleTimeoutMs);
  }

  /** @internal */
  finish(kind: ProxyKind, f: ConnectionLogFields): void {
    this.metrics.closed(kind, f.route, f.up, f.down);
    logConnection(this.log, f);
    this.emit('proxied', f);
  }
  /** @internal */
  hold(s: { destroy(): unknown; once(ev: 'close', f: () => void): unknown }): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }
}

function runRelay(
  owner: LocalForward | RemoteForward,
  kind: ProxyKind,
  client: DialedSocket,
  upstream: DialedSocket,
  f: { client: string; dest: string; route: string },
  idleTimeoutMs: number | undefined,
): void {
  if (client.destroyed) {
    upstream.destroy();
    return;
  }
  upstream.setNoDelay?.(true);
  owner.hold(upstream);
  owner.metrics.opened(kind);
  relay(
    client,
    upstream,
    (r) =>
      owner.finish(kind, {
        proxy: kind,
        client: f.client,
        dest: f.dest,
        route: f.route,
        up: r.up,
        down: r.down,
        durationMs: r.durationMs,
        error: r.error,
      }),
    { idleTimeoutMs: idleTimeoutMs ?? 0 },
  );
}
