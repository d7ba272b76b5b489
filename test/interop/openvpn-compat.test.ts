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
import { appendToError, labPrereqs, startLab, type Lab, type OpenVpnServerOptions } from '../lab/index.js';
import { twentyPings } from './helpers.js';

const pre = labPrereqs();

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

describe('compression framing against a real OpenVPN 2.6 server', { skip: pre.skip, timeout: 300_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({ web: false, iperf: false });
  });
  after(async () => {
    await lab?.stop();
  });

  const variants: [string, string[], boolean][] = [
    ['comp-lzo no', ['comp-lzo no', 'push "comp-lzo no"'], false],
    ['compress stub-v2', ['compress stub-v2', 'push "compress stub-v2"'], false],
    ['compress lz4-v2, the server compressing what it sends', ['compress lz4-v2', 'push "compress lz4-v2"', 'allow-compression yes'], true],
    ['comp-lzo yes with allow-compression yes', ['comp-lzo yes', 'push "comp-lzo yes"', 'allow-compression yes'], true],
  ];
  for (const [name, extra, compresses] of variants) {
    test(name, async () => {
      const s = await lab.startOpenVpn({ proto: 'udp', extra });
      const { profile } = await loadProfile(await s.clientProfile());
      const session = new OpenVpnSession({ profile, createTransport });
      try {
        await session.start();
        const echo = new IcmpEcho(session);
        let answered = 0;
        // Large, repetitive payloads so that a compressing server really compresses its replies.
        for (let seq = 1; seq <= 20; seq++) if (await echo.ping(s.serverTunIp, seq, { payloadSize: 1200, timeoutMs: 3000 })) answered++;
        assert.equal(answered, 20);
        assert.equal(session.counters.dataDropped, 0);
        if (compresses) assert.ok(session.framing!.stats.decompressed >= 10, `replies arrived compressed (${session.framing!.stats.decompressed})`);
        else assert.equal(session.framing!.stats.decompressed, 0);
      } catch (e) {
        appendToError(e, `--- server log ---\n${s.log().split('\n').slice(-30).join('\n')}`);
        throw e;
      } finally {
        await session.close();
      }
    });
  }
});
