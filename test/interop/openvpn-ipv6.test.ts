/**
 * IPv6 through a real OpenVPN 2.6 server (issue 16): the lab server runs `server-ipv6` and pushes
 * `route-ipv6` for the web host's IPv6 network plus `redirect-gateway ipv6 !ipv4`; the web host has an IPv6
 * address on the srv–web link. `--ping` to that address gets ICMPv6 echo replies; curl through our HTTP proxy
 * (absolute-form and CONNECT) and through SOCKS5 (ATYP 4) to `[address]` moves 20 MB each way byte-exact; the
 * web host's kernel sees the connections come from our tunnel IPv6 address.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendToError, detBytes, detSha256, labPrereqs, run, startLab, type Lab } from '../lab/index.js';
import { curl, curlGetExact, curlPostExact, sha256, startCli, type CliProcess } from './cli-helpers.js';
import { DUAL_NAME, V6_NAME, WEB_NAME } from '../lab/dns.js';

const pre = labPrereqs(['openvpn', 'curl', 'dns']);

describe('IPv6 through a real OpenVPN server', { skip: pre.skip, timeout: 600_000 }, () => {
  let lab: Lab;
  let tmp: string;
  let cli: CliProcess | undefined;
  let proxy = '';
  let socks = '';
  let web6 = '';

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'vpnproxy-v6-'));
    lab = await startLab({ openvpn: { proto: 'udp', ipv6: true, push: ['redirect-gateway ipv6 !ipv4'] }, iperf: false });
    web6 = lab.addr.web6;
  });
  after(async () => {
    await cli?.stop();
    await lab?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  async function proxies(): Promise<void> {
    if (cli) return;
    cli = startCli(await lab.clientProfile());
    try {
      const ready = await cli.ready();
      proxy = `http://${ready.http!.host}:${ready.http!.port}`;
      socks = `${ready.socks!.host}:${ready.socks!.port}`;
    } catch (e) {
      appendToError(e, lab.logs());
      throw e;
    }
  }

  const check = (what: string, r: { code: number; stderr: string }) =>
    assert.equal(r.code, 0, `${what}: curl exit ${r.code}: ${r.stderr}\n--- CLI stderr ---\n${cli?.stderr.slice(-3000)}\n--- server ---\n${lab.openvpn!.log().split('\n').slice(-20).join('\n')}`);

  test('--ping to the web host\'s IPv6 address: ICMPv6 echo replies through the tunnel', async () => {
    const r = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'openvpn', await lab.clientProfile(), '--ping', web6, '--count', '3', '--interval', '0.3'], {
      allowFail: true,
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr.slice(-3000)}\n--- server ---\n${lab.openvpn!.log().split('\n').slice(-30).join('\n')}`);
    const replies = r.stdout.split('\n').filter((l) => l.includes(`bytes from ${web6}: icmp_seq=`));
    assert.equal(replies.length, 3, r.stdout);
    assert.match(r.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
  });

  test('HTTP proxy, absolute-form http://[v6]/: GET and POST 20 MB byte-exact; the web host sees our tunnel IPv6 address', async () => {
    await proxies();
    const n = 20_000_000;
    await curlGetExact(['-x', proxy], `http://[${web6}]/bytes/${n}`, n, check);
    await curlPostExact(['-x', proxy], `http://[${web6}]/upload`, n, 'post6', tmp, check);
    const ip = await curl(['-x', proxy, `http://[${web6}]/ip`]);
    check('/ip', ip);
    const seen = JSON.parse(ip.stdout.toString()) as { remoteAddress: string; localAddress: string };
    assert.match(seen.remoteAddress, /^fd00:8::/, `the web host's kernel TCP saw ${seen.remoteAddress}`);
    assert.equal(seen.localAddress, web6);
    await cli!.waitForLog(new RegExp(`\\[http-proxy\\].*route=vpn method=GET status=200`));
  });

  test('HTTP CONNECT to [v6]:80: 20 MB down byte-exact', async () => {
    await proxies();
    const n = 20_000_000;
    const r = await curl(['-p', '-x', proxy, `http://[${web6}]/bytes/${n}`]);
    check('CONNECT', r);
    assert.equal(r.stdout.length, n);
    assert.equal(sha256(r.stdout), detSha256(n));
    await cli!.waitForLog(/\[http-proxy\].*method=CONNECT/);
  });

  test('SOCKS5 with an IPv6 address (ATYP 4): 20 MB each way byte-exact', async () => {
    await proxies();
    const n = 20_000_000;
    await curlGetExact(['--socks5', socks], `http://[${web6}]/bytes/${n}`, n, check, 'socks5 GET');
    await curlPostExact(['--socks5', socks], `http://[${web6}]/upload`, n, 'socks6', tmp, check, 'socks5 POST');
    await cli!.waitForLog(/\[socks5\].*route=vpn/);
  });

  test('a name with only an AAAA record (v6.lab.test): SOCKS5 by name 20 MB down, HTTP proxy by name 20 MB up, byte-exact', async () => {
    await proxies();
    const n = 20_000_000;
    await curlGetExact(['--socks5-hostname', socks], `http://${V6_NAME}/bytes/${n}`, n, check, 'socks5h GET');
    await curlPostExact(['-x', proxy], `http://${V6_NAME}/upload`, n, 'name6', tmp, check, 'POST by name');
    await cli!.waitForLog(new RegExp(`\\[socks5\\].*dest=${V6_NAME.replace(/\./g, '\\.')}:80 route=vpn`));
  });

  test('Happy Eyeballs: a dual-stack name goes over IPv6 (the tunnel routes it); with the web host refusing TCP 80 over IPv6 it falls back to IPv4', async () => {
    await proxies();
    const viaSocks = await curl(['--socks5-hostname', socks, `http://${DUAL_NAME}/ip`]);
    check('SOCKS5 by name', viaSocks);
    assert.match((JSON.parse(viaSocks.stdout.toString()) as { remoteAddress: string }).remoteAddress, /^fd00:8:/, 'IPv6 first');
    const viaHttp = await curl(['-x', proxy, `http://${DUAL_NAME}/ip`]);
    check('HTTP proxy by name', viaHttp);
    assert.match((JSON.parse(viaHttp.stdout.toString()) as { remoteAddress: string }).remoteAddress, /^fd00:8:/, 'IPv6 first');
    // The web host answers TCP 80 over IPv6 with a reset from now on: the IPv6 attempt fails fast, IPv4 is used.
    const nft = (args: string) => lab.exec('web', 'nft', args.split(' '));
    await nft('add table ip6 vpt6');
    await nft('add chain ip6 vpt6 inp6 { type filter hook input priority 0 ; }');
    await nft('add rule ip6 vpt6 inp6 tcp dport 80 reject with tcp reset');
    try {
      const direct6 = await curl(['--socks5', socks, '--max-time', '10', `http://[${web6}]/ip`]);
      assert.notEqual(direct6.code, 0, 'the IPv6 literal is refused now');
      // HTTP CONNECT (-p): a fresh upstream connection, where absolute-form GET could reuse a pooled IPv6 one.
      for (const args of [['--socks5-hostname', socks], ['-p', '-x', proxy]]) {
        const r = await curl([...args, `http://${DUAL_NAME}/ip`]);
        check(`${args.join(' ')} by name, IPv6 refused`, r);
        assert.ok(r.stdout.toString().startsWith('{'), `${args.join(' ')}: ${r.stdout.toString()}\n--- CLI stderr ---\n${cli?.stderr.slice(-3000)}`);
        const seen = JSON.parse(r.stdout.toString()) as { remoteAddress: string };
        assert.match(seen.remoteAddress, /^(::ffff:)?10\.8\./, `fell back to IPv4, the web host saw ${seen.remoteAddress}`);
      }
    } finally {
      await nft('delete table ip6 vpt6');
    }
  });

  test('DNS over an IPv6 resolver address (--dns [web6]): names resolve through the tunnel over UDP over IPv6', async () => {
    const c = startCli(await lab.clientProfile(), ['--dns', web6]);
    try {
      const ready = await c.ready();
      const r = await curl(['--socks5-hostname', `${ready.socks!.host}:${ready.socks!.port}`, `http://${WEB_NAME}/healthz`]);
      assert.equal(r.code, 0, `curl exit ${r.code}: ${r.stderr}\n--- CLI stderr ---\n${c.stderr.slice(-3000)}`);
      const r6 = await curl(['--socks5-hostname', `${ready.socks!.host}:${ready.socks!.port}`, `http://${V6_NAME}/healthz`]);
      assert.equal(r6.code, 0, `curl exit ${r6.code}: ${r6.stderr}`);
    } finally {
      await c.stop();
    }
  });

  test('a server without IPv6: an IPv6 destination is refused (SOCKS5 0x03, HTTP 502 with the reason), never dialed directly', async () => {
    const v4only = await lab.startOpenVpn({ proto: 'udp' });
    const other = startCli(await v4only.clientProfile());
    try {
      const ready = await other.ready();
      const p = `http://${ready.http!.host}:${ready.http!.port}`;
      const s = `${ready.socks!.host}:${ready.socks!.port}`;
      const http = await curl(['-x', p, `http://[${web6}]/healthz`]);
      assert.equal(http.code, 0, http.stderr);
      assert.match(http.stdout.toString(), /VPN carries no IPv6.*--direct-unrouted/);
      const viaSocks = await curl(['--socks5', s, `http://[${web6}]/healthz`]);
      assert.equal(viaSocks.code, 97, viaSocks.stderr);
      assert.match(viaSocks.stderr, /\(3\)/, 'SOCKS5 reply 3: network unreachable');
      assert.doesNotMatch(other.stderr, /route=direct/);
    } finally {
      await other.stop();
      await v4only.stop();
    }
  });
  test('--forward LPORT:[v6]:80 to the web host: 20 MB down and 5 MB up byte-exact; the web host sees our fd00:8:: address', async () => {
    const c = startCli(await lab.clientProfile(), ['--forward', `0:[${web6}]:80`]);
    try {
      const ready = await c.ready();
      const f = ready.forwards[0]!;
      assert.equal(f.dest, `[${web6}]:80`);
      const base = `http://${f.local.host}:${f.local.port}`;
      const fail = (what: string, r: { code: number; stderr: string }) => `${what}: curl exit ${r.code}: ${r.stderr}\n--- CLI stderr ---\n${c.stderr.slice(-3000)}`;
      const n = 20_000_000;
      const get = await curl([`${base}/bytes/${n}`]);
      assert.equal(get.code, 0, fail('GET', get));
      assert.equal(get.stdout.length, n);
      assert.equal(sha256(get.stdout), detSha256(n));
      const body = detBytes(5_000_000, 'forward6');
      const file = join(tmp, 'forward.bin');
      await writeFile(file, body);
      const post = await curl(['-H', 'Content-Type: application/octet-stream', '--data-binary', `@${file}`, `${base}/upload`]);
      assert.equal(post.code, 0, fail('POST', post));
      const json = JSON.parse(post.stdout.toString()) as { bytes: number; sha256: string };
      assert.equal(json.bytes, body.length);
      assert.equal(json.sha256, sha256(body));
      const ip = await curl([`${base}/ip`]);
      assert.equal(ip.code, 0, fail('/ip', ip));
      const seen = JSON.parse(ip.stdout.toString()) as { remoteAddress: string; localAddress: string };
      assert.match(seen.remoteAddress, /^fd00:8::/, `the web host's kernel TCP saw ${seen.remoteAddress}`);
      assert.equal(seen.localAddress, web6);
      await c.waitForLog(/\[forward\].*route=vpn/);
    } finally {
      await c.stop();
    }
  });
});
