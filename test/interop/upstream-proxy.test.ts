/**
 * OpenVPN reaching its server through a real upstream proxy from Debian, with the direct path blocked:
 * tinyproxy with Basic authentication and squid with Digest only (CONNECT, OpenVPN over TCP), and dante
 * with username/password (SOCKS5 CONNECT for TCP, UDP ASSOCIATE for UDP). The proxies run in the lab's srv namespace on the
 * address our client reaches it at; an nft rule there drops what the root namespace (our client) sends to
 * the OpenVPN ports, so only a connection made by the proxy itself (from srv's own address) gets through.
 * Each session carries a curl download through our own HTTP proxy, byte for byte; wrong proxy credentials
 * end the CLI with one line and exit 1, without a reconnect loop.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { runSync } from '../lab/exec.js';
import { detSha256, labPrereqs, startLab, waitFor, type Daemon, type Lab, type OpenVpnServer } from '../lab/index.js';
import { curl, sha256, startCli, type CliProcess } from './cli-helpers.js';

const pre = labPrereqs(['openvpn', 'curl', 'dns', 'proxies']);

const PROXY_USER = 'vpnlab';
const PROXY_PASS = 'pr0xy-S3cret';

/** Bytes from a TCP connect attempt: 'open', or the error code (a dropped SYN times out). */
function tryConnect(host: string, port: number, ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (r: string) => {
      clearTimeout(t);
      s.destroy();
      resolve(r);
    };
    const t = setTimeout(() => done('timeout'), ms);
    s.once('connect', () => done('open'));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? 'error'));
  });
}

async function download(cli: CliProcess, n: number): Promise<void> {
  const ready = await cli.ready(90_000);
  const url = `http://${ready.http!.host}:${ready.http!.port}`;
  const r = await curl(['-x', url, lab.web.url(`/bytes/${n}`)], 180_000);
  assert.equal(r.code, 0, `curl failed: ${r.stderr}\n--- CLI ---\n${cli.stderr.slice(-3000)}`);
  assert.equal(r.stdout.length, n);
  assert.equal(sha256(r.stdout), detSha256(n));
}

let lab: Lab;

describe('OpenVPN through an upstream proxy (tinyproxy, squid, dante) with the direct path blocked', { skip: pre.skip, timeout: 900_000 }, () => {
  let tcpServer: OpenVpnServer;
  let udpServer: OpenVpnServer;
  const daemons: Daemon[] = [];
  before(async () => {
    lab = await startLab({ openvpn: { proto: 'tcp' }, iperf: false });
    tcpServer = lab.openvpn!;
    udpServer = await lab.startOpenVpn({ proto: 'udp' });
    // Only the proxies (on srv itself) may reach the OpenVPN ports: drop what our client sends there directly.
    const rules = [
      'add table inet vpnproxy_upstream',
      'add chain inet vpnproxy_upstream input { type filter hook input priority 0 ; policy accept ; }',
      `add rule inet vpnproxy_upstream input ip saddr ${lab.addr.rootToSrv} tcp dport ${tcpServer.port} drop`,
      `add rule inet vpnproxy_upstream input ip saddr ${lab.addr.rootToSrv} udp dport ${udpServer.port} drop`,
    ];
    await writeFile(join(lab.dir, 'block.nft'), rules.join('\n') + '\n');
    await lab.exec('srv', 'nft', ['-f', join(lab.dir, 'block.nft')]);
  });
  after(async () => {
    for (const d of daemons) await d.stop().catch(() => {});
    await lab?.stop();
  });

  test('the direct path to the OpenVPN server is blocked', async () => {
    assert.equal(await tryConnect(lab.addr.srv, tcpServer.port), 'timeout');
  });

  describe('tinyproxy with Basic authentication', () => {
    let proxyPort: number;
    before(async () => {
      proxyPort = 3128;
      const conf = [
        'User nobody',
        'Group nogroup',
        `Port ${proxyPort}`,
        `Listen ${lab.addr.srv}`,
        'Timeout 600',
        'MaxClients 20',
        'LogLevel Info',
        `Allow ${lab.addr.rootToSrv}`,
        `BasicAuth ${PROXY_USER} ${PROXY_PASS}`,
        `ConnectPort ${tcpServer.port}`,
        'DisableViaHeader Yes',
      ];
      const file = join(lab.dir, 'tinyproxy.conf');
      await writeFile(file, conf.join('\n') + '\n');
      const d = lab.spawn('srv', 'tinyproxy', 'tinyproxy', ['-d', '-c', file]);
      daemons.push(d);
      await waitFor('tinyproxy listening', async () => (await tryConnect(lab.addr.srv, proxyPort, 500)) === 'open', 15_000);
    });

    test('a profile with http-proxy and an auth file: the tunnel comes up over TCP and carries 20 MB byte-exact', async () => {
      const authFile = join(lab.dir, 'proxy-auth.txt');
      await writeFile(authFile, `${PROXY_USER}\n${PROXY_PASS}\n`, { mode: 0o600 });
      const profile = await tcpServer.clientProfile({ name: 'via-http-proxy.ovpn', extra: [`http-proxy ${lab.addr.srv} ${proxyPort} ${authFile}`, 'http-proxy-option AGENT vpnproxy-lab'] });
      const cli = startCli(profile);
      try {
        await download(cli, 20 * 1024 * 1024);
        assert.match(cli.stderr, new RegExp(`through the HTTP proxy ${lab.addr.srv.replace(/\./g, '\\.')}:${proxyPort}`));
      } finally {
        await cli.stop();
      }
    });

    test('--upstream-proxy http://user:pass@… overrides a profile without proxy lines', async () => {
      const profile = await tcpServer.clientProfile({ name: 'plain-tcp.ovpn' });
      const cli = startCli(profile, ['--upstream-proxy', `http://${PROXY_USER}:${PROXY_PASS}@${lab.addr.srv}:${proxyPort}`]);
      try {
        await download(cli, 2 * 1024 * 1024);
      } finally {
        await cli.stop();
      }
    });

    test('a CONNECT the proxy refuses (a port outside its ConnectPort list) says so with the status line', async () => {
      const profile = await tcpServer.clientProfile({ name: 'refused-port.ovpn', remote: { host: lab.addr.srv, port: tcpServer.port + 77 } });
      const cli = startCli(profile, ['--upstream-proxy', `http://${PROXY_USER}:${PROXY_PASS}@${lab.addr.srv}:${proxyPort}`]);
      try {
        await cli.waitForLog(new RegExp(`the HTTP proxy [\\d.]+:${proxyPort} refused to connect us to [\\d.]+:${tcpServer.port + 77}: 403 [^;]*; reconnecting`), 30_000);
      } finally {
        await cli.stop();
      }
    });

    test('wrong proxy credentials: one line naming the methods the proxy offers, exit 1, no retry', async () => {
      const cli = startCli(await tcpServer.clientProfile({ name: 'plain-tcp2.ovpn' }), ['--upstream-proxy', `http://${PROXY_USER}:wrong@${lab.addr.srv}:${proxyPort}`]);
      const r = await cli.waitExit(60_000);
      assert.equal(r.code, 1, cli.stderr);
      const lines = cli.stderr.split('\n').filter((l) => /PROXY_AUTH_FAILED|refused the credentials/.test(l));
      assert.ok(lines.length >= 1, cli.stderr);
      // tinyproxy answers wrong credentials with 401 + WWW-Authenticate (and missing ones with 407)
      assert.match(lines.at(-1)!, /^vpnproxy: error \[PROXY_AUTH_FAILED\]: the HTTP proxy [\d.]+:3128 refused the credentials of user "vpnlab" \(40[17] [^;]*; it offers Basic realm "Tinyproxy"\)$/);
      assert.equal((cli.stderr.match(/reaching .* through the HTTP proxy/g) ?? []).length, 1, 'one attempt, no reconnect loop');
    });
  });

  describe('squid with Digest authentication only', () => {
    const squidPort = 3129;
    let squid: Daemon;
    before(async () => {
      // squid's helper runs as the proxy user and cannot read the lab's root-only directory: give squid a
      // tmpfs of its own over /var/spool/squid in a private mount namespace (the host's is untouched).
      const pw = join(lab.dir, 'digest-passwd');
      await writeFile(pw, `${PROXY_USER}:${PROXY_PASS}\n`, { mode: 0o600 });
      const spool = '/var/spool/squid';
      const conf = [
        `http_port ${lab.addr.srv}:${squidPort}`,
        `auth_param digest program /usr/lib/squid/digest_file_auth ${spool}/digest-passwd`,
        'auth_param digest children 2',
        'auth_param digest realm vpnproxy-lab',
        'acl authed proxy_auth REQUIRED',
        'http_access allow authed',
        'http_access deny all',
        'cache deny all',
        'access_log none',
        `cache_log ${spool}/cache.log`,
        'pid_filename none',
        `coredump_dir ${spool}`,
        'shutdown_lifetime 1 seconds',
      ];
      const file = join(lab.dir, 'squid.conf');
      await writeFile(file, conf.join('\n') + '\n');
      squid = lab.spawn('srv', 'squid', 'unshare', [
        '-m',
        'sh',
        '-c',
        `mount -t tmpfs -o mode=0755 none ${spool} && cp ${file} ${pw} ${spool}/ && chown -R proxy:proxy ${spool} && chmod 0600 ${spool}/digest-passwd && exec squid -N -d 1 -f ${spool}/squid.conf`,
      ]);
      daemons.push(squid);
      await waitFor('squid listening', async () => (await tryConnect(lab.addr.srv, squidPort, 500)) === 'open', 30_000);
    });

    test("http-proxy … auto answers squid's Digest challenge (credentials from VPNPROXY_PROXY_*): curl byte-exact", async () => {
      const profile = await tcpServer.clientProfile({ name: 'via-squid.ovpn', extra: [`http-proxy ${lab.addr.srv} ${squidPort} auto`, 'http-proxy-option VERSION 1.1'] });
      const cli = startCli(profile, [], { VPNPROXY_PROXY_USERNAME: PROXY_USER, VPNPROXY_PROXY_PASSWORD: PROXY_PASS });
      try {
        await download(cli, 5 * 1024 * 1024);
      } catch (e) {
        throw Object.assign(e as Error, { message: `${(e as Error).message}\n--- squid ---\n${squid.output().slice(-3000)}` });
      } finally {
        await cli.stop();
      }
    });

    test('a wrong password: PROXY_AUTH_FAILED naming Digest, exit 1', async () => {
      const cli = startCli(await tcpServer.clientProfile({ name: 'plain-tcp4.ovpn' }), ['--upstream-proxy', `http://${PROXY_USER}:wrong@${lab.addr.srv}:${squidPort}`]);
      const r = await cli.waitExit(60_000);
      assert.equal(r.code, 1, cli.stderr);
      assert.match(cli.stderr, /^vpnproxy: error \[PROXY_AUTH_FAILED\]: the HTTP proxy [\d.]+:3129 refused the credentials of user "vpnlab" \(407 [^;]*; it offers Digest \(MD5, realm "vpnproxy-lab"\)\)$/m);
    });
  });

  describe('dante (SOCKS5) with username/password', () => {
    const socksPort = 1080;
    let authFile: string;
    let danted: Daemon;
    before(async () => {
      // dante checks 'username' against the system's passwd/shadow: give it a private copy with the lab
      // user, bind-mounted in a mount namespace of its own, so the host's files are never touched.
      const hash = runSync('openssl', ['passwd', '-6', PROXY_PASS]).stdout.trim();
      const passwd = join(lab.dir, 'dante-passwd');
      const shadow = join(lab.dir, 'dante-shadow');
      await writeFile(passwd, `${readFileSync('/etc/passwd', 'utf8').trimEnd()}\n${PROXY_USER}:x:64123:64123::/nonexistent:/usr/sbin/nologin\n`);
      await writeFile(shadow, `root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n${PROXY_USER}:${hash}:19000:0:99999:7:::\n`, { mode: 0o600 });
      const conf = [
        'logoutput: stderr',
        `internal: ${lab.addr.srv} port = ${socksPort}`,
        `external: ${lab.addr.srv}`,
        'clientmethod: none',
        'socksmethod: username',
        'user.privileged: root',
        'user.unprivileged: nobody',
        'client pass {',
        '  from: 0.0.0.0/0 to: 0.0.0.0/0',
        '  log: error',
        '}',
        'socks pass {',
        '  from: 0.0.0.0/0 to: 0.0.0.0/0',
        '  command: connect udpassociate',
        '  socksmethod: username',
        '  log: error connect disconnect',
        '}',
        'socks pass {',
        '  from: 0.0.0.0/0 to: 0.0.0.0/0',
        '  command: udpreply',
        '  log: error',
        '}',
      ];
      const file = join(lab.dir, 'danted.conf');
      await writeFile(file, conf.join('\n') + '\n');
      danted = lab.spawn('srv', 'danted', 'unshare', ['-m', 'sh', '-c', `mount --bind ${passwd} /etc/passwd && mount --bind ${shadow} /etc/shadow && exec danted -f ${file}`]);
      daemons.push(danted);
      await waitFor('danted listening', async () => (await tryConnect(lab.addr.srv, socksPort, 500)) === 'open', 15_000);
      authFile = join(lab.dir, 'socks-auth.txt');
      await writeFile(authFile, `${PROXY_USER}\n${PROXY_PASS}\n`, { mode: 0o600 });
    });

    test('UDP through UDP ASSOCIATE (socks-proxy in the profile): curl byte-exact', async () => {
      const profile = await udpServer.clientProfile({ name: 'via-socks-udp.ovpn', extra: [`socks-proxy ${lab.addr.srv} ${socksPort} ${authFile}`] });
      const cli = startCli(profile);
      try {
        await download(cli, 4 * 1024 * 1024);
        assert.match(cli.stderr, /through the SOCKS5 proxy [\d.]+:1080 \(UDP ASSOCIATE\)/);
      } catch (e) {
        throw Object.assign(e as Error, { message: `${(e as Error).message}\n--- danted ---\n${danted.output().slice(-3000)}` });
      } finally {
        await cli.stop();
      }
    });

    test('TCP through SOCKS5 CONNECT (--upstream-proxy socks5://…): curl byte-exact', async () => {
      const profile = await tcpServer.clientProfile({ name: 'plain-tcp3.ovpn' });
      const cli = startCli(profile, ['--upstream-proxy', `socks5://${PROXY_USER}:${encodeURIComponent(PROXY_PASS)}@${lab.addr.srv}:${socksPort}`]);
      try {
        await download(cli, 4 * 1024 * 1024);
        assert.match(cli.stderr, /through the SOCKS5 proxy/);
      } finally {
        await cli.stop();
      }
    });

    test('a wrong SOCKS5 password: one line, exit 1', async () => {
      const cli = startCli(await udpServer.clientProfile({ name: 'plain-udp.ovpn' }), ['--upstream-proxy', `socks5://${PROXY_USER}:wrong@${lab.addr.srv}:${socksPort}`]);
      const r = await cli.waitExit(60_000);
      assert.equal(r.code, 1, cli.stderr);
      assert.match(cli.stderr, /the SOCKS5 proxy [\d.]+:1080 refused the credentials of user "vpnlab"/);
    });
  });
});
