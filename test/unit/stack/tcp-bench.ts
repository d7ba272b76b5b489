/**
 * Throughput of our TCP against our TCP over an in-memory link on the system clock (not part of the test
 * run). Packets are queued and delivered in batches on setImmediate, like datagrams arriving per event-loop
 * turn. Run: node --import tsx test/unit/stack/tcp-bench.ts [MB] [ip]
 *   ip: also build and parse an IPv4 header per packet (closer to the real path).
 */
import { SystemClock } from '../../../src/util/clock.js';
import { buildIpv4, parseIpv4, parseIpv4Address, IpProtocol, type Ipv4Header } from '../../../src/wire/ipv4.js';
import { TcpStack } from '../../../src/stack/tcp/tcp.js';
import type { IpSender } from '../../../src/stack/types.js';
import type { TcpSocket } from '../../../src/stack/tcp/socket.js';

const MB = Number(process.argv[2] ?? 256);
const withIp = process.argv[3] === 'ip';
const A = parseIpv4Address('10.0.0.1');
const B = parseIpv4Address('10.0.0.2');
const clock = new SystemClock();
const hdr = parseIpv4(buildIpv4({ src: A, dst: B, protocol: IpProtocol.TCP }, new Uint8Array(20))) as Ipv4Header;

let queue: Array<{ to: TcpStack; src: number; dst: number; p: Uint8Array }> = [];
let scheduled = false;
let packets = 0;
function flush(): void {
  scheduled = false;
  const q = queue;
  queue = [];
  for (const e of q) {
    if (withIp) {
      const ip = parseIpv4(e.p);
      e.to.input(ip.src, ip.dst, ip.payload, ip);
    } else e.to.input(e.src, e.dst, e.p, hdr);
  }
}
function sender(self: number, peer: () => TcpStack): IpSender {
  return {
    sendIp(dst, protocol, payload) {
      packets++;
      const p = withIp ? buildIpv4({ src: self, dst, protocol, dontFragment: true }, payload) : payload;
      queue.push({ to: peer(), src: self, dst, p });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    localAddress: () => self,
    mtu: () => 1500,
  };
}
let sa: TcpStack;
let sb: TcpStack;
sa = new TcpStack(sender(A, () => sb), { clock });
sb = new TcpStack(sender(B, () => sa), { clock });

const total = MB * 1024 * 1024;
const chunk = Buffer.alloc(64 * 1024, 0x61);
let got = 0;
const t0 = performance.now();
sb.listen(5001, (s: TcpSocket) => {
  s.on('data', (d: Buffer) => {
    got += d.length;
  });
  s.on('end', () => {
    const ms = performance.now() - t0;
    const mbps = (total / 1024 / 1024 / (ms / 1000)).toFixed(1);
    console.log(
      `${MB} MB in ${ms.toFixed(0)} ms: ${mbps} MB/s (${((total * 8) / 1e6 / (ms / 1000)).toFixed(0)} Mbit/s), ${packets} packets, ` +
        `retransmits ${sa.stats.retransmits}, timer arms ${sa.timerArms + sb.timerArms}${withIp ? ', with IPv4 build/parse' : ''}`,
    );
    s.end();
    setTimeout(() => {
      sa.close();
      sb.close();
    }, 10);
  });
});
const c = sa.connect({ host: '10.0.0.2', port: 5001 });
let sent = 0;
function pump(): void {
  while (sent < total) {
    sent += chunk.length;
    if (!c.write(chunk)) {
      c.once('drain', pump);
      return;
    }
  }
  c.end();
}
c.on('connect', pump);
c.on('error', (e) => console.error('client error', e));
