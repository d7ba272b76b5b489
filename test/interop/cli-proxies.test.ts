/**
 * The CLI's proxies with real clients through the lab's real OpenVPN server: curl through --http-proxy (GET,
 * POST with a 20 MB body, HEAD, HTTPS through CONNECT with the lab CA), curl through --socks-proxy by name
 * (socks5h, resolved by the tunnel's DNS = the lab's dnsmasq) and by address, and a DNS query over SOCKS5 UDP
 * ASSOCIATE. Bodies byte-exact (sha256). Every request is logged at info by the CLI.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendToError, detBytes, detSha256, labPrereqs, startLab, type Lab } from '../lab/index.js';
import { curl, headerValue, sha256, startCli, type CliProcess, type Ready } from './cli-helpers.js';
import { socksUdpDns } from './socks-client.js';

const pre = labPrereqs(['openvpn', 'curl', 'dns']);

describe('CLI proxies: curl through vpnproxy and a real OpenVPN server', { skip: pre.skip, timeout: 300_000 }, () => {
  let lab: Lab;
  let cli: CliProcess;
  let ready: Ready;
  let tmp: string;
  let proxy: string;
  let socks: string;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'vpnproxy-cli-'));
    lab = await startLab({ openvpn: { proto: 'udp' }, iperf: false });
    cli = startCli(await lab.clientProfile());
    try {
      ready = await cli.ready();
    } catch (e) {
      appendToError(e, lab.logs());
      throw e;
    }
    proxy = `http://${ready.http!.host}:${ready.http!.port}`;
    socks = `${ready.socks!.host}:${ready.socks!.port}`;
  });
  after(async () => {
    await cli?.stop();
    await lab?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const check = (what: string, r: { code: number; stderr: string }) =>
    assert.equal(r.code, 0, `${what}: curl exit ${r.code}: ${r.stderr}\n--- CLI stderr ---\n${cli.stderr.slice(-2000)}`);

  test('the ready line names the listeners with their bound ports', () => {
    assert.ok(ready.http && ready.http.port > 0);
    assert.ok(ready.socks && ready.socks.port > 0);
    assert.ok(ready.status && ready.status.port > 0);
    assert.match(cli.stderr, /vpnproxy: tunnel up via .*address 10\.8\.0\.\d+/);
  });

  test('HTTP proxy: GET 20 MB byte-exact', async () => {
    const n = 20_000_000;
    const r = await curl(['-x', proxy, '-D', join(tmp, 'get.h'), lab.web.url(`/bytes/${n}`)]);
    check('GET', r);
    assert.equal(r.stdout.length, n);
    assert.equal(sha256(r.stdout), detSha256(n));
    await cli.waitForLog(new RegExp(`\\[http-proxy\\].*dest=${lab.web.host.replace(/\./g, '\\.')}:80 route=vpn method=GET status=200 bytes_up=0 bytes_down=${n}`));
  });

  test('HTTP proxy: POST a 20 MB body byte-exact', async () => {
    const n = 20_000_000;
    const body = detBytes(n, 'post');
    const file = join(tmp, 'post.bin');
    await writeFile(file, body);
    const r = await curl(['-x', proxy, '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${file}`, lab.web.url('/upload')]);
    check('POST', r);
    const json = JSON.parse(r.stdout.toString()) as { bytes: number; sha256: string };
    assert.equal(json.bytes, n);
    assert.equal(json.sha256, sha256(body));
  });

  test('HTTP proxy: HEAD has the headers and no body', async () => {
    const r = await curl(['-x', proxy, '-I', lab.web.url('/bytes/123456')]);
    check('HEAD', r);
    const head = r.stdout.toString();
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.equal(headerValue(head, 'content-length'), '123456');
    assert.equal(headerValue(head, 'x-sha256'), detSha256(123456));
    assert.equal(head.indexOf('\r\n\r\n'), head.length - 4, 'nothing after the header block');
  });

  test('HTTPS through CONNECT, by address and by name, verified against the lab CA, byte-exact', async () => {
    const n = 3_000_000;
    for (const url of [lab.web.httpsUrl(`/bytes/${n}`), `https://${lab.web.name}/bytes/${n}`]) {
      const r = await curl(['-x', proxy, '--cacert', lab.web.ca, url]);
      check(url, r);
      assert.equal(r.stdout.length, n);
      assert.equal(sha256(r.stdout), detSha256(n));
    }
    // Without the CA curl refuses the certificate: the TLS really is end to end.
    const bad = await curl(['-x', proxy, lab.web.httpsUrl('/healthz')]);
    assert.equal(bad.code, 60, `curl without --cacert: ${bad.code} ${bad.stderr}`);
    await cli.waitForLog(/\[http-proxy\].*dest=web\.lab\.test:443 route=vpn method=CONNECT/);
  });

  test('SOCKS5 by name (socks5h: resolved by the tunnel DNS) and by address, byte-exact', async () => {
    const n = 5_000_000;
    const byName = await curl(['--socks5-hostname', socks, `http://${lab.web.name}/bytes/${n}`]);
    check('socks5-hostname', byName);
    assert.equal(sha256(byName.stdout), detSha256(n));
    const byAddr = await curl(['--socks5', socks, lab.web.url(`/bytes/${n}`)]);
    check('socks5', byAddr);
    assert.equal(sha256(byAddr.stdout), detSha256(n));
    await cli.waitForLog(/\[socks5\].*dest=web\.lab\.test:80 route=vpn method=CONNECT/);
    // A name only the tunnel's DNS knows, and one it says does not exist.
    const nx = await curl(['--socks5-hostname', socks, 'http://nope.lab.test/']);
    assert.equal(nx.code, 97, `curl: ${nx.code} ${nx.stderr}`); // 97: SOCKS proxy handshake failure (host unreachable reply)
  });

  test('HTTP proxy: a name resolved by the tunnel DNS; an unknown name answers 502 with a reason', async () => {
    const ok = await curl(['-x', proxy, lab.web.nameUrl('/healthz')]);
    check('by name', ok);
    assert.equal(ok.stdout.toString(), 'ok\n');
    const r = await curl(['-x', proxy, '-i', 'http://nope.lab.test/']);
    check('nxdomain', r);
    assert.match(r.stdout.toString(), /^HTTP\/1\.1 502 /);
    assert.match(r.stdout.toString(), /nope\.lab\.test/);
  });

  test('SOCKS5 UDP ASSOCIATE: a DNS query to the lab resolver is answered through the tunnel', async () => {
    const a = await socksUdpDns(ready.socks!, lab.web.dns, lab.web.name);
    assert.equal(a.rcode, 0);
    assert.deepEqual(a.addresses, [lab.web.host]);
    await cli.waitForLog(/\[socks5\].*method=UDP/, 10_000).catch(() => undefined);
  });
});
