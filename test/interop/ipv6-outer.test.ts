/**
 * IPv6 gateway addresses (issue 16): the outer transport runs over IPv6. The lab gives the root–srv and root–ike
 * links IPv6 addresses; an OpenVPN 2.6 server listens with `proto udp6` / `proto tcp6-server` and strongSwan 5.9
 * has its IPv6 address in local_addrs. Our client reaches them at those addresses: OpenVPN with
 * `remote <srv6> PORT udp6` and with `proto tcp6-client`, IPsec with `remote_addrs = <ike6>` in swanctl.conf and
 * with `--server [ike6]` (IKE on UDP 500, then IKE and ESP-in-UDP on 4500 with strongSwan's `encap = yes`; or
 * `[ike6]:4500` from the start).
 * Each one pings through the tunnel and fetches a byte-exact body through the HTTP proxy, and the peer's own log
 * shows that it talked to our IPv6 address.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendToError, detSha256, labPrereqs, pskClientConf, run, startLab, type Lab, type OpenVpnServer } from '../lab/index.js';
import { CliProcess, curl, sha256, startCli } from './cli-helpers.js';

const pre = labPrereqs(['openvpn', 'strongswan', 'curl']);
const N = 5_000_000;
const esc = (s: string) => s.replace(/[.[\]]/g, '\\$&');

describe('the outer transport over IPv6 (gateways at IPv6 addresses)', { skip: pre.skip, timeout: 600_000 }, () => {
  let lab: Lab;
  let tmp: string;
  let udp: OpenVpnServer;
  let tcp: OpenVpnServer;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'vpnproxy-outer6-'));
    lab = await startLab({ openvpn: { proto: 'udp', listen6: true }, strongswan: { listen6: true }, iperf: false });
    udp = lab.openvpn!;
    tcp = await lab.startOpenVpn({ proto: 'tcp', listen6: true });
  });
  after(async () => {
    await lab?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** Runs the CLI (ARGS) until ready, pings PING_TO with --ping in a second process, fetches N bytes from the web host. */
  async function proveTunnel(args: string[], pingArgs: string[], target: string, peerLog: () => string): Promise<CliProcess> {
    const ping = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...pingArgs, '--ping', target, '--count', '3', '--interval', '0.3'], {
      allowFail: true,
      timeoutMs: 60_000,
    });
    const ctx = `${ping.stdout}\n${ping.stderr.slice(-3000)}\n--- peer ---\n${peerLog().split('\n').slice(-30).join('\n')}`;
    assert.equal(ping.code, 0, ctx);
    assert.match(ping.stdout, /3 packets transmitted, 3 received, 0% packet loss/, ctx);
    const cli = new CliProcess(args);
    try {
      const ready = await cli.ready();
      const r = await curl(['-x', `http://${ready.http!.host}:${ready.http!.port}`, `http://${target}/bytes/${N}`]);
      assert.equal(r.code, 0, `curl exit ${r.code}: ${r.stderr}\n--- CLI ---\n${cli.stderr.slice(-3000)}`);
      assert.equal(r.stdout.length, N);
      assert.equal(sha256(r.stdout), detSha256(N));
      return cli;
    } catch (e) {
      await cli.stop();
      appendToError(e, lab.logs());
      throw e;
    }
  }

  test('OpenVPN `remote <srv6> PORT udp6`: ping and a byte-exact body; the server saw our IPv6 address, /status names [srv6]', async () => {
    const a = lab.addr;
    const { host, port } = udp.remote6;
    const profile = await udp.clientProfile({ name: 'udp6.ovpn', remote: udp.remote6, remoteProto: 'udp6' });
    const mark = udp.logMark();
    const cli = await proveTunnel(['openvpn', profile, '--http-proxy', '127.0.0.1:0', '--socks-proxy', 'off', '--status', '127.0.0.1:0'], ['openvpn', profile], lab.web.host, () => udp.log());
    try {
      // OpenVPN prints a client's address as [AF_INET6]addr:port
      await udp.waitForLog(new RegExp(`\\[AF_INET6\\]${esc(a.rootToSrv6)}:\\d+`), { since: mark });
      assert.doesNotMatch(udp.log().slice(mark), new RegExp(`\\[AF_INET\\]${esc(a.rootToSrv)}:`), 'no client came over IPv4');
      assert.match(cli.stderr, new RegExp(`connecting to \\[${esc(host)}\\]:${port} over UDP`));
      const ready = await cli.ready();
      const st = await curl([`http://${ready.status!.host}:${ready.status!.port}/status`]);
      assert.equal(st.code, 0, st.stderr);
      const status = JSON.parse(st.stdout.toString()) as { tunnel: { server?: string } };
      assert.equal(status.tunnel.server, `[${host}]:${port}/udp`);
    } finally {
      await cli.stop();
    }
  });

  test('OpenVPN `proto tcp6-client` to [srv6]: ping and a byte-exact body; the server saw our IPv6 address', async () => {
    const a = lab.addr;
    const profile = await tcp.clientProfile({ name: 'tcp6.ovpn', remote: tcp.remote6, proto: 'tcp6-client' });
    const mark = tcp.logMark();
    const cli = await proveTunnel(['openvpn', profile, '--http-proxy', '127.0.0.1:0', '--socks-proxy', 'off'], ['openvpn', profile], lab.web.host, () => tcp.log());
    try {
      await tcp.waitForLog(new RegExp(`\\[AF_INET6\\]${esc(a.rootToSrv6)}:\\d+`), { since: mark });
      assert.match(cli.stderr, new RegExp(`connecting to \\[${esc(a.srv6)}\\]:${tcp.port} over TCP`));
    } finally {
      await cli.stop();
    }
  });

  test('OpenVPN `proto udp6` with an IPv4 address in `remote`: refused with a clear error, not dialed over IPv4', async () => {
    const profile = await udp.clientProfile({ name: 'udp6-v4.ovpn', proto: 'udp6' });
    const r = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'openvpn', profile, '--ping', lab.web.host, '--count', '1', '--connect-timeout', '10'], {
      allowFail: true,
      timeoutMs: 60_000,
    });
    assert.notEqual(r.code, 0, r.stdout);
    assert.equal(r.code, 2, `a profile error (exit 2), not a connection attempt:\n${r.stderr.slice(-2000)}`);
    assert.match(r.stderr, new RegExp(`'remote ${esc(lab.addr.srv)}' is an IPv4 address but 'proto udp6' allows only IPv6`), r.stderr.slice(-2000));
  });

  function swanctl(remote: string): string {
    return pskClientConf(lab.strongswan!, { name: 'lab6', remoteAddrs: remote });
  }

  /** charon's own view: the IKE SA with our IPv6 address and ESP in UDP. */
  async function assertIkeOverIpv6(): Promise<void> {
    const ss = lab.strongswan!;
    const sas = await ss.listSas();
    const a = lab.addr;
    assert.match(sas, new RegExp(`local\\s+'${esc(ss.localId)}' @ ${esc(a.ike6)}\\[4500\\]`), sas);
    assert.match(sas, new RegExp(`remote '${esc(ss.remoteId)}' @ ${esc(a.rootToIke6)}\\[\\d+\\]`), sas);
    assert.match(sas, /INSTALLED, TUNNEL-in-UDP, ESP:/, `ESP must be UDP-encapsulated over IPv6:\n${sas}`);
    assert.match(ss.log(), new RegExp(`received packet: from ${esc(a.rootToIke6)}\\[\\d+\\] to ${esc(a.ike6)}\\[500\\]`), 'IKE_SA_INIT to UDP 500 over IPv6');
  }

  test('IPsec `remote_addrs = <ike6>` (swanctl.conf): IKE on 500 then 4500 and ESP-in-UDP over IPv6; ping and a byte-exact body', async () => {
    const file = join(tmp, 'outer6.swanctl.conf');
    await writeFile(file, swanctl(lab.addr.ike6));
    const cli = await proveTunnel(['ipsec', file, '--http-proxy', '127.0.0.1:0', '--socks-proxy', 'off'], ['ipsec', file], lab.web.ipsecHost, () => lab.strongswan!.log());
    try {
      await assertIkeOverIpv6();
      assert.match(cli.stderr, new RegExp(`IKEv2 to \\[${esc(lab.addr.ike6)}\\]:500,`));
    } finally {
      await cli.stop();
    }
  });

  test('IPsec quick form `--server [ike6]`, `--server <ike6>` and `--server [ike6]:4500` (IKE begun on 4500): ping and a byte-exact body over IPv6', async () => {
    const ss = lab.strongswan!;
    const psk = join(tmp, 'psk.txt');
    await writeFile(psk, ss.psk);
    for (const server of [`[${lab.addr.ike6}]`, lab.addr.ike6, `[${lab.addr.ike6}]:4500`]) {
      const flags = ['--server', server, '--id', ss.remoteId, '--remote-id', ss.localId, '--psk-file', psk];
      const cli = await proveTunnel(['ipsec', ...flags, '--http-proxy', '127.0.0.1:0', '--socks-proxy', 'off'], ['ipsec', ...flags], lab.web.ipsecHost, () => ss.log());
      try {
        await assertIkeOverIpv6();
      } finally {
        await cli.stop();
      }
    }
  });
});
