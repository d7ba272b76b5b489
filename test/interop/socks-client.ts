/** A minimal SOCKS5 client for the interop tests (raw bytes, so that bad input can be sent too). */
import { connect, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import type { HostPort } from './cli-helpers.js';

/** Connects and collects everything the server sends; `read(n)` waits for n bytes (or the close). */
export class RawConn {
  readonly sock: Socket;
  private buf = Buffer.alloc(0);
  private closedFlag = false;
  private wake: (() => void) | undefined;

  private constructor(sock: Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    sock.on('close', () => {
      this.closedFlag = true;
      this.wake?.();
    });
    sock.on('error', () => undefined);
  }

  static open(to: HostPort, localAddress?: string): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: to.host, port: to.port, localAddress }, () => {
        s.removeListener('error', reject);
        resolve(new RawConn(s));
      });
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.closedFlag;
  }
  get received(): Buffer {
    return this.buf;
  }

  write(b: Uint8Array | string): void {
    this.sock.write(b);
  }

  /** Waits until `n` bytes arrived or the connection closed or timeoutMs passed; returns and consumes up to n. */
  async read(n: number, timeoutMs = 10_000): Promise<Buffer> {
    const end = Date.now() + timeoutMs;
    while (this.buf.length < n && !this.closedFlag && Date.now() < end) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, end - Date.now()));
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = undefined;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  /** Resolves true once the server closed the connection (false after timeoutMs). */
  async waitClosed(timeoutMs = 10_000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (!this.closedFlag && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return this.closedFlag;
  }

  destroy(): void {
    this.sock.destroy();
  }
}

/** A DNS query for `name` type A (no EDNS). */
export function dnsQuery(id: number, name: string): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(0x0100, 2); // RD
  head.writeUInt16BE(1, 4);
  return Buffer.concat([head, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

/** id, rcode, answer count and the A records of a DNS response (assumes compressed answer names). */
export function parseDnsAnswer(b: Buffer): { id: number; rcode: number; ancount: number; addresses: string[] } {
  const id = b.readUInt16BE(0);
  const rcode = b[3]! & 0x0f;
  const qd = b.readUInt16BE(4);
  const ancount = b.readUInt16BE(6);
  let off = 12;
  for (let q = 0; q < qd; q++) {
    while (b[off]! !== 0) off += (b[off]! & 0xc0) === 0xc0 ? 1 : b[off]! + 1;
    off += 5;
  }
  const addresses: string[] = [];
  for (let a = 0; a < ancount; a++) {
    if ((b[off]! & 0xc0) === 0xc0) off += 2;
    else {
      while (b[off]! !== 0) off += b[off]! + 1;
      off++;
    }
    const type = b.readUInt16BE(off);
    const rdlen = b.readUInt16BE(off + 8);
    if (type === 1 && rdlen === 4) addresses.push([...b.subarray(off + 10, off + 14)].join('.'));
    off += 10 + rdlen;
  }
  return { id, rcode, ancount, addresses };
}

/**
 * SOCKS5 UDP ASSOCIATE, then one datagram (a DNS query for `name`) to `dns`:53 through the relay; resolves with
 * the DNS answer. The TCP control connection is closed afterwards.
 */
export async function socksUdpDns(socks: HostPort, dns: string, name: string, timeoutMs = 10_000): Promise<ReturnType<typeof parseDnsAnswer>> {
  const c = await RawConn.open(socks);
  const udp = createSocket('udp4');
  try {
    c.write(Buffer.from([5, 1, 0]));
    const m = await c.read(2);
    if (m[0] !== 5 || m[1] !== 0) throw new Error(`SOCKS greeting refused: ${m.toString('hex')}`);
    c.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]));
    const rep = await c.read(10);
    if (rep[1] !== 0) throw new Error(`UDP ASSOCIATE refused: reply 0x${rep[1]?.toString(16)}`);
    let relayHost = [...rep.subarray(4, 8)].join('.');
    if (relayHost === '0.0.0.0') relayHost = socks.host;
    const relayPort = rep.readUInt16BE(8);
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    const header = Buffer.from([0, 0, 0, 1, ...dns.split('.').map(Number), 0, 53]);
    const id = 0x5a5a;
    const answer = new Promise<Buffer>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no DNS answer through the SOCKS5 UDP relay')), timeoutMs);
      udp.on('message', (msg) => {
        clearTimeout(t);
        resolve(msg);
      });
    });
    const send = () => udp.send(Buffer.concat([header, dnsQuery(id, name)]), relayPort, relayHost);
    send();
    const retry = setInterval(send, 1000);
    try {
      const msg = await answer;
      if (msg[0] !== 0 || msg[1] !== 0 || msg[2] !== 0 || msg[3] !== 1) throw new Error(`bad SOCKS UDP header ${msg.subarray(0, 10).toString('hex')}`);
      const from = [...msg.subarray(4, 8)].join('.');
      if (from !== dns || msg.readUInt16BE(8) !== 53) throw new Error(`answer from ${from}:${msg.readUInt16BE(8)}, not ${dns}:53`);
      const r = parseDnsAnswer(msg.subarray(10));
      if (r.id !== id) throw new Error(`DNS id ${r.id} != ${id}`);
      return r;
    } finally {
      clearInterval(retry);
    }
  } finally {
    udp.close();
    c.destroy();
  }
}
