/**
 * Test harness for the TCP stack: two TcpStacks (A = 10.0.0.1, B = 10.0.0.2) joined by a simulated link
 * on a ManualClock, with a one-way delay, an optional seeded fault injector (src/link/fault.ts) and a
 * per-packet filter/tap. A tiny IP shim stands in for the IP layer: sendIp wraps the segment in an IPv4
 * header, the far end parses it and calls input().
 */
import { setImmediate as tick } from 'node:timers/promises';
import { withFaults, type FaultLink, type FaultOptions } from '../../../src/link/fault.js';
import type { Link, LinkConfig, PacketHandler } from '../../../src/link/link.js';
import { ManualClock } from '../../../src/util/clock.js';
import { buildIpv4, parseIpv4, parseIpv4Address } from '../../../src/wire/ipv4.js';
import { parseTcp, type TcpSegment } from '../../../src/wire/tcp.js';
import type { IpSender } from '../../../src/stack/types.js';
import { TcpStack, type TcpStackOptions } from '../../../src/stack/tcp/tcp.js';

export const ADDR_A = '10.0.0.1';
export const ADDR_B = '10.0.0.2';
export const A = parseIpv4Address(ADDR_A);
export const B = parseIpv4Address(ADDR_B);

export type Dir = 'AB' | 'BA';

export interface SimOptions {
  /** One-way delay in ms (default 5). */
  delayMs?: number;
  faults?: FaultOptions;
  mtuA?: number;
  mtuB?: number;
  stackA?: Partial<TcpStackOptions>;
  stackB?: Partial<TcpStackOptions>;
  /** Simulated time per step in ms (default 1). */
  stepMs?: number;
}

interface Pending {
  at: number;
  n: number;
  pkt: Uint8Array;
  to: 'A' | 'B';
}

const linkCfg = (address: string, mtu: number): LinkConfig => ({
  address,
  netmask: '255.255.255.0',
  mtu,
  dns: [],
  domains: [],
  routes: [],
  redirectGateway: false,
});

export class Sim {
  readonly clock = new ManualClock(0);
  readonly a: TcpStack;
  readonly b: TcpStack;
  readonly linkA: FaultLink;
  private queue: Pending[] = [];
  private n = 0;
  private recvA: PacketHandler = () => {};
  private recvB: PacketHandler = () => {};
  readonly delay: number;
  readonly step: number;
  /** Return false to drop the packet (before the fault injector). */
  filter: ((dir: Dir, seg: TcpSegment, pkt: Uint8Array) => boolean) | undefined;
  /** Sees every segment as sent (before faults). */
  taps: Array<(dir: Dir, seg: TcpSegment) => void> = [];
  sent = { AB: 0, BA: 0 };
  /** Set to deliver nothing (a black hole) in a direction. */
  blackhole: { AB: boolean; BA: boolean } = { AB: false, BA: false };

  constructor(o: SimOptions = {}) {
    this.delay = o.delayMs ?? 5;
    this.step = o.stepMs ?? 1;
    const mtuA = o.mtuA ?? 1500;
    const mtuB = o.mtuB ?? 1500;
    const rawA: Link = {
      send: (p) => this.enqueue('B', p),
      onReceive: (h) => {
        this.recvA = h;
      },
      config: linkCfg(ADDR_A, mtuA),
      mtu: mtuA,
    };
    const rawB: Link = {
      send: (p) => this.enqueue('A', p),
      onReceive: (h) => {
        this.recvB = h;
      },
      config: linkCfg(ADDR_B, mtuB),
      mtu: mtuB,
    };
    this.linkA = withFaults(rawA, { clock: this.clock, ...(o.faults ?? {}) });
    const ipA = this.shim(this.linkA, A, mtuA, 'AB');
    const ipB = this.shim(rawB, B, mtuB, 'BA');
    this.a = new TcpStack(ipA, { clock: this.clock, ...(o.stackA ?? {}) });
    this.b = new TcpStack(ipB, { clock: this.clock, ...(o.stackB ?? {}) });
    this.linkA.onReceive((p) => this.deliverTo(this.a, p));
    rawB.onReceive((p) => this.deliverTo(this.b, p));
  }

  private shim(link: Link, addr: number, mtu: number, dir: Dir): IpSender {
    return {
      sendIp: (dst, protocol, payload) => {
        const pkt = buildIpv4({ src: addr, dst, protocol, dontFragment: true }, payload);
        if (pkt.length > mtu) throw new Error(`packet of ${pkt.length} bytes exceeds MTU ${mtu}`);
        const seg = parseTcp(payload);
        this.sent[dir]++;
        for (const t of this.taps) t(dir, seg);
        if (this.filter && !this.filter(dir, seg, pkt)) return;
        if (this.blackhole[dir]) return;
        link.send(pkt);
      },
      localAddress: () => addr,
      mtu: () => mtu,
    };
  }

  private deliverTo(stack: TcpStack, pkt: Uint8Array): void {
    let ip;
    try {
      ip = parseIpv4(pkt);
    } catch {
      return; // corrupted IP header: the IP layer would drop it
    }
    stack.input(ip.src, ip.dst, ip.payload, ip);
  }

  private enqueue(to: 'A' | 'B', pkt: Uint8Array): void {
    const p: Pending = { at: this.clock.now() + this.delay, n: this.n++, pkt, to };
    const q = this.queue;
    let i = q.length;
    while (i > 0 && q[i - 1]!.at > p.at) i--;
    q.splice(i, 0, p);
  }

  /** Inject a raw IPv4 packet towards a side after the delay. */
  inject(to: 'A' | 'B', pkt: Uint8Array): void {
    this.enqueue(to, pkt);
  }

  private deliverDue(): number {
    let n = 0;
    const now = this.clock.now();
    while (this.queue.length && this.queue[0]!.at <= now) {
      const p = this.queue.shift()!;
      n++;
      if (p.to === 'A') this.recvA(p.pkt);
      else this.recvB(p.pkt);
    }
    return n;
  }

  /** Run the simulation until cond() holds (checked between steps); throws after maxMs simulated. */
  async run(cond: () => boolean, maxMs = 120_000): Promise<number> {
    const start = this.clock.now();
    const end = start + maxMs;
    let spins = 0;
    for (;;) {
      this.deliverDue();
      await tick();
      this.deliverDue();
      if (cond()) return this.clock.now() - start;
      if (this.clock.now() >= end) throw new Error(`simulation did not reach its condition within ${maxMs} ms (t=${this.clock.now()})`);
      const next = this.queue.length ? this.queue[0]!.at : Infinity;
      const stepTo = Math.min(next, this.clock.now() + this.step);
      const dt = Math.max(0, stepTo - this.clock.now());
      if (dt === 0 && ++spins > 100000) throw new Error('simulation spins without time advancing');
      this.clock.advance(dt);
    }
  }

  /** Advance simulated time by ms, delivering packets and letting streams run. */
  async advance(ms: number): Promise<void> {
    const end = this.clock.now() + ms;
    await this.run(() => this.clock.now() >= end, ms + 1);
  }
}
