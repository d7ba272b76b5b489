import type { Link, LinkConfig, PacketHandler } from '../../../src/link/link.js';
import { buildIcmp, type IcmpMessageInit } from '../../../src/wire/icmp.js';
import { buildIpv4, parseIpv4, parseIpv4Address, type Ipv4HeaderInit, type Ipv4Packet } from '../../../src/wire/ipv4.js';
import { buildUdp } from '../../../src/wire/udp.js';

export const US = '10.8.0.2';
export const PEER = '10.8.0.1';
export const US_N = parseIpv4Address(US);
export const PEER_N = parseIpv4Address(PEER);

export function linkConfig(address: string, over: Partial<LinkConfig> = {}): LinkConfig {
  return { address, netmask: '255.255.255.0', gateway: PEER, mtu: 1500, dns: [], domains: [], routes: [], redirectGateway: false, ...over };
}

/** The far side of a link, by hand: records what the stack sends, injects what it should receive. */
export class FakePeer {
  readonly sent: Uint8Array[] = [];
  config: LinkConfig | undefined;
  private recv: PacketHandler = () => {};
  readonly link: Link;
  constructor(cfg: LinkConfig | undefined = linkConfig(US)) {
    this.config = cfg;
    const self = this;
    this.link = {
      send: (p) => void self.sent.push(p),
      onReceive: (h) => {
        self.recv = h;
      },
      get config() {
        return self.config;
      },
      get mtu() {
        return self.config?.mtu ?? 1500;
      },
    };
  }
  inject(p: Uint8Array): void {
    this.recv(p);
  }
  /** Parsed packets sent so far (and forget them). */
  take(): Ipv4Packet[] {
    const out = this.sent.map((p) => parseIpv4(p));
    this.sent.length = 0;
    return out;
  }
}

export function ip(payload: Uint8Array, h: Partial<Ipv4HeaderInit> = {}): Uint8Array {
  return buildIpv4({ src: PEER_N, dst: US_N, protocol: 17, ttl: 64, id: 1, ...h }, payload);
}

export function icmpPacket(m: IcmpMessageInit, h: Partial<Ipv4HeaderInit> = {}): Uint8Array {
  return ip(buildIcmp(m), { protocol: 1, ...h });
}

export function udpPacket(srcPort: number, dstPort: number, payload: Uint8Array, h: Partial<Ipv4HeaderInit> = {}): Uint8Array {
  const src = h.src ?? PEER_N;
  const dst = h.dst ?? US_N;
  return ip(buildUdp({ srcPort, dstPort, payload }, { src, dst }), { protocol: 17, ...h });
}

/** Let queued microtasks and immediates run. */
export const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
