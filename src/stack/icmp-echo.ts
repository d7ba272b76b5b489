import type { Link } from '../link/link.js';
import { buildIcmp, parseIcmp } from '../wire/icmp.js';
import { IpProtocol, buildIpv4, parseIpv4, parseIpv4Address, ipv4ToString } from '../wire/ipv4.js';

export interface EchoReply {
  from: string;
  seq: number;
  /** ICMP payload bytes plus the 8-byte ICMP header, as ping(8) counts them. */
  bytes: number;
  ttl: number;
  rttMs: number;
}

export interface IcmpEchoStats {
  requestsSent: number;
  repliesReceived: number;
  /** Echo requests to our address that we answered. */
  requestsAnswered: number;
  /** Packets that were not ICMP echo traffic for us, or did not parse. */
  ignored: number;
}

/**
 * ICMP echo over a Link, before (and independently of) the full IP stack: sends echo requests and
 * matches replies by id and sequence, and answers echo requests addressed to our tunnel address.
 * Packets that are not ICMP are passed to `next` (so a stack can sit behind it).
 */
export class IcmpEcho {
  readonly stats: IcmpEchoStats = { requestsSent: 0, repliesReceived: 0, requestsAnswered: 0, ignored: 0 };
  private readonly id = (process.pid ^ (Math.random() * 0xffff)) & 0xffff;
  private readonly waiting = new Map<number, { sentAt: number; resolve: (r: EchoReply) => void; timer: NodeJS.Timeout }>();
  private ipId = 1;

  constructor(
    private readonly link: Link,
    private readonly next: (packet: Uint8Array) => void = () => {},
    private readonly now: () => number = () => performance.now(),
  ) {
    link.onReceive((p) => this.onPacket(p));
  }

  private local(): number {
    const a = this.link.config?.address;
    if (!a) throw new Error('link is not up');
    return parseIpv4Address(a);
  }

  /** Sends one echo request; resolves with the reply, or undefined after timeoutMs. */
  ping(dst: string, seq: number, opts: { payloadSize?: number; timeoutMs?: number } = {}): Promise<EchoReply | undefined> {
    const size = opts.payloadSize ?? 56;
    const payload = new Uint8Array(size);
    for (let i = 0; i < size; i++) payload[i] = (i + 0x10) & 0xff;
    const icmp = buildIcmp({ kind: 'echo-request', id: this.id, seq: seq & 0xffff, payload });
    const packet = buildIpv4(
      { src: this.local(), dst: parseIpv4Address(dst), protocol: IpProtocol.ICMP, ttl: 64, id: this.ipId++ & 0xffff, dontFragment: true },
      icmp,
    );
    return new Promise((resolve) => {
      const key = seq & 0xffff;
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        resolve(undefined);
      }, opts.timeoutMs ?? 2000);
      this.waiting.set(key, { sentAt: this.now(), resolve, timer });
      this.stats.requestsSent++;
      this.link.send(packet);
    });
  }

  /** Stops waiting for outstanding replies (they resolve as undefined). */
  cancel(): void {
    for (const [, w] of this.waiting) {
      clearTimeout(w.timer);
      w.resolve(undefined as unknown as EchoReply);
    }
    this.waiting.clear();
  }

  private onPacket(p: Uint8Array): void {
    let ip;
    try {
      ip = parseIpv4(p);
    } catch {
      this.stats.ignored++;
      return;
    }
    if (ip.protocol !== IpProtocol.ICMP) {
      this.next(p);
      return;
    }
    let msg;
    try {
      msg = parseIcmp(ip.payload);
    } catch {
      this.stats.ignored++;
      return;
    }
    const local = this.link.config ? parseIpv4Address(this.link.config.address) : -1;
    if (msg.kind === 'echo-reply' && msg.id === this.id && ip.dst === local) {
      const w = this.waiting.get(msg.seq);
      if (!w) return;
      this.waiting.delete(msg.seq);
      clearTimeout(w.timer);
      this.stats.repliesReceived++;
      w.resolve({ from: ipv4ToString(ip.src), seq: msg.seq, bytes: msg.payload.length + 8, ttl: ip.ttl, rttMs: this.now() - w.sentAt });
      return;
    }
    if (msg.kind === 'echo-request' && ip.dst === local) {
      const reply = buildIcmp({ kind: 'echo-reply', id: msg.id, seq: msg.seq, payload: msg.payload });
      this.link.send(buildIpv4({ src: local, dst: ip.src, protocol: IpProtocol.ICMP, ttl: 64, id: this.ipId++ & 0xffff }, reply));
      this.stats.requestsAnswered++;
      return;
    }
    this.next(p);
  }
}
