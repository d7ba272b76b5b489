import { test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { VpnError } from '../../../src/errors.js';
import { createTransport, TcpTransport, TransportError } from '../../../src/transport/index.js';
import { closedTcpPort, frame, frameReader, stuckListener, tcpServer, writeSplit } from './servers.js';

const until = (cond: () => boolean, ms = 3000) =>
  new Promise<void>((res, rej) => {
    const t0 = Date.now();
    const tick = () => {
      if (cond()) return res();
      if (Date.now() - t0 > ms) return rej(new Error('condition not met in time'));
      setTimeout(tick, 5);
    };
    tick();
  });

function rejectsWith(p: Promise<unknown>, code: string): Promise<VpnError> {
  return p.then(
    () => assert.fail(`expected rejection with ${code}`),
    (e: unknown) => {
      assert.ok(e instanceof VpnError, String(e));
      assert.equal(e.code, code, e.message);
      return e;
    },
  );
}

test('framed echo with replies split at odd byte boundaries', async () => {
  const srv = await tcpServer((s) => {
    const frames: Buffer[] = [];
    s.on(
      'data',
      frameReader((f) => {
        frames.push(Buffer.from(f));
        if (frames.length === 4) void writeSplit(s, frame(...frames), [1, 3, 2, 7, 1, 1, 513]);
      }),
    );
  });
  const t = createTransport('tcp', { host: '127.0.0.1', port: srv.port, connectTimeoutMs: 2000 });
  try {
    assert.equal(t.kind, 'tcp');
    const got: Buffer[] = [];
    t.on('packet', (p) => got.push(Buffer.from(p)));
    await t.connect();
    assert.equal(t.localAddress, '127.0.0.1');
    assert.ok(t.localPort! > 0);
    const pkts = [Buffer.from([1]), Buffer.alloc(1400, 0xab), Buffer.from('x'.repeat(257)), Buffer.alloc(2, 0)];
    for (const p of pkts) t.send(p);
    await until(() => got.length === 4);
    assert.deepEqual(got, pkts);
  } finally {
    await t.close();
    await srv.stop();
  }
});

test('client framing on the wire: uint16 BE length not counting itself; the caller may reuse its buffer', async () => {
  const chunks: Buffer[] = [];
  const srv = await tcpServer((s) => s.on('data', (c) => chunks.push(c)));
  const t = new TcpTransport({ host: '127.0.0.1', port: srv.port });
  try {
    await t.connect();
    const buf = Buffer.from('hello');
    t.send(buf);
    buf.fill(0);
    t.send(new Uint8Array(300).fill(1));
    await until(() => Buffer.concat(chunks).length === 7 + 302);
    const all = Buffer.concat(chunks);
    assert.deepEqual(all.subarray(0, 7), Buffer.from([0, 5, ...Buffer.from('hello')]));
    assert.equal(all.readUInt16BE(7), 300);
    assert.equal(t.packetsSent, 2);
  } finally {
    await t.close();
    await srv.stop();
  }
});

test('zero-length frame from the server: PROTOCOL error then close', async () => {
  const srv = await tcpServer((s) => s.write(Buffer.concat([frame(Buffer.from('ok')), Buffer.from([0, 0])])));
  const t = new TcpTransport({ host: '127.0.0.1', port: srv.port });
  const events: string[] = [];
  t.on('packet', (p) => events.push(`packet:${p}`));
  t.on('error', (e) => events.push(`error:${(e as VpnError).code}`));
  t.on('close', () => events.push('close'));
  try {
    await t.connect();
    await until(() => events.includes('close'));
    assert.deepEqual(events, ['packet:ok', 'error:PROTOCOL', 'close']);
  } finally {
    await t.close();
    await srv.stop();
  }
});

test('oversize frame (e.g. an HTTP server) is a PROTOCOL error', async () => {
  const srv = await tcpServer((s) => s.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
  const t = new TcpTransport({ host: '127.0.0.1', port: srv.port, maxPacketSize: 1600 });
  const errors: VpnError[] = [];
  let closed = 0;
  t.on('error', (e) => errors.push(e as VpnError));
  t.on('close', () => closed++);
  try {
    await t.connect();
    await until(() => closed === 1);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, 'PROTOCOL');
    assert.match(errors[0]!.message, /packet length \d+ > 1600/);
  } finally {
    await t.close();
    await srv.stop();
  }
  assert.equal(closed, 1, 'close is emitted once');
});

test('server closes: TRANSPORT_CLOSED (mentioning a partial packet) then close', async () => {
  const srv = await tcpServer((s) => s.end(Buffer.from([0, 10, 1, 2, 3])));
  const t = new TcpTransport({ host: '127.0.0.1', port: srv.port });
  const errors: TransportError[] = [];
  let closed = false;
  t.on('error', (e) => errors.push(e as TransportError));
  t.on('close', () => (closed = true));
  try {
    await t.connect();
    await until(() => closed);
    assert.equal(errors[0]!.code, 'TRANSPORT_CLOSED');
    assert.equal(errors[0]!.fatal, true);
    assert.match(errors[0]!.message, /middle of a packet \(5 bytes pending\)/);
  } finally {
    await t.close();
    await srv.stop();
  }
});

test('refused port: connect rejects with CONN_REFUSED', async () => {
  const port = await closedTcpPort();
  const t = new TcpTransport({ host: '127.0.0.1', port });
  const e = await rejectsWith(t.connect(), 'CONN_REFUSED');
  assert.match(e.message, /refused by 127\.0\.0\.1:\d+ \(TCP\)/);
  assert.equal((e as TransportError).errno, 'ECONNREFUSED');
  t.send(Buffer.from('x')); // never throws
  await t.close();
});

test('connect timeout against a listener whose accept queue is full', async () => {
  const stuck = await stuckListener();
  try {
    const t = new TcpTransport({ host: '127.0.0.1', port: stuck.port, connectTimeoutMs: 300 });
    const t0 = Date.now();
    const e = await rejectsWith(t.connect(), 'CONNECT_TIMEOUT');
    const dt = Date.now() - t0;
    assert.ok(dt >= 290 && dt < 2000, `timed out after ${dt} ms`);
    assert.match(e.message, /timed out after 300 ms/);
    await t.close();

    // close() while connecting rejects the pending connect at once
    const t2 = new TcpTransport({ host: '127.0.0.1', port: stuck.port, connectTimeoutMs: 30_000 });
    const p = t2.connect();
    setTimeout(() => void t2.close(), 50);
    const t1 = Date.now();
    await rejectsWith(p, 'TRANSPORT_CLOSED');
    assert.ok(Date.now() - t1 < 1000);
  } finally {
    await stuck.stop();
  }
});

test('send before connect and after close is dropped and counted; close is idempotent and emits close once', async () => {
  let serverSock: net.Socket | undefined;
  const srv = await tcpServer((s) => (serverSock = s));
  const t = new TcpTransport({ host: '127.0.0.1', port: srv.port });
  try {
    let closes = 0;
    t.on('close', () => closes++);
    t.send(Buffer.from('early'));
    assert.equal(t.droppedNotOpen, 1);
    const p1 = t.connect();
    assert.equal(t.connect(), p1, 'connect() is idempotent');
    await p1;
    await until(() => serverSock !== undefined);
    const received: Buffer[] = [];
    serverSock!.on('data', (c) => received.push(c));
    const serverGotEnd = new Promise<void>((res) => serverSock!.once('end', () => res()));
    t.send(Buffer.from('last words'));
    await Promise.all([t.close(), t.close()]);
    await serverGotEnd;
    assert.equal(String(Buffer.concat(received).subarray(2)), 'last words', 'queued data is flushed before FIN');
    t.send(Buffer.from('late'));
    assert.equal(t.droppedNotOpen, 2);
    assert.equal(closes, 1);
  } finally {
    await t.close();
    await srv.stop();
  }
});
