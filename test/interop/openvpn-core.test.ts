/**
 * The OpenVPN client core against the lab's real, unmodified OpenVPN 2.6 server: every cell connects, gets its
 * configuration from PUSH_REPLY, has 20 ICMP echoes to the server's tunnel address answered, and shuts down
 * cleanly in a way the server logs (exit notification on UDP, closed connection on TCP).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { VpnError } from '../../src/errors.js';
import { loadProfile } from '../../src/openvpn/profile.js';
import { OpenVpnSession, type ConnectedInfo } from '../../src/openvpn/session.js';
import { IcmpEcho } from '../../src/stack/icmp-echo.js';
import { createTransport } from '../../src/transport/index.js';
import { appendToError, labPrereqs, SERVER_LOG, startLab, type ClientProfileOptions, type Lab, type OpenVpnServer, type OpenVpnServerOptions } from '../lab/index.js';

const pre = labPrereqs();
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface CellResult {
  info: ConnectedInfo;
  answered: number;
}

async function connectPingClose(
  server: OpenVpnServer,
  profileOpts: ClientProfileOptions = {},
  opts: { tlsEkm?: boolean; pings?: number } = {},
): Promise<CellResult> {
  const path = await server.clientProfile(profileOpts);
  const { profile } = await loadProfile(path);
  const aup = profile.authUserPass;
  const session = new OpenVpnSession({
    profile,
    createTransport,
    tlsEkm: opts.tlsEkm ?? true,
    credentials: aup?.username !== undefined ? { username: aup.username, password: aup.password ?? '' } : undefined,
  });
  const mark = server.logMark();
  let closed = false;
  try {
    const info = await session.start();
    const echo = new IcmpEcho(session);
    let answered = 0;
    const n = opts.pings ?? 20;
    for (let seq = 1; seq <= n; seq++) {
      const r = await echo.ping(server.serverTunIp, seq, { timeoutMs: 3000 });
      if (r) {
        answered++;
        assert.equal(r.from, server.serverTunIp);
      }
    }
    await session.close();
    closed = true;
    await server.waitForLog(server.proto === 'udp' ? SERVER_LOG.clientExitNotified : SERVER_LOG.clientGone, { since: mark, timeoutMs: 10_000 });
    return { info, answered };
  } catch (e) {
    appendToError(e, `--- server log ---\n${server.log().split('\n').slice(-30).join('\n')}`);
    throw e;
  } finally {
    if (!closed) await session.close();
  }
}

function expectConnected(r: CellResult, server: OpenVpnServer, cipher: string): void {
  assert.equal(r.answered, 20, 'all 20 echo requests answered');
  assert.equal(r.info.cipher, cipher);
  const prefix = server.serverTunIp.replace(/\.1$/, '.');
  assert.ok(r.info.localIp.startsWith(prefix), `address ${r.info.localIp} is in ${server.subnet}`);
  assert.equal(r.info.netmask, '255.255.255.0', 'topology subnet netmask');
  assert.equal(r.info.gateway, server.serverTunIp, 'route-gateway');
  assert.equal(r.info.mtu, 1500);
  assert.ok(r.info.routes.length >= 1, 'the pushed route to the web network');
  assert.ok(r.info.dns.length >= 1, 'the pushed DNS server');
  assert.equal(typeof r.info.peerId, 'number', 'peer-id pushed by a 2.6 server (DATA_V2)');
}

/** Runs the CLI (from source) and returns its exit code and output. */
function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('OpenVPN client core against a real OpenVPN 2.6 server', { skip: pre.skip, timeout: 600_000 }, () => {
  let lab: Lab;
  const servers = new Map<string, OpenVpnServer>();
  const serverFor = async (name: string, o: OpenVpnServerOptions): Promise<OpenVpnServer> => {
    let s = servers.get(name);
    if (!s) {
      s = await lab.startOpenVpn({ explicitExitNotify: o.proto === 'tcp' ? undefined : 1, ...o });
      servers.set(name, s);
    }
    return s;
  };

  before(async () => {
    lab = await startLab({ web: true, iperf: false });
  });
  after(async () => {
    await lab?.stop();
  });

  test('UDP, AES-256-GCM, certificate auth, TLS 1.3, keys by tls-ekm', async () => {
    const s = await serverFor('udp', { proto: 'udp' });
    const r = await connectPingClose(s);
    expectConnected(r, s, 'AES-256-GCM');
    assert.equal(r.info.tlsVersion, 'TLSv1.3');
    assert.equal(r.info.keyDerivation, 'tls-ekm');
  });

  test('UDP, TLS 1.2, keys by the TLS1-PRF method', async () => {
    const s = await serverFor('udp-tls12', { proto: 'udp', tlsVersionMax: '1.2' });
    const r = await connectPingClose(s, {}, { tlsEkm: false });
    expectConnected(r, s, 'AES-256-GCM');
    assert.equal(r.info.tlsVersion, 'TLSv1.2');
    assert.equal(r.info.keyDerivation, 'tls1-prf');
  });

  test('UDP, TLS 1.2, keys by tls-ekm', async () => {
    const s = await serverFor('udp-tls12', { proto: 'udp', tlsVersionMax: '1.2' });
    const r = await connectPingClose(s);
    expectConnected(r, s, 'AES-256-GCM');
    assert.equal(r.info.tlsVersion, 'TLSv1.2');
    assert.equal(r.info.keyDerivation, 'tls-ekm');
  });

  test('TCP, AES-256-GCM, TLS 1.3', async () => {
    const s = await serverFor('tcp', { proto: 'tcp' });
    const r = await connectPingClose(s);
    expectConnected(r, s, 'AES-256-GCM');
    assert.equal(r.info.tlsVersion, 'TLSv1.3');
    assert.equal(r.info.remote.proto, 'tcp');
  });

  test('TCP, TLS 1.2, TLS1-PRF', async () => {
    const s = await serverFor('tcp-tls12', { proto: 'tcp', tlsVersionMax: '1.2' });
    const r = await connectPingClose(s, {}, { tlsEkm: false });
    expectConnected(r, s, 'AES-256-GCM');
    assert.equal(r.info.tlsVersion, 'TLSv1.2');
    assert.equal(r.info.keyDerivation, 'tls1-prf');
  });

  test('AES-128-GCM', async () => {
    const s = await serverFor('aes128', { proto: 'udp', dataCiphers: 'AES-128-GCM' });
    expectConnected(await connectPingClose(s), s, 'AES-128-GCM');
  });

  test('CHACHA20-POLY1305', async () => {
    const s = await serverFor('chacha', { proto: 'udp', dataCiphers: 'CHACHA20-POLY1305' });
    expectConnected(await connectPingClose(s), s, 'CHACHA20-POLY1305');
  });

  test('data-ciphers none: plaintext data channel with a TLS control channel', async () => {
    const s = await serverFor('none', { proto: 'udp', cipherNone: true });
    const r = await connectPingClose(s, { dataCiphers: 'none' });
    expectConnected(r, s, 'none');
  });

  test('a passphrase-protected client key, unlocked through askpass', async () => {
    const s = await serverFor('udp', { proto: 'udp' });
    const r = await connectPingClose(s, { cert: 'ec-encrypted' });
    expectConnected(r, s, 'AES-256-GCM');
  });

  test('tls-cipher and tls-version-max in the profile are honoured (TLS 1.2 with the named suite)', async () => {
    const s = await serverFor('udp', { proto: 'udp' });
    const r = await connectPingClose(s, { extra: ['tls-version-max 1.2', 'tls-cipher ECDHE-ECDSA-AES128-GCM-SHA256'] });
    expectConnected(r, s, 'AES-256-GCM');
    assert.equal(r.info.tlsVersion, 'TLSv1.2');
    assert.equal(r.info.tlsCipher, 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256');
  });

  test('username/password checked by the server (auth-user-pass-verify), with a client certificate', async () => {
    const s = await serverFor('userpass', { proto: 'udp', userPass: { username: 'alice', password: 'correct horse' } });
    const r = await connectPingClose(s);
    expectConnected(r, s, 'AES-256-GCM');
    assert.match(s.log(), /alice/);
  });

  test('username/password only (verify-client-cert none)', async () => {
    const s = await serverFor('passonly', { proto: 'udp', verifyClientCert: 'none', userPass: { username: 'bob', password: 's3cret' } });
    const r = await connectPingClose(s, { cert: 'none' });
    expectConnected(r, s, 'AES-256-GCM');
  });

  test('a wrong password surfaces AUTH_FAILED with exit code 1 after one attempt, no retry storm', async () => {
    const s = await serverFor('userpass', { proto: 'udp', userPass: { username: 'alice', password: 'correct horse' } });
    const path = await s.clientProfile({ authUserPass: { username: 'alice', password: 'wrong' } });
    const mark = s.logMark();
    const r = await runCli(['openvpn', path, '--ping', s.serverTunIp, '--count', '1']);
    assert.equal(r.code, 1, `exit code 1, got ${r.code}; stderr: ${r.stderr}`);
    assert.match(r.stderr, /AUTH_FAILED/);
    // Give a retrying client the time to try again, then count attempts in the server's log.
    await new Promise((res) => setTimeout(res, 3000));
    const log = s.log().slice(mark);
    const attempts = log.match(/lab verify-user: rejected/g) ?? [];
    assert.equal(attempts.length, 1, `exactly one authentication attempt, saw ${attempts.length}`);
  });

  const refused = async (serverOpts: OpenVpnServerOptions, profile: ClientProfileOptions, name: string): Promise<VpnError> => {
    const s = await serverFor(name, serverOpts);
    const path = await s.clientProfile(profile);
    const { profile: p } = await loadProfile(path);
    const session = new OpenVpnSession({ profile: p, createTransport });
    try {
      await session.start();
    } catch (e) {
      assert.ok(e instanceof VpnError);
      return e;
    } finally {
      await session.close();
    }
    assert.fail('connected, but it should have been refused');
  };

  test('a server certificate from a foreign CA is refused, saying so', async () => {
    const e = await refused({ proto: 'udp', serverCert: 'foreign' }, { ca: 'ec' }, 'foreign');
    assert.equal(e.code, 'TLS_VERIFY');
    assert.match(e.message, /not signed by the CA in the profile/);
  });

  test('an expired server certificate is refused, saying so', async () => {
    const e = await refused({ proto: 'udp', serverCert: 'expired' }, {}, 'expired');
    assert.equal(e.code, 'TLS_VERIFY');
    assert.match(e.message, /expired/);
  });

  test('a verify-x509-name mismatch is refused, saying so', async () => {
    const e = await refused({ proto: 'udp' }, { verifyX509Name: 'other.lab' }, 'udp');
    assert.equal(e.code, 'TLS_VERIFY');
    assert.match(e.message, /verify-x509-name other\.lab/);
    assert.match(e.message, /server\.lab/);
  });

  test('the CLI pings like ping(8) and exits 0', async () => {
    const s = await serverFor('udp', { proto: 'udp' });
    const path = await s.clientProfile();
    const r = await runCli(['openvpn', path, '--ping', s.serverTunIp, '--count', '3', '--interval', '0.2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`bytes from ${s.serverTunIp.replaceAll('.', '\\.')}: icmp_seq=3 ttl=\\d+ time=`));
    assert.match(r.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
  });

  test('a profile with an unsupported wire-affecting directive fails fast with file:line and exit code 2', async () => {
    const s = await serverFor('udp', { proto: 'udp' });
    const path = await s.clientProfile({ extra: ['fragment 1300'] });
    const r = await runCli(['openvpn', path, '--ping', s.serverTunIp]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`${path.replaceAll('.', '\\.')}:\\d+: .*fragment`));
  });
});
