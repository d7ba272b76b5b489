/**
 * A second VPN protocol that lives in memory, to prove that nothing above the backend knows OpenVPN: each
 * session is a Link to a far-side IP stack + TCP (the "gateway" with a tiny HTTP server behind it), on the
 * test's clock. The backend can be told to fail attempts, and a session can be dropped as a keepalive
 * timeout would drop it.
 */
import { VpnError } from '../../../src/errors.js';
import type { Link, LinkConfig, PacketHandler } from '../../../src/link/link.js';
import { SessionBase } from '../../../src/session/base.js';
import type { AttemptOutcome, CloseReason, RemoteEndpoint, SessionClosed, SessionInfo, SessionStats, VpnBackend, VpnSession } from '../../../src/session/types.js';
import { IpStack } from '../../../src/stack/stack.js';
import { TcpStack } from '../../../src/stack/tcp/tcp.js';
import type { Clock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/log.js';
import { IpProtocol } from '../../../src/wire/ipv4.js';

export const CLIENT_IP = '10.99.0.2';
export const SERVER_IP = '10.99.0.1';

const cfg = (address: string, gateway: string): LinkConfig => ({
  address,
  netmask: '255.255.255.0',
  gateway,
  mtu: 1400,
  dns: [],
  domains: [],
  routes: ['10.99.0.0/24'],
  redirectGateway: false,
});

/** The far side: an IP stack with an HTTP/1.0 server on :80 answering `GET /N` with N bytes of a pattern. */
export class LoopbackGateway {
  readonly stack: IpStack;
  readonly tcp: TcpStack;
  private toClient: PacketHandler = () => {};
  private fromClient: PacketHandler = () => {};
  readonly link: Link;

  constructor(clock: Clock) {
    const self = this;
    this.link = {
      send: (p) => self.toClient(p),
      onReceive: (h) => (self.fromClient = h),
      config: cfg(SERVER_IP, CLIENT_IP),
      mtu: 1400,
    };
    this.stack = new IpStack(this.link, { clock, logger: silentLogger });
    this.tcp = new TcpStack(this.stack.ip, { clock, defer: setImmediate });
    this.stack.registerProtocol(IpProtocol.TCP, this.tcp);
    this.tcp.listen(80, (s) => {
      let head = '';
      s.on('data', (d: Buffer) => {
        head += d.toString('latin1');
        const m = /^GET \/(\d+) /.exec(head);
        if (!m || !head.includes('\r\n\r\n')) return;
        const body = pattern(Number(m[1]));
        s.write(`HTTP/1.0 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
        s.end(body);
      });
      s.on('error', () => undefined);
    });
  }

  /** Plug a client session in (or out, with undefined). */
  attach(deliverToClient: PacketHandler | undefined): void {
    this.toClient = deliverToClient ?? (() => {});
  }
  deliverFromClient(p: Uint8Array): void {
    this.fromClient(p);
  }
  close(): void {
    this.tcp.close();
    this.stack.close();
  }
}

export function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

export class LoopbackSession extends SessionBase<{ attempt: number }> {
  protected readonly log = silentLogger;
  private readonly stat = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0 };
  goodbyes = 0;

  constructor(
    private readonly backend: LoopbackBackend,
    private readonly remote: RemoteEndpoint,
    readonly attempt: number,
    readonly carried: number | undefined,
  ) {
    super();
  }

  protected get configuredMtu(): number {
    return 1400;
  }
  protected run(): void {
    const failure = this.backend.failNext.shift();
    if (failure) {
      // As a real protocol would, the failure is reported after the start, from the event loop.
      queueMicrotask(() => this.fail(failure, new VpnError('HANDSHAKE_TIMEOUT', `${this.remote.host}: no answer (simulated)`)));
      return;
    }
    this.backend.gateway.attach((p) => {
      this.stat.packetsIn++;
      this.stat.bytesIn += p.length;
      this.receiver(p);
    });
    const link = cfg(CLIENT_IP, SERVER_IP);
    const info: SessionInfo = {
      protocol: 'loopback',
      server: { ...this.remote },
      link,
      cipher: 'none',
      security: 'in memory',
      details: { attempt: this.attempt, carried: this.carried },
    };
    queueMicrotask(() => this.markUp({ attempt: this.attempt }, link, info));
  }
  send(p: Uint8Array): void {
    if (this.state !== 'connected') return;
    this.stat.packetsOut++;
    this.stat.bytesOut += p.length;
    this.backend.gateway.deliverFromClient(p);
  }
  stats(): SessionStats {
    return { ...this.stat, drops: { simulated: this.stat.dropped } };
  }
  /** The peer went silent: the keepalive gives up. */
  drop(): void {
    this.fail('ping-restart', new VpnError('PING_TIMEOUT', 'nothing received for 10 s (simulated)'));
  }
  protected async goodbye(): Promise<void> {
    this.goodbyes++;
  }
  protected async teardown(): Promise<void> {
    this.backend.gateway.attach(undefined);
  }
}

/** Carry = how many sessions came before (proves the reconnect loop hands state on). */
export class LoopbackBackend implements VpnBackend<number> {
  readonly protocol = 'loopback';
  readonly remotes: RemoteEndpoint[] = [
    { host: 'loop-a', port: 1, proto: 'udp' },
    { host: 'loop-b', port: 2, proto: 'udp' },
  ];
  readonly initialMtu = 1400;
  maxRounds: number | undefined;
  readonly gateway: LoopbackGateway;
  readonly sessions: LoopbackSession[] = [];
  /** Reasons the next attempts fail with, in order. */
  failNext: CloseReason[] = [];

  constructor(clock: Clock) {
    this.gateway = new LoopbackGateway(clock);
  }

  retryDelays(): { seconds: number; maxSeconds: number } {
    return { seconds: 2, maxSeconds: 8 };
  }
  createSession(index: number, carry: number | undefined): LoopbackSession {
    const s = new LoopbackSession(this, this.remotes[index]!, this.sessions.length + 1, carry);
    this.sessions.push(s);
    return s;
  }
  isFatal(reason: CloseReason, err: VpnError | undefined): boolean {
    return reason === 'user' || reason === 'auth-failed' || err?.code === 'AUTH_FAILED';
  }
  afterSession(_s: VpnSession, _c: SessionClosed, carry: number | undefined): AttemptOutcome<number> {
    return { carry: (carry ?? 0) + 1 };
  }
  get current(): LoopbackSession {
    return this.sessions[this.sessions.length - 1]!;
  }
}
