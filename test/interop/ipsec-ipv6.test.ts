/**
 * IPv6 through IPsec against the lab's strongSwan 5.9 responder (issue 16): the responder has an IPv6 pool
 * (ipsecPool6, dns webIpsec6) beside its IPv4 one and the web host's IPv6 network on the ike–web link in its
 * local_ts. Our client asks with `vips = 0.0.0.0, ::` and `remote_ts` naming both networks: it gets an IPv6
 * virtual IP from the pool, `--ping` to the web host's IPv6 address gets ICMPv6 replies (ESP next header 41 both
 * ways), and curl through our HTTP proxy and SOCKS5 to `[webIpsec6]` moves data each way byte-exact, with the web
 * host's kernel seeing our IPv6 virtual IP. SOCKS5 by a name that has only an AAAA record (ipsec6.lab.test,
 * asked of the lab's DNS through the tunnel) reaches the same host over IPv6.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendToError, labPrereqs, pskClientConf, run, startLab, type Lab } from '../lab/index.js';
import { CliProcess, curl, curlGetExact, curlPostExact } from './cli-helpers.js';
import { IPSEC_V6_NAME } from '../lab/dns.js';

const pre = labPrereqs(['strongswan', 'curl', 'dns']);
const N = 20_000_000;

describe('IPv6 through IPsec (strongSwan 5.9, IPv6 pool)', { skip: pre.skip, timeout: 600_000 }, () => {
  let lab: Lab;
  let tmp: string;
  let file = '';
  let cli: CliProcess | undefined;
  let proxy = '';
  let socks = '';
  let web6 = '';
  let pool6 = '';

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'vpnproxy-ipsec6-'));
    lab = await startLab({ iperf: false, strongswan: { ipv6: true } });
    const ss = lab.strongswan!;
    web6 = lab.addr.webIpsec6;
    pool6 = lab.addr.ipsecPool6.split('/')[0]!.replace(/::$/, ':');
    file = join(tmp, 'v6.swanctl.conf');
    await writeFile(file, pskClientConf(ss, { vips: '0.0.0.0, ::', remoteTs: `${lab.addr.webIpsecNet}, ${lab.addr.webIpsecNet6}`, startAction: 'start' }));
  });
  after(async () => {
    await cli?.stop();
    await lab?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  async function proxies(): Promise<void> {
    if (cli) return;
    cli = new CliProcess(['ipsec', file, '--http-proxy', '127.0.0.1:0', '--socks-proxy', '127.0.0.1:0', '--log-level', 'debug']);
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
    assert.equal(r.code, 0, `${what}: curl exit ${r.code}: ${r.stderr}\n--- CLI stderr ---\n${cli?.stderr.slice(-3000)}\n--- charon ---\n${lab.strongswan!.log().split('\n').slice(-30).join('\n')}`);

  test('an IPv6 virtual IP from the pool, and --ping to the web host\'s IPv6 address gets every reply', async () => {
    const r = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'ipsec', file, '--ping', web6, '--count', '3', '--interval', '0.3', '--log-level', 'debug'], {
      allowFail: true,
      timeoutMs: 60_000,
    });
    const ctx = `${r.stdout}\n${r.stderr.slice(-4000)}\n--- charon ---\n${lab.strongswan!.log().split('\n').slice(-40).join('\n')}`;
    assert.equal(r.code, 0, ctx);
    assert.match(r.stderr, new RegExp(`virtual IP 10\\.\\d+\\.6\\.\\d+ ${pool6}[0-9a-f:]*/\\d+`), ctx);
    const replies = r.stdout.split('\n').filter((l) => l.includes(`bytes from ${web6}: icmp_seq=`));
    assert.equal(replies.length, 3, ctx);
    assert.match(r.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
    const log = lab.strongswan!.log();
    assert.match(log, new RegExp(`assigning virtual IP ${pool6}[0-9a-f:]* to peer`), 'charon assigned from its IPv6 pool');
  });

  test(`HTTP proxy to http://[web6]/: GET and POST ${N / 1e6} MB byte-exact; the web host sees our IPv6 virtual IP`, async () => {
    await proxies();
    await curlGetExact(['-x', proxy], `http://[${web6}]/bytes/${N}`, N, check);
    await curlPostExact(['-x', proxy], `http://[${web6}]/upload`, N, 'ipsec-post6', tmp, check);
    const ip = await curl(['-x', proxy, `http://[${web6}]/ip`]);
    check('/ip', ip);
    const seen = JSON.parse(ip.stdout.toString()) as { remoteAddress: string; localAddress: string };
    assert.ok(seen.remoteAddress.startsWith(pool6), `the web host's kernel TCP saw ${seen.remoteAddress}, not an address of ${lab.addr.ipsecPool6}`);
    assert.equal(seen.localAddress, web6);
  });

  test(`SOCKS5 to [web6] (ATYP 4): ${N / 1e6} MB each way byte-exact`, async () => {
    await proxies();
    await curlGetExact(['--socks5', socks], `http://[${web6}]/bytes/${N}`, N, check, 'socks5 GET');
    await curlPostExact(['--socks5', socks], `http://[${web6}]/upload`, N, 'ipsec-socks6', tmp, check, 'socks5 POST');
    await cli!.waitForLog(/\[socks5\].*route=vpn/);
  });

  test(`SOCKS5 by a name with only an AAAA record (${IPSEC_V6_NAME}): resolved through the tunnel, ${N / 1e6} MB down byte-exact over IPv6`, async () => {
    await proxies();
    await curlGetExact(['--socks5-hostname', socks], `http://${IPSEC_V6_NAME}/bytes/${N}`, N, check, 'socks5h GET');
    const ip = await curl(['--socks5-hostname', socks, `http://${IPSEC_V6_NAME}/ip`]);
    check('socks5h /ip', ip);
    const seen = JSON.parse(ip.stdout.toString()) as { remoteAddress: string; localAddress: string };
    assert.equal(seen.localAddress, web6, 'the name led to the web host\'s IPv6 address behind strongSwan');
    assert.ok(seen.remoteAddress.startsWith(pool6), `the web host's kernel TCP saw ${seen.remoteAddress}, not an address of ${lab.addr.ipsecPool6}`);
    await cli!.waitForLog(new RegExp(`\\[socks5\\].*dest=${IPSEC_V6_NAME.replace(/\./g, '\\.')}:80 route=vpn`));
  });
});
