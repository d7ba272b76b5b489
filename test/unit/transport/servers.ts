/** Loopback servers for the transport tests. Everything binds 127.0.0.1 and is closed by its stop(). */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';

export interface Stoppable {
  stop(): Promise<void>;
}

export async function udpEchoServer(host = '127.0.0.1'): Promise<Stoppable & { port: number; received: Buffer[]; socket: dgram.Socket }> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const received: Buffer[] = [];
  socket.on('message', (m, r) => {
    received.push(Buffer.from(m));
    socket.send(m, r.port, r.address);
  });
  await new Promise<void>((res) => socket.bind(0, host, () => res()));
  return {
    port: socket.address().port,
    received,
    socket,
    stop: () => new Promise<void>((res) => socket.close(() => res())),
  };
}

/** Parse length-prefixed frames from a byte stream (the test's own independent implementation). */
export function frameReader(onFrame: (f: Buffer) => void): (chunk: Buffer) => void {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) break;
      onFrame(buf.subarray(2, 2 + len));
      buf = buf.subarray(2 + len);
    }
  };
}

export function frame(...packets: Uint8Array[]): Buffer {
  return Buffer.concat(packets.flatMap((p) => [Buffer.from([p.length >> 8, p.length & 0xff]), Buffer.from(p)]));
}

/**
 * A TCP server: on each connection calls onConnection(socket). Tracks sockets so stop() can destroy them.
 */
export async function tcpServer(onConnection: (s: net.Socket) => void): Promise<Stoppable & { port: number; connections: number }> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0 };
  const server = net.createServer((s) => {
    state.connections++;
    sockets.add(s);
    s.setNoDelay(true);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConnection(s);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return state.connections;
    },
    stop: () =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
}

/** Write bytes in pieces of the given sizes (cycled), each piece in its own write after a short pause. */
export async function writeSplit(s: net.Socket, data: Buffer, sizes: number[]): Promise<void> {
  let i = 0;
  let k = 0;
  while (i < data.length) {
    const n = sizes[k++ % sizes.length]!;
    s.write(data.subarray(i, i + n));
    i += n;
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A port on 127.0.0.1 with nothing listening (TCP). */
export async function closedTcpPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((res) => srv.close(() => res()));
  return port;
}

/** A port on 127.0.0.1 with nothing bound (UDP). */
export async function closedUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((res) => s.bind(0, '127.0.0.1', () => res()));
  const port = s.address().port;
  await new Promise<void>((res) => s.close(() => res()));
  return port;
}

/**
 * A listening TCP socket whose accept queue is full, so further SYNs are dropped and connect() hangs
 * deterministically: a child process listens with backlog 1 and blocks its event loop (never accepts);
 * we fill the queue with connections until they stop completing.
 */
export async function stuckListener(): Promise<Stoppable & { port: number }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '-e',
      `const net = require('net');
       const srv = net.createServer();
       srv.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
         process.stdout.write(srv.address().port + '\\n', () => {
           Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30000);
           process.exit(0);
         });
       });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((res, rej) => {
    const t = setTimeout(() => rej(new Error('stuck listener did not start')), 10_000);
    child.stdout!.once('data', (d) => {
      clearTimeout(t);
      res(Number(String(d).trim()));
    });
  });
  const fillers: net.Socket[] = [];
  // Fill until a connection does not complete within 200 ms (Linux queues backlog+1).
  for (let i = 0; i < 8; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
    const ok = await new Promise<boolean>((res) => {
      const t = setTimeout(() => res(false), 200);
      s.once('connect', () => {
        clearTimeout(t);
        res(true);
      });
    });
    if (!ok) break;
  }
  return {
    port,
    stop: async () => {
      for (const s of fillers) s.destroy();
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
