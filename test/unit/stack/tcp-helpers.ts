/** Shared helpers for the TCP tests: deterministic payloads, transfers with sha256, socket event capture. */
import { createHash } from 'node:crypto';
import { mulberry32 } from '../../../src/link/fault.js';
import type { TcpSocket } from '../../../src/stack/tcp/socket.js';
import { ADDR_B, type Sim } from './tcp-harness.js';

export function payload(n: number, seed = 1): Buffer {
  const r = mulberry32(seed);
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) {
    const v = (r() * 0x100000000) >>> 0;
    b[i] = v & 0xff;
    if (i + 1 < n) b[i + 1] = (v >>> 8) & 0xff;
    if (i + 2 < n) b[i + 2] = (v >>> 16) & 0xff;
    if (i + 3 < n) b[i + 3] = v >>> 24;
  }
  return b;
}

export function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Collects everything a socket reads and how it ended. */
export class Sink {
  private hash = createHash('sha256');
  bytes = 0;
  ended = false;
  closed = false;
  error: (Error & { code?: string }) | undefined;
  digest: string | undefined;
  constructor(readonly s: TcpSocket) {
    s.on('data', (d: Buffer) => {
      this.bytes += d.length;
      this.hash.update(d);
    });
    s.on('end', () => {
      this.ended = true;
      this.digest = this.hash.digest('hex');
    });
    s.on('error', (e) => {
      this.error = e;
    });
    s.on('close', () => {
      this.closed = true;
    });
  }
}

/** Write data in chunks, then end(). */
export function writeAll(s: TcpSocket, data: Buffer, chunk = 64 * 1024): void {
  for (let i = 0; i < data.length; i += chunk) s.write(data.subarray(i, Math.min(data.length, i + chunk)));
  s.end();
}

/** A listener on B and a connected client from A, both sides' sockets returned once established. */
export async function connectPair(
  sim: Sim,
  port = 80,
  opts: { allowHalfOpen?: boolean } = {},
): Promise<{ client: TcpSocket; server: TcpSocket; close: () => void }> {
  let server: TcpSocket | undefined;
  const l = sim.b.listen(port, (s) => (server = s), { allowHalfOpen: opts.allowHalfOpen ?? false });
  const client = sim.a.connect({ host: ADDR_B, port, allowHalfOpen: opts.allowHalfOpen ?? false });
  let connected = false;
  client.on('connect', () => (connected = true));
  await sim.run(() => connected && server !== undefined, 30_000);
  return { client, server: server!, close: () => l.close() };
}
