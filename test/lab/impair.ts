/**
 * UDP impairment relay: listens on a UDP port and forwards datagrams client→server ("up") and server→client
 * ("down") with seeded, reproducible loss, duplication, reordering, corruption, delay and a bandwidth limit
 * (this kernel has no netem). Usable in-process (`ImpairRelay.start`) and as a standalone script in any
 * namespace:
 *
 *   node --import tsx test/lab/impair.ts --listen 127.0.0.1:0 --target 10.101.1.2:1194 --seed 7 \
 *     --drop 0.2 --duplicate 0.05 --reorder 0.05 --reorder-depth 3 --corrupt 0.01 --delay 20 --bits-per-second 1e7 \
 *     [--up-drop 0.3 ...direction-specific overrides]
 *
 * The script prints `impair ready port=N`, then `impair stats {json}` on SIGUSR1 and when it exits (SIGTERM).
 *
 * Per packet and direction the relay draws four numbers from its own PRNG stream (sfc32 seeded from
 * sha256(seed + direction)), in arrival order: drop, corrupt, duplicate, reorder. So with a fixed seed and the
 * same packet sequence, the same packets are dropped, whatever the timing.
 */
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';

/** Impairments of one direction. Probabilities are 0..1 per datagram. */
export interface ImpairConfig {
  drop?: number;
  duplicate?: number;
  /** Probability that a datagram is held back and sent after the next `reorderDepth` ones. */
  reorder?: number;
  /** k of reordering (default 3). */
  reorderDepth?: number;
  /** A held datagram is sent after this long even if no more traffic comes (default 100 ms). */
  reorderMaxHoldMs?: number;
  /** Probability that one byte of the datagram is flipped. */
  corrupt?: number;
  /** Added one-way delay in ms (default 0). */
  delayMs?: number;
  /** Token-bucket rate limit in bits per second (default unlimited). */
  bitsPerSecond?: number;
  /** Bucket size in bytes (default max(16 KiB, 10 ms of rate)). */
  burstBytes?: number;
  /** Datagrams waiting for delay/rate; more are dropped and counted in `queueDropped` (default 1000). */
  maxQueue?: number;
}

export interface RelayOptions extends ImpairConfig {
  /** Address to listen on (default 127.0.0.1). */
  listenHost?: string;
  /** Port to listen on (default 0: any free port). */
  listenPort?: number;
  targetHost: string;
  targetPort: number;
  /** PRNG seed (default 1). The same seed and packet sequence give the same decisions. */
  seed?: number | string;
  /** Overrides for client→server. */
  up?: ImpairConfig;
  /** Overrides for server→client. */
  down?: ImpairConfig;
  /** A client mapping with no traffic for this long is dropped (default 300 s). */
  idleTimeoutMs?: number;
}

/** Counters of one direction. `forwarded` counts datagrams sent (a duplicate counts twice). */
export interface DirectionCounters {
  received: number;
  forwarded: number;
  dropped: number;
  duplicated: number;
  reordered: number;
  corrupted: number;
  queueDropped: number;
  bytesIn: number;
  bytesOut: number;
}

export interface RelayCounters {
  up: DirectionCounters;
  down: DirectionCounters;
}

const zero = (): DirectionCounters => ({
  received: 0,
  forwarded: 0,
  dropped: 0,
  duplicated: 0,
  reordered: 0,
  corrupted: 0,
  queueDropped: 0,
  bytesIn: 0,
  bytesOut: 0,
});

/** sfc32 PRNG: returns floats in [0, 1). Seeded from sha256 of the seed text. */
export function seededRandom(seed: number | string, stream = ''): () => number {
  const h = createHash('sha256').update(`${String(seed)}/${stream}`).digest();
  let a = h.readUInt32LE(0);
  let b = h.readUInt32LE(4);
  let c = h.readUInt32LE(8);
  let d = h.readUInt32LE(12);
  return () => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

interface Queued {
  buf: Buffer;
  readyAt: number;
}

/** One direction's pipeline: drop → corrupt → duplicate → reorder → delay/rate queue → send. */
class Lane {
  private cfg: Required<Omit<ImpairConfig, 'bitsPerSecond' | 'burstBytes'>> & { bytesPerMs: number; burst: number };
  private held: { buf: Buffer; after: number; timer: NodeJS.Timeout } | undefined;
  private readonly queue: Queued[] = [];
  private qHead = 0;
  private tokens = 0;
  private lastRefill = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly rnd: () => number,
    cfg: ImpairConfig,
    private readonly send: (buf: Buffer) => void,
    /** Shared by every client mapping of the direction. */
    readonly counters: DirectionCounters,
  ) {
    this.cfg = Lane.normalise(cfg);
    this.tokens = this.cfg.burst;
  }

  static normalise(c: ImpairConfig): Lane['cfg'] {
    const p = (x: number | undefined, name: string): number => {
      const v = x ?? 0;
      if (!(v >= 0 && v <= 1)) throw new RangeError(`${name} must be in 0..1`);
      return v;
    };
    const bytesPerMs = c.bitsPerSecond ? c.bitsPerSecond / 8 / 1000 : 0;
    return {
      drop: p(c.drop, 'drop'),
      duplicate: p(c.duplicate, 'duplicate'),
      reorder: p(c.reorder, 'reorder'),
      corrupt: p(c.corrupt, 'corrupt'),
      reorderDepth: Math.max(1, c.reorderDepth ?? 3),
      reorderMaxHoldMs: c.reorderMaxHoldMs ?? 100,
      delayMs: Math.max(0, c.delayMs ?? 0),
      maxQueue: Math.max(1, c.maxQueue ?? 1000),
      bytesPerMs,
      burst: c.burstBytes ?? Math.max(16 * 1024, bytesPerMs * 10),
    };
  }

  reconfigure(c: ImpairConfig): void {
    this.cfg = Lane.normalise(c);
    this.tokens = Math.min(this.tokens, this.cfg.burst);
  }

  input(msg: Buffer): void {
    const c = this.counters;
    const cfg = this.cfg;
    c.received++;
    c.bytesIn += msg.length;
    const rDrop = this.rnd();
    const rCorrupt = this.rnd();
    const rDup = this.rnd();
    const rReorder = this.rnd();
    if (rDrop < cfg.drop) {
      c.dropped++;
      return;
    }
    if (rCorrupt < cfg.corrupt && msg.length > 0) {
      const i = Math.floor(this.rnd() * msg.length);
      msg[i] = msg[i]! ^ (1 + Math.floor(this.rnd() * 255));
      c.corrupted++;
    }
    const copies = rDup < cfg.duplicate ? 2 : 1;
    if (copies === 2) c.duplicated++;
    for (let k = 0; k < copies; k++) {
      const buf = k === 0 ? msg : Buffer.from(msg);
      if (k === 0 && !this.held && rReorder < cfg.reorder) {
        c.reordered++;
        const timer = setTimeout(() => this.releaseHeld(), cfg.reorderMaxHoldMs);
        timer.unref();
        this.held = { buf, after: cfg.reorderDepth, timer };
        continue;
      }
      this.enqueue(buf);
      if (this.held && --this.held.after <= 0) this.releaseHeld();
    }
  }

  private releaseHeld(): void {
    const h = this.held;
    if (!h) return;
    this.held = undefined;
    clearTimeout(h.timer);
    this.enqueue(h.buf);
  }

  private enqueue(buf: Buffer): void {
    if (this.closed) return;
    const cfg = this.cfg;
    if (cfg.delayMs === 0 && cfg.bytesPerMs === 0 && this.qHead === this.queue.length) {
      this.out(buf);
      return;
    }
    if (this.queue.length - this.qHead >= cfg.maxQueue) {
      this.counters.queueDropped++;
      return;
    }
    this.queue.push({ buf, readyAt: Date.now() + cfg.delayMs });
    this.pump();
  }

  private out(buf: Buffer): void {
    this.counters.forwarded++;
    this.counters.bytesOut += buf.length;
    this.send(buf);
  }

  private pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const cfg = this.cfg;
    const now = Date.now();
    if (cfg.bytesPerMs > 0) {
      this.tokens = Math.min(cfg.burst, this.tokens + (now - this.lastRefill) * cfg.bytesPerMs);
      this.lastRefill = now;
    }
    while (this.qHead < this.queue.length) {
      const q = this.queue[this.qHead]!;
      let wait = q.readyAt - now;
      if (wait <= 0 && cfg.bytesPerMs > 0) {
        const need = Math.min(q.buf.length, cfg.burst);
        if (this.tokens < need) wait = Math.ceil((need - this.tokens) / cfg.bytesPerMs);
        else this.tokens -= q.buf.length;
      }
      if (wait > 0) {
        this.timer = setTimeout(() => this.pump(), wait);
        this.timer.unref();
        break;
      }
      this.qHead++;
      this.out(q.buf);
    }
    if (this.qHead > 1024 && this.qHead * 2 > this.queue.length) {
      this.queue.splice(0, this.qHead);
      this.qHead = 0;
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.held) clearTimeout(this.held.timer);
    this.held = undefined;
    this.queue.length = 0;
    this.qHead = 0;
  }
}

interface Mapping {
  upstream: Socket;
  up: Lane;
  down: Lane;
  lastSeen: number;
}

/**
 * The relay. Each client address:port gets its own upstream socket (like a NAT), so several clients work;
 * all clients share the per-direction counters and PRNG streams.
 */
export class ImpairRelay {
  /** Port the relay listens on. */
  port = 0;
  readonly counters: RelayCounters = { up: zero(), down: zero() };
  private readonly sock: Socket;
  private readonly clients = new Map<string, Mapping>();
  private readonly rndUp: () => number;
  private readonly rndDown: () => number;
  private upCfg: ImpairConfig;
  private downCfg: ImpairConfig;
  private sweeper: NodeJS.Timeout | undefined;

  private constructor(readonly options: RelayOptions) {
    const seed = options.seed ?? 1;
    this.rndUp = seededRandom(seed, 'up');
    this.rndDown = seededRandom(seed, 'down');
    const base = ImpairRelay.base(options);
    this.upCfg = { ...base, ...options.up };
    this.downCfg = { ...base, ...options.down };
    Lane.normalise(this.upCfg);
    Lane.normalise(this.downCfg);
    this.sock = createSocket('udp4');
  }

  private static base(o: RelayOptions): ImpairConfig {
    const { drop, duplicate, reorder, reorderDepth, reorderMaxHoldMs, corrupt, delayMs, bitsPerSecond, burstBytes, maxQueue } = o;
    return { drop, duplicate, reorder, reorderDepth, reorderMaxHoldMs, corrupt, delayMs, bitsPerSecond, burstBytes, maxQueue };
  }

  /** Starts a relay; resolves once it listens (see `port`). */
  static async start(options: RelayOptions): Promise<ImpairRelay> {
    const r = new ImpairRelay(options);
    await r.listen();
    return r;
  }

  private async listen(): Promise<void> {
    this.sock.on('message', (msg, rinfo) => this.fromClient(msg, rinfo));
    this.sock.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      this.sock.once('error', reject);
      this.sock.bind(this.options.listenPort ?? 0, this.options.listenHost ?? '127.0.0.1', () => {
        this.sock.off('error', reject);
        resolve();
      });
    });
    this.port = this.sock.address().port;
    const idle = this.options.idleTimeoutMs ?? 300_000;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const [k, m] of this.clients) if (now - m.lastSeen > idle) this.dropMapping(k, m);
    }, Math.min(idle, 10_000));
    this.sweeper.unref();
  }

  /** Address clients should send to. */
  get address(): { host: string; port: number } {
    return { host: this.options.listenHost === '0.0.0.0' || !this.options.listenHost ? '127.0.0.1' : this.options.listenHost, port: this.port };
  }

  private fromClient(msg: Buffer, rinfo: RemoteInfo): void {
    const key = `${rinfo.address}:${rinfo.port}`;
    let m = this.clients.get(key);
    if (!m) {
      const upstream = createSocket('udp4');
      upstream.on('error', () => undefined);
      const mapping: Mapping = {
        upstream,
        up: new Lane(this.rndUp, this.upCfg, (b) => upstream.send(b, this.options.targetPort, this.options.targetHost), this.counters.up),
        down: new Lane(this.rndDown, this.downCfg, (b) => this.sock.send(b, rinfo.port, rinfo.address), this.counters.down),
        lastSeen: Date.now(),
      };
      upstream.on('message', (b, from) => {
        if (from.port !== this.options.targetPort) return;
        mapping.lastSeen = Date.now();
        mapping.down.input(b);
      });
      upstream.bind(0);
      this.clients.set(key, mapping);
      m = mapping;
    }
    m.lastSeen = Date.now();
    m.up.input(msg);
  }

  private dropMapping(key: string, m: Mapping): void {
    m.up.close();
    m.down.close();
    m.upstream.close();
    this.clients.delete(key);
  }

  /** Changes impairments on the fly (e.g. start dropping everything mid-test). */
  setImpairment(dir: 'up' | 'down' | 'both', cfg: ImpairConfig): void {
    if (dir !== 'down') this.upCfg = cfg;
    if (dir !== 'up') this.downCfg = cfg;
    for (const m of this.clients.values()) {
      if (dir !== 'down') m.up.reconfigure(cfg);
      if (dir !== 'up') m.down.reconfigure(cfg);
    }
  }

  /** A copy of the counters. */
  stats(): RelayCounters {
    return { up: { ...this.counters.up }, down: { ...this.counters.down } };
  }

  /** Stops listening and drops every mapping. */
  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const [k, m] of this.clients) this.dropMapping(k, m);
    await new Promise<void>((r) => this.sock.close(() => r()));
  }
}

/** Parses the CLI flags of the standalone relay. */
export function parseRelayArgs(argv: readonly string[]): RelayOptions {
  const o: Record<string, unknown> = {};
  const up: Record<string, number> = {};
  const down: Record<string, number> = {};
  const names: Record<string, keyof ImpairConfig> = {
    drop: 'drop',
    duplicate: 'duplicate',
    reorder: 'reorder',
    'reorder-depth': 'reorderDepth',
    'reorder-max-hold': 'reorderMaxHoldMs',
    corrupt: 'corrupt',
    delay: 'delayMs',
    'bits-per-second': 'bitsPerSecond',
    burst: 'burstBytes',
    'max-queue': 'maxQueue',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    if (!a.startsWith('--') || v === undefined) throw new Error(`bad argument ${a}`);
    i++;
    const name = a.slice(2);
    const hp = (s: string): [string, number] => {
      const j = s.lastIndexOf(':');
      return [s.slice(0, j), Number(s.slice(j + 1))];
    };
    if (name === 'listen') [o.listenHost, o.listenPort] = hp(v);
    else if (name === 'target') [o.targetHost, o.targetPort] = hp(v);
    else if (name === 'seed') o.seed = v;
    else if (name.startsWith('up-') && names[name.slice(3)]) up[names[name.slice(3)]!] = Number(v);
    else if (name.startsWith('down-') && names[name.slice(5)]) down[names[name.slice(5)]!] = Number(v);
    else if (names[name]) o[names[name]!] = Number(v);
    else throw new Error(`unknown option --${name}`);
  }
  if (!o.targetHost || !o.targetPort) throw new Error('--target HOST:PORT is required');
  return { ...(o as unknown as RelayOptions), up, down };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const relay = await ImpairRelay.start(parseRelayArgs(process.argv.slice(2)));
  const print = (): boolean => process.stdout.write(`impair stats ${JSON.stringify(relay.stats())}\n`);
  process.stdout.write(`impair ready port=${relay.port}\n`);
  process.on('SIGUSR1', print);
  const bye = (): void => {
    print();
    void relay.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', bye);
  process.on('SIGINT', bye);
}
