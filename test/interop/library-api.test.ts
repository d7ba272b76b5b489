/**
 * The library API (`connect()` from src/library.ts) against the lab's real OpenVPN 2.6 server and the web host's
 * kernel sockets: Node's global fetch with `vpn.dispatcher`, `http.get` with `vpn.agent.http` (and HTTPS with
 * `vpn.agent.https` / the dispatcher when the lab's web host serves TLS), `vpn.connect` to the TCP echo,
 * `vpn.udp()` to the UDP echo, `vpn.ping`, `vpn.lookup` of literals, proxies and forwards started from the
 * library, and `close()`. Bodies are compared byte-for-byte (sha256).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { get as httpGet, request as httpRequest, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { connect as netConnect } from 'node:net';
import { connect, type Vpn } from '../../src/library.js';
import { appendToError, detBytes, detSha256, labPrereqs, startLab, type Lab } from '../lab/index.js';

const pre = labPrereqs();

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function collect(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
  });
}

describe('library: connect() through a real OpenVPN server', { skip: pre.skip, timeout: 300_000 }, () => {
  let lab: Lab;
  let vpn: Vpn;
  before(async () => {
    lab = await startLab({ openvpn: { proto: 'udp' }, iperf: false });
    vpn = await connect({ openvpn: { profile: await lab.clientProfile() }, timeoutMs: 30_000, tls: { ca: readFileSync(lab.web.ca) } });
  });
  after(async () => {
    await vpn?.close();
    await lab?.stop();
  });

  test('connect() resolves with the tunnel up and our address known', () => {
    assert.equal(vpn.state, 'up');
    assert.match(vpn.address ?? '', /^10\.8\.0\.\d+$/);
    assert.equal(vpn.status().state, 'up');
  });

  test("Node's global fetch with vpn.dispatcher: 8 MB download byte-exact, then a 4 MB upload", async () => {
    const n = 8_000_000;
    const res = await fetch(lab.web.url(`/bytes/${n}`), { dispatcher: vpn.dispatcher } as RequestInit);
    assert.equal(res.status, 200);
    const body = new Uint8Array(await res.arrayBuffer());
    assert.equal(body.length, n);
    assert.equal(sha(body), detSha256(n));
    assert.equal(res.headers.get('x-sha256'), detSha256(n));

    const up = detBytes(4_000_000, 'lib-up');
    const r2 = await fetch(lab.web.url('/upload'), { method: 'POST', body: up, dispatcher: vpn.dispatcher } as RequestInit);
    const j = (await r2.json()) as { bytes: number; sha256: string };
    assert.deepEqual(j, { bytes: up.length, sha256: sha(up) });
  });

  test('the dispatcher keeps connections alive across requests (6 requests, at most 2 source ports)', async () => {
    // undici's pool may open a second connection when the next request starts before the previous one's
    // completion is processed; both are then reused.
    const ports = new Set<number>();
    for (let i = 0; i < 6; i++) {
      const r = await fetch(lab.web.url('/ip'), { dispatcher: vpn.dispatcher } as RequestInit);
      const j = (await r.json()) as { remoteAddress: string; remotePort: number };
      assert.equal(j.remoteAddress, vpn.address, 'the server saw our VPN address');
      ports.add(j.remotePort);
    }
    assert.ok(ports.size <= 2, `${ports.size} connections for 6 requests`);
  });

  test('http.get with vpn.agent.http: 8 MB byte-exact; POST /echo streams a body back', async () => {
    const n = 8_000_000;
    const res = await new Promise<IncomingMessage>((resolve, reject) => httpGet(lab.web.url(`/bytes/${n}`), { agent: vpn.agent.http }, resolve).on('error', reject));
    assert.equal(res.statusCode, 200);
    const body = await collect(res);
    assert.equal(body.length, n);
    assert.equal(sha(body), detSha256(n));

    const payload = randomBytes(1_000_000);
    const echoed = await new Promise<Buffer>((resolve, reject) => {
      const req = httpRequest(lab.web.url('/echo'), { method: 'POST', agent: vpn.agent.http, headers: { 'content-length': payload.length } }, (r) =>
        collect(r).then(resolve, reject),
      );
      req.on('error', reject);
      req.end(payload);
    });
    assert.ok(echoed.equals(payload));
  });

  test('HTTPS through the tunnel: fetch with vpn.dispatcher by address and by name (SNI web.lab.test), https.get with vpn.agent.https', async () => {
    const n = 4_000_000;
    const r1 = await fetch(lab.web.httpsUrl(`/bytes/${n}`), { dispatcher: vpn.dispatcher } as RequestInit);
    assert.equal(sha(new Uint8Array(await r1.arrayBuffer())), detSha256(n));
    // by name: resolved through the tunnel's DNS, certificate checked against the name
    const r2 = await fetch(`https://${lab.web.name}/bytes/${n}?seed=byname`, { dispatcher: vpn.dispatcher } as RequestInit);
    assert.equal(sha(new Uint8Array(await r2.arrayBuffer())), detSha256(n, 'byname'));

    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      httpsGet(`https://${lab.web.name}/bytes/${n}`, { agent: vpn.agent.https }, resolve).on('error', reject),
    );
    assert.equal(res.statusCode, 200);
    const sock = res.socket as import('node:tls').TLSSocket;
    assert.equal(sock.authorized, true, 'certificate verified against the lab CA');
    const body = await collect(res);
    assert.equal(sha(body), detSha256(n));
  });

  test('HTTPS: a certificate that does not match is refused (verification is on)', async () => {
    // TLS over a vpn.connect socket (what the agents do), checked against a name the certificate lacks.
    const { connect: tlsConnect } = await import('node:tls');
    const raw = await vpn.connect({ host: lab.web.host, port: lab.web.httpsPort });
    const err = await new Promise<Error>((resolve) => {
      const t = tlsConnect({ socket: raw as unknown as import('node:net').Socket, servername: 'not-the-web.lab.test', ca: readFileSync(lab.web.ca) });
      t.on('secureConnect', () => resolve(new Error('unexpectedly verified')));
      t.on('error', resolve);
    });
    assert.match(err.message, /altnames|does not match/i);
    raw.destroy();
  });

  test('vpn.connect to the TCP echo: 2 MB written come back unchanged; net.Socket-like fields', async () => {
    const s = await vpn.connect({ host: lab.web.host, port: lab.web.echoPort });
    assert.equal(s.remoteAddress, lab.web.host);
    assert.equal(s.remotePort, lab.web.echoPort);
    assert.equal(s.localAddress, vpn.address);
    const data = randomBytes(2_000_000);
    const chunks: Buffer[] = [];
    let got = 0;
    const done = new Promise<void>((resolve, reject) => {
      s.on('data', (d: Buffer) => {
        chunks.push(d);
        got += d.length;
        if (got >= data.length) resolve();
      });
      s.on('error', reject);
    });
    s.write(data);
    await done;
    assert.ok(Buffer.concat(chunks).equals(data));
    s.end();
  });

  test('vpn.udp() to the UDP echo: datagrams come back from the echo address', async () => {
    const u = vpn.udp();
    try {
      const got = new Map<string, string>();
      const all = new Promise<void>((resolve) =>
        u.on('message', (data: Uint8Array, rinfo: { address: string; port: number }) => {
          got.set(Buffer.from(data).toString(), `${rinfo.address}:${rinfo.port}`);
          if (got.size === 5) resolve();
        }),
      );
      // UDP may lose a datagram: resend until all five are back (bounded).
      for (let round = 0; round < 5 && got.size < 5; round++) {
        for (let i = 0; i < 5; i++) if (!got.has(`dgram ${i}`)) u.send(Buffer.from(`dgram ${i}`), lab.web.echoPort, lab.web.host);
        await Promise.race([all, new Promise((r) => setTimeout(r, 1000))]);
      }
      assert.equal(got.size, 5);
      for (const from of got.values()) assert.equal(from, `${lab.web.host}:${lab.web.echoPort}`);
    } finally {
      u.close();
    }
  });

  test('vpn.ping: the server tunnel address and the web host answer', async () => {
    const a = await vpn.ping(lab.openvpn!.serverTunIp, { timeoutMs: 3000 });
    assert.ok(a, 'server answered');
    const b = await vpn.ping(lab.web.host, { timeoutMs: 3000, payloadSize: 1000 });
    assert.ok(b, 'web host answered');
    assert.ok(b.rttMs >= 0 && b.rttMs < 3000);
  });

  test('vpn.lookup by name through the tunnel DNS (pushed server, search domain), NXDOMAIN as DNS_NXDOMAIN', async () => {
    assert.deepEqual(await vpn.lookup(lab.web.name), [lab.web.host]);
    assert.deepEqual(await vpn.lookup('web'), [lab.web.host]);
    assert.equal((await vpn.lookupDetails('web')).name, lab.web.name);
    await assert.rejects(vpn.lookup(`nope.${lab.web.domain}`), (e: Error & { code?: string }) => e.code === 'DNS_NXDOMAIN');
  });

  test('vpn.lookup: a literal and localhost never leave the process', async () => {
    assert.deepEqual(await vpn.lookup(lab.web.host), [lab.web.host]);
    assert.deepEqual(await vpn.lookup('localhost'), ['127.0.0.1']);
  });

  test('a closed port is refused at once through the library too', async () => {
    const t0 = Date.now();
    await assert.rejects(vpn.connect({ host: lab.web.host, port: 9 }), (e: Error & { code?: string }) => e.code === 'CONN_REFUSED');
    assert.ok(Date.now() - t0 < 2000);
  });

  test('proxies and forwards from the library: vpn.httpProxy, vpn.socksProxy, vpn.forward', async () => {
    const proxy = await vpn.httpProxy({ port: 0 });
    const n = 3_000_000;
    // absolute-form GET through the proxy
    const body = await new Promise<Buffer>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: proxy.address()!.port, path: lab.web.url(`/bytes/${n}`), headers: { host: `${lab.web.host}` } }, (r) =>
        collect(r).then(resolve, reject),
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(sha(body), detSha256(n));

    // SOCKS5 CONNECT by address to the echo port, by hand
    const socks = await vpn.socksProxy({ port: 0 });
    const echoed = await new Promise<Buffer>((resolve, reject) => {
      const c = netConnect(socks.address()!.port, '127.0.0.1');
      let stage = 0;
      let buf = Buffer.alloc(0);
      c.on('error', reject);
      c.on('connect', () => c.write(Buffer.from([5, 1, 0])));
      c.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (stage === 0 && buf.length >= 2) {
          assert.deepEqual([...buf.subarray(0, 2)], [5, 0]);
          buf = buf.subarray(2);
          stage = 1;
          const ip = lab.web.host.split('.').map(Number);
          c.write(Buffer.from([5, 1, 0, 1, ...ip, lab.web.echoPort >> 8, lab.web.echoPort & 255]));
        }
        if (stage === 1 && buf.length >= 10) {
          assert.equal(buf[1], 0, 'SOCKS5 reply succeeded');
          buf = buf.subarray(10);
          stage = 2;
          c.write('hello through socks');
        }
        if (stage === 2 && buf.length >= 'hello through socks'.length) {
          c.destroy();
          resolve(buf);
        }
      });
    });
    assert.equal(echoed.toString(), 'hello through socks');

    // local forward 127.0.0.1:0 -> web:80
    const fwd = await vpn.forward({ bindHost: '127.0.0.1', bindPort: 0, host: lab.web.host, port: lab.web.httpPort });
    const res = await fetch(`http://127.0.0.1:${fwd.address()!.port}/bytes/1000000`);
    assert.equal(sha(new Uint8Array(await res.arrayBuffer())), detSha256(1_000_000));
    const m = vpn.metrics.summary();
    assert.ok(m.active + m.total >= 3, `connections counted in the shared metrics: ${JSON.stringify(m)}`);
  });
});

describe('library: reconnect events', { skip: pre.skip, timeout: 300_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({ openvpn: { proto: 'udp', explicitExitNotify: 1 }, iperf: false });
  });
  after(async () => {
    await lab?.stop();
  });

  test("'reconnecting' when the server goes away, 'connected' when it is back, fetch works again; 'closed' on close()", async () => {
    const vpn = await connect({ openvpn: { profile: await lab.clientProfile() }, timeoutMs: 30_000 });
    const events: string[] = [];
    vpn.on('reconnecting', () => events.push('reconnecting'));
    vpn.on('connected', () => events.push('connected'));
    vpn.on('closed', (e) => events.push(`closed:${e.reason}`));
    try {
      const r1 = await fetch(lab.web.url('/healthz'), { dispatcher: vpn.dispatcher } as RequestInit);
      assert.equal(await r1.text(), 'ok\n');
      const s = lab.openvpn!;
      await s.stop();
      await waitUntil("'reconnecting'", () => events.includes('reconnecting'), 15_000);
      assert.notEqual(vpn.state, 'up');
      await assert.rejects(vpn.connect({ host: lab.web.host, port: lab.web.httpPort }), (e: Error & { code?: string }) => e.code === 'TRANSPORT_CLOSED');
      await s.start();
      await waitUntil("'connected'", () => events.includes('connected'), 60_000);
      assert.equal(vpn.state, 'up');
      // The old pooled connection died with the session; the dispatcher opens a new one.
      const r2 = await fetch(lab.web.url('/bytes/1000000'), { dispatcher: vpn.dispatcher } as RequestInit);
      assert.equal(sha(new Uint8Array(await r2.arrayBuffer())), detSha256(1_000_000));
      assert.equal(vpn.status().reconnects, 1);
    } catch (e) {
      appendToError(e, lab.logs(20));
      throw e;
    } finally {
      await vpn.close();
    }
    assert.equal(events.at(-1), 'closed:user');
    assert.throws(() => vpn.dispatcher, /closed/);
  });

  test('connect() rejects (and cleans up) when the server never answers within timeoutMs', async () => {
    const profile = await lab.clientProfile({ remote: { host: '127.0.0.1', port: 9 } });
    const t0 = Date.now();
    await assert.rejects(connect({ openvpn: { profile }, timeoutMs: 2000 }), (e: Error & { code?: string }) => e.code === 'CONNECT_TIMEOUT');
    assert.ok(Date.now() - t0 < 5000);
  });
});

async function waitUntil(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
