/**
 * DNS over TCP (RFC 1035 4.2.2, RFC 7766) through our own TcpStack: the resolver's `tcp` hook, used when a UDP
 * answer comes back truncated. One connection per query: connect, send the query with its 2-byte length
 * prefix, read one length-prefixed response, close.
 */
import { VpnError } from '../errors.js';
import type { DnsTcpQuery } from './dns.js';
import type { TcpStack } from './tcp/tcp.js';

/** Largest DNS message (the length prefix is 16 bits). */
const MAX_MESSAGE = 65535;

/** A DnsTcpQuery that dials `server:port` on `tcp`. Rejects with a VpnError (timeouts: DNS_TIMEOUT). */
export function dnsOverTcp(tcp: TcpStack): DnsTcpQuery {
  return (server, port, query, timeoutMs) =>
    new Promise<Uint8Array>((resolve, reject) => {
      if (query.length > MAX_MESSAGE) {
        reject(new VpnError('DNS_ERROR', `DNS query of ${query.length} bytes is too long for TCP`));
        return;
      }
      const sock = tcp.connect({ host: server, port, timeoutMs });
      let buf: Buffer = Buffer.alloc(0);
      let settled = false;
      const finish = (err: Error | undefined, msg?: Uint8Array): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        if (err) reject(err instanceof VpnError ? err : new VpnError('DNS_ERROR', err.message, { cause: err }));
        else resolve(msg!);
      };
      // One deadline for connect + exchange.
      const timer = setTimeout(
        () => finish(new VpnError('DNS_TIMEOUT', `no DNS answer over TCP from ${server}:${port} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      sock.on('error', (e: Error) => finish(e));
      sock.on('connect', () => {
        const frame = Buffer.allocUnsafe(2 + query.length);
        frame.writeUInt16BE(query.length, 0);
        frame.set(query, 2);
        sock.write(frame);
      });
      sock.on('data', (d: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, d]) : d;
        if (buf.length < 2) return;
        const len = buf.readUInt16BE(0);
        if (buf.length >= 2 + len) finish(undefined, new Uint8Array(buf.subarray(2, 2 + len)));
      });
      sock.on('end', () => finish(new VpnError('DNS_ERROR', `${server}:${port} closed the DNS-over-TCP connection before a full answer`)));
    });
}
