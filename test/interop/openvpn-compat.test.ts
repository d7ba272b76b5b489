/**
 * Compatibility cells against the lab's real OpenVPN 2.6 server: every control-channel wrapping over UDP and
 * TCP, and the legacy CBC+HMAC data channel. Each cell connects and keeps 20 pings answered.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadProfile } from '../../src/openvpn/profile.js';
import { OpenVpnSession, type ConnectedInfo } from '../../src/openvpn/session.js';
import { IcmpEcho } from '../../src/stack/icmp-echo.js';
import { createTransport } from '../../src/transport/index.js';
import { appendToError, labPrereqs, startLab, type ClientProfileOptions, type Lab, type OpenVpnServer, type OpenVpnServerOptions } from '../lab/index.js';

const pre = labPrereqs();

export async function twentyPings(server: OpenVpnServer, profileOpts: ClientProfileOptions | { path: string } = {}): Promise<ConnectedInfo> {
  const path = 'path' in profileOpts ? profileOpts.path : await server.clientProfile(profileOpts);
  const { profile } = await loadProfile(path);
  const aup = profile.authUserPass;
  const session = new OpenVpnSession({
    profile,
    createTransport,
    credentials: aup?.username !== undefined ? { username: aup.username, password: aup.password ?? '' } : undefined,
  });
  try {
    const info = await session.start();
    const echo = new IcmpEcho(session);
    let answered = 0;
    for (let seq = 1; seq <= 20; seq++) if (await echo.ping(server.serverTunIp, seq, { timeoutMs: 3000 })) answered++;
    assert.equal(answered, 20, 'all 20 echo requests answered');
    assert.equal(session.counters.dataDropped, 0, 'no data packet failed to decrypt');
    return info;
  } catch (e) {
    appendToError(e, `--- server log ---\n${server.log().split('\n').slice(-30).join('\n')}`);
    throw e;
  } finally {
    await session.close();
  }
}

describe('OpenVPN compatibility against a real OpenVPN 2.6 server', { skip: pre.skip, timeout: 600_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({ web: false, iperf: false });
  });
  after(async () => {
    await lab?.stop();
  });

  const wraps: [string, OpenVpnServerOptions][] = [
    ['tls-auth SHA1, key-direction 1', { tlsAuth: { digest: 'SHA1', keyDirection: 0 } }],
    ['tls-auth SHA512, no key-direction', { tlsAuth: { digest: 'SHA512', keyDirection: null } }],
    ['tls-crypt', { tlsCrypt: true }],
    ['tls-crypt-v2', { tlsCryptV2: true }],
  ];
  for (const proto of ['udp', 'tcp'] as const) {
    for (const [name, opts] of wraps) {
      test(`${proto.toUpperCase()} with ${name}`, async () => {
        const s = await lab.startOpenVpn({ proto, ...opts });
        const info = await twentyPings(s);
        assert.equal(info.remote.proto, proto);
        const text = await s.clientProfileText();
        if (name.includes('key-direction 1')) assert.match(text, /^key-direction 1$/m);
        if (name.includes('no key-direction')) assert.doesNotMatch(text, /key-direction/);
      });
    }
  }

  test('tls-crypt-v2 with a server that insists on the cookie handshake (force-cookie)', async () => {
    const s = await lab.startOpenVpn({ proto: 'udp', tlsCryptV2: { forceCookie: true } });
    await twentyPings(s);
  });

  const cbc: [string, string][] = [
    ['AES-256-CBC', 'SHA256'],
    ['AES-128-CBC', 'SHA1'],
  ];
  for (const [cipher, digest] of cbc) {
    test(`${cipher} + ${digest} with data-ciphers-fallback`, async () => {
      const s = await lab.startOpenVpn({
        proto: 'udp',
        dataCiphers: cipher,
        auth: digest,
        extra: [`data-ciphers-fallback ${cipher}`],
      });
      const info = await twentyPings(s, { extra: [`cipher ${cipher}`, `data-ciphers-fallback ${cipher}`] });
      assert.equal(info.cipher, cipher);
      assert.match(s.log(), new RegExp(`Outgoing Data Channel: Cipher '${cipher}'`));
      assert.match(s.log(), new RegExp(`Outgoing Data Channel: Using \\d+ bit message hash '${digest}'`));
    });
  }
});
