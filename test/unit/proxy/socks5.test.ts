import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect, type AddressInfo, type Socket } from 'node:net';
import fc from 'fast-check';
import { Socks5Server, SocksReply, parseUdpDatagram, encodeAddress } from '../../../src/proxy/socks5.js';
import { fixedRoute } from '../../../src/proxy/router.js';
import { AccessList } from '../../../src/proxy/access.js';
import { WireError } from '../../../src/errors.js';
import {
  captureLogger,
  closedPort,
  fakeDialer,
  pattern,
  rawExchange,
  sha256,
  startEcho,
  startOrigin,
  waitFor,
  type Origin,
} from './helpers.js';

/** A scripted SOCKS5 client: send bytes, read exact counts. */
class Client {
  readonly s: Socket;
  private buf = Buffer.alloc(0);
  private closed = false;
  constructor(port: number) {
    this.s = connect(port, '127.0.0.1');
    this.s.on('data', (c) => (this.buf = Buffer.concat([this.buf, c])));
    this.s.on('error', () => {});
    this.s.on('close', () => (this.closed = true));
  }
  send(b: number[] | Buffer | string): void {
    this.s.write(Buffer.isBuffer(b) ? b : typeof b === 'string' ? Buffer.from(b) : Buffer.from(b));
  }
  async read(n: number, timeoutMs = 3000): Promise<Buffer> {
    await waitFor(() => this.buf.length >= n || this.closed, timeoutMs, `${n} bytes`);
    if (this.buf.length < n) throw new Error(`closed after ${this.buf.length} bytes, wanted ${n}`);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  async untilClosed(timeoutMs = 3000): Promise<Buffer> {
    await waitFor(() => this.closed, timeoutMs, 'close');
    return this.buf;
  }
  destroy(): void {
    this.s.destroy();
  }
}

function request(cmd: number, addr: Buffer): Buffer {
  return Buffer.concat([Buffer.from([5, cmd, 0]), addr]);
}
function ipv4Addr(ip: string, port: number): Buffer {
  return encodeAddress(ip, port);
}
function nameAddr(name: string, port: number): Buffer {
  return encodeAddress(name, port);
}

/** Greeting (no auth) + request; resolves with the 10-byte reply. */
async function socksRequest(port: number, cmd: number, addr: Buffer): Promise<{ c: Client; reply: Buffer }> {
  const c = new Client(port);
  c.send([5, 1, 0]);
  assert.deepEqual([...(await c.read(2))], [5, 0]);
  c.send(request(cmd, addr));
  const reply = await c.read(10);
  return { c, reply };
}

function curl(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', args, { encoding: 'buffer', timeout: 15_000, maxBuffer: 32 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr: stderr.toString() }),
    );
  });
}

describe('SOCKS5 server', () => {
  let echo: Awaited<ReturnType<typeof startEcho>>;
  let origin: Origin;
  let server: Socks5Server;
  let port: number;
  let up = true;
  const cap = captureLogger();
  const dialer = fakeDialer(
    { 'web.vpn': '127.0.0.1', 'unreach.vpn': 'HOST_UNREACHABLE', 'odd.vpn': 'PROTOCOL' },
    { hang: ['slow.vpn'] },
  );

  before(async () => {
    echo = await startEcho();
    origin = await startOrigin();
    server = new Socks5Server({ routing: fixedRoute(dialer, 'vpn', () => up), port: 0, logger: cap.logger, connectTimeoutMs: 300 });
    port = (await server.listen()).port;
  });
  after(async () => {
    await server.close();
    await echo.close();
    await origin.close();
  });

  test('CONNECT by IPv4 and by name relays both ways with half-close', async () => {
    for (const addr of [ipv4Addr('127.0.0.1', echo.port), nameAddr('web.vpn', echo.port)]) {
      const { c, reply } = await socksRequest(port, 1, addr);
      assert.equal(reply[1], SocksReply.SUCCEEDED);
      assert.equal(reply[3], 1, 'BND.ADDR is IPv4');
      const payload = pattern(300_000, 2);
      c.s.end(payload);
      const back = await c.untilClosed(5000);
      assert.equal(sha256(back), sha256(payload));
    }
    assert.ok(dialer.calls.includes(`connect web.vpn:${echo.port}`), 'the name went to the dialer, not a local resolver');
  });

  test('bytes sent right after the request (before the reply) are not lost', async () => {
    const c = new Client(port);
    c.send(Buffer.concat([Buffer.from([5, 1, 0]), request(1, ipv4Addr('127.0.0.1', echo.port)), Buffer.from('early')]));
    assert.deepEqual([...(await c.read(2))], [5, 0]);
    assert.equal((await c.read(10))[1], 0);
    assert.equal((await c.read(5)).toString(), 'early');
    c.destroy();
  });

  test('reply codes for each failure', async () => {
    const dead = await closedPort();
    const cases: [string, Buffer, number, number?][] = [
      ['general failure', nameAddr('odd.vpn', 80), SocksReply.GENERAL_FAILURE],
      ['NXDOMAIN', nameAddr('nx.vpn', 80), SocksReply.HOST_UNREACHABLE],
      ['host unreachable', nameAddr('unreach.vpn', 80), SocksReply.HOST_UNREACHABLE],
      ['refused', ipv4Addr('127.0.0.1', dead), SocksReply.CONNECTION_REFUSED],
      ['timeout', nameAddr('slow.vpn', 80), SocksReply.TTL_EXPIRED],
      ['BIND', ipv4Addr('127.0.0.1', 80), SocksReply.COMMAND_NOT_SUPPORTED, 2],
      ['unknown command', ipv4Addr('127.0.0.1', 80), SocksReply.COMMAND_NOT_SUPPORTED, 9],
      ['unknown address type', Buffer.from([7, 1, 2, 3, 4, 0, 80]), SocksReply.ADDRESS_TYPE_NOT_SUPPORTED],
    ];
    for (const [what, addr, code, cmd] of cases) {
      const { c, reply } = await socksRequest(port, cmd ?? 1, addr);
      assert.equal(reply[0], 5, what);
      assert.equal(reply[1], code, what);
      await c.untilClosed();
    }
    up = false;
    try {
      const { c, reply } = await socksRequest(port, 1, nameAddr('web.vpn', echo.port));
      assert.equal(reply[1], SocksReply.NETWORK_UNREACHABLE, 'tunnel down');
      await c.untilClosed();
    } finally {
      up = true;
    }
  });

  test('curl --socks5-hostname (name through the dialer) and --socks5 (address)', async () => {
    const byName = await curl(['-sS', '--socks5-hostname', `127.0.0.1:${port}`, `http://web.vpn:${origin.port}/fixed?n=200000`]);
    assert.equal(byName.code, 0, byName.stderr);
    assert.equal(sha256(byName.stdout), sha256(pattern(200000)));
    const byAddr = await curl(['-sS', '--socks5', `127.0.0.1:${port}`, `http://127.0.0.1:${origin.port}/echo`, '--data-binary', 'hello']);
    assert.equal(byAddr.code, 0, byAddr.stderr);
    assert.equal(JSON.parse(byAddr.stdout.toString()).sha, sha256('hello'));
  });

  test('connections are logged at info with client, destination, route, bytes and duration', async () => {
    cap.lines.length = 0;
    const { c } = await socksRequest(port, 1, nameAddr('web.vpn', echo.port));
    c.s.end(Buffer.alloc(777, 1));
    await c.untilClosed();
    const mine = (l: string) => l.includes('"method":"CONNECT"') && l.includes(`"dest":"web.vpn:${echo.port}"`);
    await waitFor(() => cap.lines.some(mine), 2000, 'log');
    const line = JSON.parse(cap.lines.find(mine)!) as Record<string, unknown>;
    assert.equal(line.level, 'info');
    assert.equal(line.component, 'socks5');
    assert.match(String(line.client), /^127\.0\.0\.1:\d+$/);
    assert.equal(line.dest, `web.vpn:${echo.port}`);
    assert.equal(line.route, 'vpn');
    assert.equal(line.bytes_up, 777);
    assert.equal(line.bytes_down, 777);
    assert.equal(typeof line.duration_ms, 'number');
  });

  test('UDP ASSOCIATE: datagrams to an IPv4 and to a name come back with the source in the header', async () => {
    const udpEcho = createSocket('udp4');
    udpEcho.on('message', (m, r) => udpEcho.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
    await new Promise<void>((r) => udpEcho.bind(0, '127.0.0.1', () => r()));
    const echoPort = (udpEcho.address() as AddressInfo).port;
    const { c, reply } = await socksRequest(port, 3, ipv4Addr('0.0.0.0', 0));
    assert.equal(reply[1], 0);
    const relayIp = `${reply[4]}.${reply[5]}.${reply[6]}.${reply[7]}`;
    const relayPort = reply.readUInt16BE(8);
    assert.equal(relayIp, '127.0.0.1');
    const me = createSocket('udp4');
    await new Promise<void>((r) => me.bind(0, '127.0.0.1', () => r()));
    const got: Buffer[] = [];
    me.on('message', (m) => got.push(m));
    me.send(Buffer.concat([Buffer.from([0, 0, 0]), ipv4Addr('127.0.0.1', echoPort), Buffer.from('one')]), relayPort, relayIp);
    me.send(Buffer.concat([Buffer.from([0, 0, 0]), nameAddr('web.vpn', echoPort), Buffer.from('two')]), relayPort, relayIp);
    me.send(Buffer.from([0, 0, 1, 1, 127, 0, 0, 1, 0, 9, 0x41]), relayPort, relayIp); // FRAG != 0: dropped
    me.send(Buffer.from([1, 2]), relayPort, relayIp); // malformed: dropped
    await waitFor(() => got.length >= 2, 3000, 'udp replies');
    const parsed = got.map((g) => parseUdpDatagram(g));
    for (const p of parsed) {
      assert.equal(p.dst.host, '127.0.0.1');
      assert.equal(p.dst.port, echoPort);
    }
    assert.deepEqual(parsed.map((p) => Buffer.from(p.data).toString()).sort(), ['echo:one', 'echo:two']);
    cap.lines.length = 0;
    c.destroy();
    await waitFor(() => cap.lines.some((l) => l.includes('"method":"UDP"')), 2000, 'udp log');
    const line = JSON.parse(cap.lines.find((l) => l.includes('"method":"UDP"'))!) as Record<string, unknown>;
    assert.equal(line.bytes_up, 6);
    assert.equal(line.bytes_down, 16);
    assert.equal(line.route, 'vpn');
    me.close();
    udpEcho.close();
  });

  test('UDP ASSOCIATE announced with an IPv6 address relays to an IPv6 literal; replies carry ATYP 4', async () => {
    const udpEcho = createSocket({ type: 'udp6', ipv6Only: true });
    udpEcho.on('message', (m, r) => udpEcho.send(Buffer.concat([Buffer.from('echo6:'), m]), r.port, r.address));
    await new Promise<void>((r) => udpEcho.bind(0, '::1', () => r()));
    const echoPort = (udpEcho.address() as AddressInfo).port;
    const { c, reply } = await socksRequest(port, 3, Buffer.concat([Buffer.from([4]), Buffer.alloc(16), Buffer.from([0, 0])]));
    assert.equal(reply[1], 0);
    const relayIp = `${reply[4]}.${reply[5]}.${reply[6]}.${reply[7]}`;
    const relayPort = reply.readUInt16BE(8);
    const me = createSocket('udp4');
    await new Promise<void>((r) => me.bind(0, '127.0.0.1', () => r()));
    const got: Buffer[] = [];
    me.on('message', (m) => got.push(m));
    const v6 = Buffer.concat([Buffer.from([4]), Buffer.alloc(15), Buffer.from([1]), Buffer.from([echoPort >> 8, echoPort & 0xff])]);
    me.send(Buffer.concat([Buffer.from([0, 0, 0]), v6, Buffer.from('six')]), relayPort, relayIp);
    await waitFor(() => got.length >= 1, 3000, 'udp6 reply');
    assert.equal(got[0]![3], 4, 'ATYP IPv6 in the reply header');
    const p = parseUdpDatagram(got[0]!);
    assert.deepEqual([p.dst.host, p.dst.port, Buffer.from(p.data).toString()], ['::1', echoPort, 'echo6:six']);
    c.destroy();
    me.close();
    udpEcho.close();
  });

  test('non-SOCKS5 clients are closed; fuzzed garbage never breaks the listener', async () => {
    const socks4 = await rawExchange(port, Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0]));
    assert.equal(socks4.length, 0);
    const http = await rawExchange(port, 'GET / HTTP/1.1\r\n\r\n');
    assert.equal(http.length, 0);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: 200 }),
          fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.concat([Buffer.from([5, 1, 0]), b])),
          fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0]), b])),
        ),
        async (bytes) => {
          const reply = await rawExchange(port, bytes, 300);
          if (reply.length > 0) assert.equal(reply[0], bytes[0] === 5 ? 5 : reply[0]);
        },
      ),
      { numRuns: 30 },
    );
    const { c, reply } = await socksRequest(port, 1, ipv4Addr('127.0.0.1', echo.port));
    assert.equal(reply[1], 0, 'still serving');
    c.destroy();
  });
});

describe('SOCKS5 auth and --allow', () => {
  let echo: Awaited<ReturnType<typeof startEcho>>;
  let origin: Origin;
  before(async () => {
    echo = await startEcho();
    origin = await startOrigin();
  });
  after(async () => {
    await echo.close();
    await origin.close();
  });

  test('RFC 1929: no acceptable method, wrong and right credentials', async () => {
    const server = new Socks5Server({
      routing: fixedRoute(fakeDialer({ 'web.vpn': '127.0.0.1' })),
      port: 0,
      auth: { username: 'bob', password: 'pw' },
    });
    const denied: unknown[] = [];
    server.on('denied', (d) => denied.push(d));
    const port = (await server.listen()).port;
    const none = new Client(port);
    none.send([5, 1, 0]);
    assert.deepEqual([...(await none.read(2))], [5, 0xff]);
    await none.untilClosed();

    const auth = async (user: string, pass: string) => {
      const c = new Client(port);
      c.send([5, 2, 0, 2]);
      assert.deepEqual([...(await c.read(2))], [5, 2]);
      c.send(Buffer.concat([Buffer.from([1, user.length]), Buffer.from(user), Buffer.from([pass.length]), Buffer.from(pass)]));
      return { c, status: await c.read(2) };
    };
    const wrong = await auth('bob', 'nope');
    assert.deepEqual([...wrong.status], [1, 1]);
    await wrong.c.untilClosed();
    const right = await auth('bob', 'pw');
    assert.deepEqual([...right.status], [1, 0]);
    right.c.send(request(1, ipv4Addr('127.0.0.1', echo.port)));
    assert.equal((await right.c.read(10))[1], 0);
    right.c.send('ping');
    assert.equal((await right.c.read(4)).toString(), 'ping');
    right.c.destroy();
    const viaCurl = await curl(['-sS', '-x', `socks5h://bob:pw@127.0.0.1:${port}`, `http://web.vpn:${origin.port}/fixed?n=1000`]);
    assert.equal(viaCurl.code, 0, viaCurl.stderr);
    assert.equal(sha256(viaCurl.stdout), sha256(pattern(1000)));
    const badCurl = await curl(['-sS', '-x', `socks5h://bob:bad@127.0.0.1:${port}`, `http://web.vpn:${origin.port}/`]);
    assert.notEqual(badCurl.code, 0);
    assert.equal(denied.length, 3);
    await server.close();
  });

  test('a client outside --allow gets reply 0x02', async () => {
    const server = new Socks5Server({ routing: fixedRoute(fakeDialer({})), port: 0, access: new AccessList(['192.0.2.0/24']) });
    const port = (await server.listen()).port;
    const { c, reply } = await socksRequest(port, 1, ipv4Addr('127.0.0.1', echo.port));
    assert.equal(reply[1], SocksReply.NOT_ALLOWED);
    await c.untilClosed();
    await server.close();
  });
});

test('parseUdpDatagram: random and mutated input only ever throws WireError', () => {
  const valid = Buffer.concat([Buffer.from([0, 0, 0]), encodeAddress('example.org', 53), Buffer.from('q')]);
  const p = parseUdpDatagram(valid);
  assert.deepEqual([p.dst.host, p.dst.port, Buffer.from(p.data).toString()], ['example.org', 53, 'q']);
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 64 }),
        fc.tuple(fc.nat(valid.length), fc.integer({ min: 0, max: 255 }), fc.nat(valid.length)).map(([i, v, cut]) => {
          const b = Buffer.from(valid);
          b[i % b.length] = v;
          return b.subarray(0, cut);
        }),
      ),
      (b) => {
        try {
          parseUdpDatagram(b);
        } catch (e) {
          assert.ok(e instanceof WireError, String(e));
        }
      },
    ),
    { numRuns: 2000 },
  );
});
