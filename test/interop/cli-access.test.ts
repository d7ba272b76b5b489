/**
 * Access control and hostile input on the CLI's listeners, with real clients through a real OpenVPN server:
 *  - --proxy-auth: missing or wrong credentials get 407 (HTTP, also for CONNECT) or a SOCKS5 auth failure; the
 *    right ones work; refusals are counted on /metrics;
 *  - --allow 127.0.0.0/8 with listeners on 0.0.0.0: a client connecting from the lab's veth address is refused
 *    (HTTP 403, SOCKS5 reply 0x02) while loopback clients are served;
 *  - bad input: malformed request lines, a relative request, a bad CONNECT target, oversize headers, a slowloris
 *    client, unknown SOCKS versions, commands and address types, garbage: each gets its error answer or a close,
 *    while good requests running at the same time succeed and the listener keeps working.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendToError, detSha256, labPrereqs, startLab, type Lab } from '../lab/index.js';
import { curl, sha256, startCli, type CliProcess, type Ready } from './cli-helpers.js';
import { RawConn } from './socks-client.js';

const pre = labPrereqs(['openvpn', 'curl', 'dns']);

describe('CLI access control and bad input', { skip: pre.skip, timeout: 300_000 }, () => {
  let lab: Lab;
  let authed: CliProcess;
  let open: CliProcess;
  let a: Ready;
  let o: Ready;

  before(async () => {
    // Two clients with the same certificate at once.
    lab = await startLab({ openvpn: { proto: 'udp', extra: ['duplicate-cn'] }, iperf: false });
    const profile = await lab.clientProfile();
    authed = startCli(profile, ['--proxy-auth', 'alice:s3cret:x']);
    open = startCli(profile, ['--http-proxy', '0.0.0.0:0', '--socks-proxy', '0.0.0.0:0', '--allow', '127.0.0.0/8']);
    try {
      [a, o] = await Promise.all([authed.ready(), open.ready()]);
    } catch (e) {
      appendToError(e, lab.logs());
      throw e;
    }
  });
  after(async () => {
    await Promise.all([authed?.stop(), open?.stop()]);
    await lab?.stop();
  });

  test('--proxy-auth on the HTTP proxy: 407 without or with wrong credentials, 200 with the right ones', async () => {
    const proxy = `http://127.0.0.1:${a.http!.port}`;
    const url = lab.web.url('/healthz');
    const none = await curl(['-i', '-x', proxy, url]);
    assert.match(none.stdout.toString(), /^HTTP\/1\.1 407 /);
    assert.match(none.stdout.toString(), /Proxy-Authenticate: Basic/i);
    const wrong = await curl(['-i', '-x', proxy, '--proxy-user', 'alice:nope', url]);
    assert.match(wrong.stdout.toString(), /^HTTP\/1\.1 407 /);
    const wrongUser = await curl(['-i', '-x', proxy, '--proxy-user', 'bob:s3cret:x', url]);
    assert.match(wrongUser.stdout.toString(), /^HTTP\/1\.1 407 /);
    const right = await curl(['-x', proxy, '--proxy-user', 'alice:s3cret:x', url]);
    assert.equal(right.code, 0, right.stderr);
    assert.equal(right.stdout.toString(), 'ok\n');
    // CONNECT too.
    const tunnelNone = await curl(['-x', proxy, '--cacert', lab.web.ca, lab.web.httpsUrl('/healthz')]);
    assert.notEqual(tunnelNone.code, 0);
    assert.match(tunnelNone.stderr, /407/);
    const tunnelRight = await curl(['-x', proxy, '--proxy-user', 'alice:s3cret:x', '--cacert', lab.web.ca, lab.web.httpsUrl('/healthz')]);
    assert.equal(tunnelRight.code, 0, tunnelRight.stderr);
  });

  test('--proxy-auth on SOCKS5: no-auth offer refused (0xFF), wrong password refused (RFC 1929 status 1), right one served', async () => {
    const socks = { host: '127.0.0.1', port: a.socks!.port };
    const c1 = await RawConn.open(socks);
    c1.write(Buffer.from([5, 1, 0]));
    assert.deepEqual([...(await c1.read(2))], [5, 0xff]);
    assert.ok(await c1.waitClosed());
    const c2 = await RawConn.open(socks);
    c2.write(Buffer.from([5, 1, 2]));
    assert.deepEqual([...(await c2.read(2))], [5, 2]);
    c2.write(Buffer.concat([Buffer.from([1, 5]), Buffer.from('alice'), Buffer.from([4]), Buffer.from('nope')]));
    assert.deepEqual([...(await c2.read(2))], [1, 1]);
    assert.ok(await c2.waitClosed());
    const curlNone = await curl(['--socks5-hostname', `127.0.0.1:${a.socks!.port}`, lab.web.url('/healthz')]);
    assert.notEqual(curlNone.code, 0);
    const curlWrong = await curl(['-x', `socks5h://alice:nope@127.0.0.1:${a.socks!.port}`, lab.web.url('/healthz')]);
    assert.notEqual(curlWrong.code, 0);
    const right = await curl(['-x', `socks5h://alice:s3cret%3Ax@127.0.0.1:${a.socks!.port}`, lab.web.nameUrl('/healthz')]);
    assert.equal(right.code, 0, right.stderr);
    assert.equal(right.stdout.toString(), 'ok\n');
    const metrics = (await curl([`http://127.0.0.1:${a.status!.port}/metrics`])).stdout.toString();
    assert.match(metrics, /vpnproxy_proxy_denied_total\{proxy="http",reason="auth"\} [1-9]/);
    assert.match(metrics, /vpnproxy_proxy_denied_total\{proxy="socks5",reason="auth"\} [1-9]/);
  });

  test('--allow 127.0.0.0/8: a client from the lab veth address is refused (403 / SOCKS 0x02), loopback is served', async () => {
    const outside = lab.addr.rootToSrv; // a local, non-loopback address of this host
    const refused = await curl(['-i', '--interface', outside, '-x', `http://${outside}:${o.http!.port}`, lab.web.url('/healthz')]);
    assert.match(refused.stdout.toString(), /^HTTP\/1\.1 403 /, refused.stderr);
    assert.match(refused.stdout.toString(), /--allow/);
    const c = await RawConn.open({ host: outside, port: o.socks!.port }, outside);
    c.write(Buffer.from([5, 1, 0]));
    assert.deepEqual([...(await c.read(2))], [5, 0]);
    c.write(Buffer.from([5, 1, 0, 1, ...lab.web.host.split('.').map(Number), 0, 80]));
    const rep = await c.read(10);
    assert.equal(rep[1], 0x02, `SOCKS reply ${rep.toString('hex')}`);
    assert.ok(await c.waitClosed());
    const inside = await curl(['-x', `http://127.0.0.1:${o.http!.port}`, lab.web.url('/healthz')]);
    assert.equal(inside.stdout.toString(), 'ok\n');
    await open.waitForLog(/client refused by --allow/);
  });

  test('bad input gets its error answer or a close; concurrent good requests succeed; the listeners survive', async () => {
    const http = { host: '127.0.0.1', port: o.http!.port };
    const socks = { host: '127.0.0.1', port: o.socks!.port };
    const web = lab.web.host;
    const statusOf = async (raw: string | Buffer): Promise<string> => {
      const c = await RawConn.open(http);
      c.write(raw);
      const head = (await c.read(12, 15_000)).toString('latin1');
      c.destroy();
      return head;
    };

    // A slowloris client: a request line and one header, then a header byte per second, never the blank line.
    const slow = await RawConn.open(http);
    slow.write(`GET http://${web}/healthz HTTP/1.1\r\nHost: ${web}\r\n`);
    const drip = setInterval(() => slow.write('X'), 1000);
    const slowT0 = Date.now();

    try {
      const n = 2_000_000;
      const [good, malformed, relative, badConnect, oversize, badVersion, badCmd, badAtyp, garbage, good2] = await Promise.all([
        curl(['-x', `http://127.0.0.1:${http.port}`, lab.web.url(`/bytes/${n}`)]),
        statusOf('GARBAGE\r\n\r\n'),
        statusOf(`GET /relative HTTP/1.1\r\nHost: ${web}\r\n\r\n`),
        statusOf('CONNECT nohostport HTTP/1.1\r\nHost: x\r\n\r\n'),
        statusOf(`GET http://${web}/ HTTP/1.1\r\nHost: ${web}\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`),
        (async () => {
          const c = await RawConn.open(socks);
          c.write(Buffer.from([4, 1, 0, 80, 10, 0, 0, 1, 0])); // SOCKS4
          const closed = await c.waitClosed();
          return { closed, got: c.received.length };
        })(),
        (async () => {
          const c = await RawConn.open(socks);
          c.write(Buffer.from([5, 1, 0]));
          await c.read(2);
          c.write(Buffer.from([5, 9, 0, 1, ...web.split('.').map(Number), 0, 80])); // command 9
          const rep = await c.read(10);
          return { rep: rep[1], closed: await c.waitClosed() };
        })(),
        (async () => {
          const c = await RawConn.open(socks);
          c.write(Buffer.from([5, 1, 0]));
          await c.read(2);
          c.write(Buffer.from([5, 1, 0, 7, 1, 2, 3, 4, 0, 80])); // address type 7
          const rep = await c.read(10);
          return { rep: rep[1], closed: await c.waitClosed() };
        })(),
        (async () => {
          const c = await RawConn.open(socks);
          c.write(Buffer.from('\x05\xff' + 'garbage'.repeat(40), 'latin1'));
          return { closed: await c.waitClosed(15_000) };
        })(),
        curl(['--socks5-hostname', `127.0.0.1:${socks.port}`, `http://${lab.web.name}/bytes/${n}`]),
      ]);
      assert.equal(good.code, 0, good.stderr);
      assert.equal(sha256(good.stdout), detSha256(n), 'a good request next to the bad ones is byte-exact');
      assert.equal(good2.code, 0, good2.stderr);
      assert.equal(sha256(good2.stdout), detSha256(n));
      assert.equal(malformed, 'HTTP/1.1 400');
      assert.equal(relative, 'HTTP/1.1 400');
      assert.equal(badConnect, 'HTTP/1.1 400');
      assert.equal(oversize, 'HTTP/1.1 431');
      assert.deepEqual(badVersion, { closed: true, got: 0 });
      assert.deepEqual(badCmd, { rep: 0x07, closed: true });
      assert.deepEqual(badAtyp, { rep: 0x08, closed: true });
      assert.equal(garbage.closed, true);

      // The slowloris client is answered 408 (or closed) within the header timeout, not kept forever.
      assert.ok(await slow.waitClosed(30_000), 'slowloris connection closed');
      const elapsed = Date.now() - slowT0;
      assert.ok(elapsed >= 10_000, `closed only after the header timeout (${elapsed} ms)`);
      const head = slow.received.toString('latin1');
      assert.ok(head === '' || head.startsWith('HTTP/1.1 408'), `slowloris got ${JSON.stringify(head.slice(0, 40))}`);
    } finally {
      clearInterval(drip);
      slow.destroy();
    }
    // Still serving.
    const after = await curl(['-x', `http://127.0.0.1:${http.port}`, lab.web.url('/healthz')]);
    assert.equal(after.stdout.toString(), 'ok\n');
    assert.ok(open.running && authed.running);
  });
});
