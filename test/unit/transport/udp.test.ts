import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { VpnError } from '../../../src/errors.js';
import { createTransport, TransportError, UdpTransport } from '../../../src/transport/index.js';
import { closedUdpPort, udpEchoServer } from './servers.js';

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

test('one packet per datagram, echoed back; send copies the caller buffer', async () => {
  const srv = await udpEchoServer();
  const t = createTransport('udp', { host: '127.0.0.1', port: srv.port });
  try {
    assert.equal(t.kind, 'udp');
    const got: Buffer[] = [];
    t.on('packet', (p) => got.push(Buffer.from(p)));
    await t.connect();
    assert.equal(t.localAddress, '127.0.0.1');
    assert.ok(t.localPort! > 0);
    const buf = Buffer.alloc(1400, 0x11);
    t.send(buf);
    buf.fill(0x22); // reuse right away: the datagram already sent must hold 0x11
    t.send(buf.subarray(0, 3));
    t.send(Buffer.from([0x38])); // a P_CONTROL_HARD_RESET_CLIENT_V2-sized opcode byte
    await until(() => got.length === 3);
    assert.deepEqual(got[0], Buffer.alloc(1400, 0x11));
    assert.deepEqual(got[1], Buffer.alloc(3, 0x22));
    assert.deepEqual(got[2], Buffer.from([0x38]));
    assert.equal(srv.received.length, 3, 'one datagram per packet');
  } finally {
    await t.close();
    await srv.stop();
  }
});

test('an IPv6 server written in a long form (0:0:0:0:0:0:0:1): udp6 socket, and the replies, which come from ::1, are delivered', async () => {
  const srv = await udpEchoServer('::1');
  const t = new UdpTransport({ host: '0:0:0:0:0:0:0:1', port: srv.port });
  try {
    const got: string[] = [];
    t.on('packet', (p) => got.push(String(p)));
    await t.connect();
    assert.equal(t.localAddress, '::1');
    assert.equal(t.remote, '::1');
    t.send(Buffer.from('six'));
    await until(() => got.length === 1);
    assert.deepEqual(got, ['six']);
    assert.equal(t.droppedForeign, 0);
  } finally {
    await t.close();
    await srv.stop();
  }
});

test('datagrams from another source are not delivered', async () => {
  const srv = await udpEchoServer();
  const t = new UdpTransport({ host: '127.0.0.1', port: srv.port });
  const other = dgram.createSocket('udp4');
  try {
    const got: string[] = [];
    t.on('packet', (p) => got.push(String(p)));
    await t.connect();
    other.send(Buffer.from('spoof'), t.localPort!, '127.0.0.1');
    t.send(Buffer.from('real'));
    await until(() => got.length >= 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(got, ['real']);
  } finally {
    other.close();
    await t.close();
    await srv.stop();
  }
});

test('ICMP port unreachable: non-fatal CONN_REFUSED error, transport stays usable once the server appears', async () => {
  const port = await closedUdpPort();
  const t = new UdpTransport({ host: '127.0.0.1', port });
  const errors: TransportError[] = [];
  const got: string[] = [];
  let closed = false;
  t.on('error', (e) => errors.push(e as TransportError));
  t.on('packet', (p) => got.push(String(p)));
  t.on('close', () => (closed = true));
  let server: dgram.Socket | undefined;
  try {
    await t.connect();
    t.send(Buffer.from('hello?'));
    await until(() => errors.length > 0);
    assert.ok(errors[0] instanceof VpnError);
    assert.equal(errors[0]!.code, 'CONN_REFUSED');
    assert.equal(errors[0]!.fatal, false);
    assert.match(errors[0]!.message, /ICMP port unreachable/);
    assert.equal(closed, false);
    // the server comes up on that port: the same transport now works
    server = dgram.createSocket('udp4');
    server.on('message', (m, r) => server!.send(m, r.port, r.address));
    await new Promise<void>((res) => server!.bind(port, '127.0.0.1', () => res()));
    t.send(Buffer.from('again'));
    await until(() => got.length === 1);
    assert.deepEqual(got, ['again']);
  } finally {
    server?.close();
    await t.close();
  }
});

test('no error listener: an ICMP error does not crash the process', async () => {
  const port = await closedUdpPort();
  const t = new UdpTransport({ host: '127.0.0.1', port });
  try {
    await t.connect();
    t.send(Buffer.from('x'));
    t.send(Buffer.from('y'));
    await new Promise((r) => setTimeout(r, 100));
    t.send(Buffer.from('z'));
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    await t.close();
  }
});

test('host name is resolved (localhost) and the resolved address is used', async () => {
  const { address } = await lookup('localhost');
  const srv = await udpEchoServer(address);
  const t = new UdpTransport({ host: 'localhost', port: srv.port });
  try {
    const got: string[] = [];
    t.on('packet', (p) => got.push(String(p)));
    await t.connect();
    assert.equal(t.remote, address);
    t.send(Buffer.from('via name'));
    await until(() => got.length === 1);
  } finally {
    await t.close();
    await srv.stop();
  }
});

test('send before connect / after close is dropped; close idempotent, close event once; connect after close rejects', async () => {
  const srv = await udpEchoServer();
  const t = new UdpTransport({ host: '127.0.0.1', port: srv.port });
  let closes = 0;
  t.on('close', () => closes++);
  try {
    t.send(Buffer.from('early'));
    assert.equal(t.droppedNotOpen, 1);
    await t.connect();
    await Promise.all([t.close(), t.close()]);
    t.send(Buffer.from('late'));
    assert.equal(t.droppedNotOpen, 2);
    assert.equal(closes, 1);
    assert.equal(t.localPort, undefined);
    const t2 = new UdpTransport({ host: '127.0.0.1', port: srv.port });
    await t2.close();
    await assert.rejects(t2.connect(), (e: unknown) => e instanceof VpnError && e.code === 'TRANSPORT_CLOSED');
  } finally {
    await t.close();
    await srv.stop();
  }
});
