/**
 * TCP over IPv6, stack to stack (issue 16): two whole IpStacks (IPv4 and IPv6 layers on one Link) with a TcpStack
 * on each IPv6 layer, joined by a delayed link on a simulated clock through the seeded fault injector. Byte-exact
 * at 0 % and 5 % loss, the MSS from the IPv6 MTU, ICMPv6 echo both ways, Packet Too Big lowering the MSS, and the
 * IPv4 side of the same link still working.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { withFaults, type FaultLink, type FaultOptions } from '../../../src/link/fault.js';
import type { Link, LinkConfig, PacketHandler } from '../../../src/link/link.js';
import { ManualClock } from '../../../src/util/clock.js';
import { IpStack } from '../../../src/stack/stack.js';
import { TcpStack } from '../../../src/stack/tcp/tcp.js';
import type { TcpSocket } from '../../../src/stack/tcp/socket.js';
import { buildIcmpv6 } from '../../../src/wire/icmpv6.js';
import { buildIpv6, ipv6AddressSum, parseIpv6, parseIpv6Address } from '../../../src/wire/ipv6.js';
import { parseTcp, TcpFlag } from '../../../src/wire/tcp.js';
import { IpProtocol } from '../../../src/wire/ipv4.js';
import { Sink, payload, sha, writeAll } from './tcp-helpers.js';

const V6A = 'fd00:8::1000';
const V6B = '2001:db8:80::80';

const cfg = (address: string, address6: string, mtu: number): LinkConfig => ({
  address,
  netmask: '255.255.255.0',
  mtu,
  dns: [],
  domains: [],
  routes: [],
  redirectGateway: false,
  address6,
  prefixLength6: 64,
});

class Sim6 {
  readonly clock = new ManualClock(0);
  readonly stackA: IpStack;
  readonly stackB: IpStack;
  readonly a: TcpStack;
  readonly b: TcpStack;
  readonly linkA: FaultLink;
  private queue: Array<{ at: number; pkt: Uint8Array; to: 'A' | 'B' }> = [];
  private recvA: PacketHandler = () => {};
  private recvB: PacketHandler = () => {};
  /** Sees every packet A sends (before faults); return false to drop it. */
  tapAB: ((pkt: Uint8Array) => boolean) | undefined;

  constructor(faults: FaultOptions, mtu = 1500, readonly delay = 1) {
    const rawA: Link = {
      send: (p) => {
        if (this.tapAB && !this.tapAB(p)) return;
        this.enqueue('B', p);
      },
      onReceive: (h) => void (this.recvA = h),
      config: cfg('10.0.0.1', V6A, mtu),
      mtu,
    };
    const rawB: Link = {
      send: (p) => this.enqueue('A', p),
      onReceive: (h) => void (this.recvB = h),
      config: cfg('10.0.0.2', V6B, mtu),
      mtu,
    };
    this.linkA = withFaults(rawA, { clock: this.clock, ...faults });
    this.stackA = new IpStack(this.linkA, { clock: this.clock });
    this.stackB = new IpStack(rawB, { clock: this.clock });
    this.a = new TcpStack(this.stackA.ip6, { clock: this.clock });
    this.b = new TcpStack(this.stackB.ip6, { clock: this.clock });
    this.stackA.ip6.registerProtocol(IpProtocol.TCP, this.a);
    this.stackB.ip6.registerProtocol(IpProtocol.TCP, this.b);
  }

  private enqueue(to: 'A' | 'B', pkt: Uint8Array): void {
    const p = { at: this.clock.now() + this.delay, pkt: Uint8Array.from(pkt), to };
    let i = this.queue.length;
    while (i > 0 && this.queue[i - 1]!.at > p.at) i--;
    this.queue.splice(i, 0, p);
  }

  inject(to: 'A' | 'B', pkt: Uint8Array): void {
    this.enqueue(to, pkt);
  }

  private deliverDue(): void {
    while (this.queue.length && this.queue[0]!.at <= this.clock.now()) {
      const p = this.queue.shift()!;
      (p.to === 'A' ? this.recvA : this.recvB)(p.pkt);
    }
  }

  async run(cond: () => boolean, maxMs = 600_000): Promise<number> {
    const start = this.clock.now();
    for (;;) {
      this.deliverDue();
      await tick();
      this.deliverDue();
      if (cond()) return this.clock.now() - start;
      if (this.clock.now() - start >= maxMs) throw new Error(`condition not reached within ${maxMs} ms simulated`);
      const next = this.queue.length ? this.queue[0]!.at : Infinity;
      this.clock.advance(Math.max(0, Math.min(next, this.clock.now() + 1) - this.clock.now()));
    }
  }
}

async function pair(sim: Sim6, port = 443): Promise<{ client: TcpSocket; server: TcpSocket }> {
  let server: TcpSocket | undefined;
  sim.b.listen(port, (s) => (server = s));
  const client = sim.a.connect({ host: V6B, port });
  let connected = false;
  client.on('connect', () => (connected = true));
  await sim.run(() => connected && server !== undefined, 30_000);
  return { client, server: server! };
}

async function bulk(faults: FaultOptions, size: number, t: { diagnostic(s: string): void }): Promise<Sim6> {
  const sim = new Sim6(faults);
  const synMss: number[] = [];
  sim.tapAB = (p) => {
    const ip = parseIpv6(p);
    if (ip.protocol === 6) {
      const seg = parseTcp(ip.payload, { src: 0, dst: 0, sum: ipv6AddressSum(ip.src, ip.dst) }); // checksum verified
      if (seg.flags & TcpFlag.SYN && seg.options.mss !== undefined) synMss.push(seg.options.mss);
    }
    return true;
  };
  const { client, server } = await pair(sim);
  assert.deepEqual(synMss, [1440], 'MSS = IPv6 MTU 1500 - 40 - 20');
  const up = payload(size, 61);
  const down = payload(size, 62);
  const atServer = new Sink(server);
  const atClient = new Sink(client);
  writeAll(client, up);
  writeAll(server, down);
  const ms = await sim.run(() => atServer.ended && atClient.ended, 3_600_000);
  assert.equal(atServer.bytes, up.length);
  assert.equal(atServer.digest, sha(up));
  assert.equal(atClient.bytes, down.length);
  assert.equal(atClient.digest, sha(down));
  const c = sim.linkA.counters;
  t.diagnostic(`${JSON.stringify(faults)}: ${ms} ms simulated, dropped ${c.out.dropped + c.in.dropped}, A retransmits ${sim.a.stats.retransmits}, B ${sim.b.stats.retransmits}`);
  assert.equal(sim.stackA.ip6.stats.drops.malformed + sim.stackB.ip6.stats.drops.malformed, 0);
  return sim;
}

test('TCP over IPv6, 8 MB each way at once, no loss: byte-exact, no retransmission', async (t) => {
  const sim = await bulk({ seed: 1 }, 8 * 1024 * 1024, t);
  assert.equal(sim.a.stats.retransmits + sim.b.stats.retransmits, 0);
  assert.equal(sim.stackA.ip.stats.received, 0, 'nothing went to the IPv4 layer');
});

test('TCP over IPv6, 8 MB each way at 5 % loss with reordering and duplication: byte-exact', async (t) => {
  const sim = await bulk({ drop: 0.05, reorder: 0.02, duplicate: 0.01, seed: 5 }, 8 * 1024 * 1024, t);
  const c = sim.linkA.counters;
  assert.ok(c.out.dropped > 100 && c.in.dropped > 100, 'losses both ways');
  assert.ok(sim.a.stats.retransmits > 0 && sim.b.stats.retransmits > 0);
});

type Reply = Awaited<ReturnType<IpStack['ping']>>;

async function pingVia(sim: Sim6, stack: IpStack, dst: string, opts?: { payloadSize?: number; timeoutMs?: number }): Promise<Reply> {
  let done = false;
  let r: Reply;
  void stack.ping(dst, opts).then((x) => {
    r = x;
    done = true;
  });
  await sim.run(() => done);
  return r;
}

test('ICMPv6 echo both ways, and IPv4 on the same link still answers', async () => {
  const sim = new Sim6({ seed: 3 });
  const r = await pingVia(sim, sim.stackA, V6B, { payloadSize: 100 });
  assert.ok(r);
  assert.equal(r.from, '2001:db8:80::80');
  assert.equal(r.bytes, 108);
  assert.equal(r.rttMs, 2);
  const back = await pingVia(sim, sim.stackB, 'fd00:8::1000');
  assert.equal(back?.from, 'fd00:8::1000');
  const v4 = await pingVia(sim, sim.stackA, '10.0.0.2');
  assert.equal(v4?.from, '10.0.0.2');
  assert.equal(sim.stackB.ip6.stats.icmp.echoRequestsAnswered, 1);
  assert.equal(sim.stackB.ip.stats.icmp.echoRequestsAnswered, 1);
  // no answer for an address nobody has: times out
  assert.equal(await pingVia(sim, sim.stackA, '2001:db8::dead', { timeoutMs: 500 }), undefined);
  assert.equal(sim.stackB.ip6.stats.drops.notForUs, 1);
});

test('Packet Too Big from a router on the path lowers the MSS to its MTU and the data still arrives', async () => {
  const sim = new Sim6({ seed: 4 });
  const { client, server } = await pair(sim);
  const router = parseIpv6Address('fd00:8::1');
  const us = parseIpv6Address(V6A);
  let tooBig = 0;
  let largestPassed = 0;
  sim.tapAB = (p) => {
    if (p.length > 1300) {
      // a router with a 1300-byte next hop: drops the packet and says so
      tooBig++;
      const quoted = p.subarray(0, 1280 - 48);
      sim.inject('A', buildIpv6({ src: router, dst: us, nextHeader: 58 }, buildIcmpv6({ kind: 'packet-too-big', code: 0, value: 1300, quoted }, ipv6AddressSum(router, us))));
      return false;
    }
    largestPassed = Math.max(largestPassed, p.length);
    return true;
  };
  const data = payload(300_000, 7);
  const sink = new Sink(server);
  writeAll(client, data);
  await sim.run(() => sink.ended, 120_000);
  assert.equal(sink.digest, sha(data), 'everything arrived, so everything after the first round fit in 1300');
  assert.ok(tooBig >= 1 && tooBig <= 20, `packets too big: ${tooBig}`);
  assert.equal(largestPassed, 1300, 'segments fill the new path MTU exactly');
  assert.ok(sim.stackA.ip6.stats.icmp.packetTooBig >= 1);
});

test('connect to a non-IPv6 literal on the IPv6 stack is a usage error; malformed packets are counted, not thrown', async () => {
  const sim = new Sim6({ seed: 5 });
  assert.throws(() => sim.a.connect({ host: '10.0.0.2', port: 80 }), /IPv6 literal/);
  sim.inject('B', new Uint8Array([0x60, 0, 0, 0, 0, 10, 6, 64]));
  await sim.run(() => sim.stackB.ip6.stats.received === 1);
  assert.equal(sim.stackB.ip6.stats.drops.malformed, 1);
});
