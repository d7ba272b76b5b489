/**
 * What keeps a client alive for days against a real OpenVPN 2.6 server: frequent renegotiation with no loss,
 * a killed and restarted server (reconnect with the auth-token, not the password), and a bad network (drop,
 * duplication, reordering, corruption) through the lab's impairment relay.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadProfile } from '../../src/openvpn/profile.js';
import { OpenVpnClient } from '../../src/openvpn/client.js';
import { OpenVpnSession } from '../../src/openvpn/session.js';
import { IcmpEcho } from '../../src/stack/icmp-echo.js';
import { createTransport } from '../../src/transport/index.js';
import { appendToError, labPrereqs, run, startLab, type Lab, type OpenVpnServer } from '../lab/index.js';

const pre = labPrereqs();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

function withLogs(server: OpenVpnServer) {
  return (e: unknown) => {
    appendToError(e, `--- server log ---\n${server.log().split('\n').slice(-40).join('\n')}`);
    throw e;
  };
}

describe('resilience against a real OpenVPN 2.6 server', { skip: pre.skip, timeout: 600_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({ web: false, iperf: false });
  });
  after(async () => {
    await lab?.stop();
  });

  test('server reneg-sec 10 for 60 s, a ping every 200 ms: no loss after the first key, key id advanced at least five times', async () => {
    const s = await lab.startOpenVpn({ proto: 'udp', renegSec: 10 });
    const { profile } = await loadProfile(await s.clientProfile());
    const session = new OpenVpnSession({ profile, createTransport });
    try {
      await session.start();
      const echo = new IcmpEcho(session);
      let sent = 0;
      let answered = 0;
      const end = Date.now() + 60_000;
      while (Date.now() < end) {
        sent++;
        if (await echo.ping(s.serverTunIp, sent, { timeoutMs: 3000 })) answered++;
        await sleep(200);
      }
      assert.equal(answered, sent, `every ping answered across the key switches (${answered}/${sent})`);
      assert.ok(session.renegotiations >= 5, `key id advanced ${session.renegotiations} times`);
    } catch (e) {
      withLogs(s)(e);
    } finally {
      await session.close();
    }
  });

  for (const proto of ['udp', 'tcp'] as const) {
    test(`${proto.toUpperCase()}: the server process killed and restarted; reconnect within 15 s of it being back, with the auth-token`, async () => {
      const secret = join(lab.dir, `auth-token-${proto}.key`);
      await run('openvpn', ['--genkey', 'auth-token', secret]);
      const s = await lab.startOpenVpn({
        proto,
        keepalive: [2, 10],
        userPass: { username: 'carol', password: 'only-once' },
        extra: ['auth-gen-token 0', `auth-gen-token-secret ${secret}`],
      });
      const { profile } = await loadProfile(await s.clientProfile());
      const aup = profile.authUserPass!;
      const client = new OpenVpnClient({ profile, createTransport, credentials: { username: aup.username!, password: aup.password! } });
      try {
        await client.start();
        const echo = new IcmpEcho(client);
        assert.ok(await echo.ping(s.serverTunIp, 1, { timeoutMs: 3000 }));
        const passwordLogins = () => (s.log().match(/Username\/Password authentication succeeded/g) ?? []).length;
        assert.equal(passwordLogins(), 1);
        s.signal('SIGKILL');
        await waitUntil('the server process to die', () => !s.running, 5000);
        await s.start();
        // The server is back: the client must be up again within 15 s.
        await waitUntil('a second session', () => client.sessionsEstablished >= 2, 15_000);
        assert.ok(await echo.ping(s.serverTunIp, 2, { timeoutMs: 3000 }), 'pings resume');
        // OpenVPN logs a token login as "Username/auth-token authentication succeeded" (then the generic line);
        // a password login has only the generic line.
        const tokenLogins = (s.log().match(/Username\/auth-token authentication succeeded for username 'carol'/g) ?? []).length;
        assert.equal(tokenLogins, 1, 'the reconnect logged in with the auth-token, not the password');
        assert.ok((client.current as OpenVpnSession).usedAuthToken);
      } catch (e) {
        withLogs(s)(e);
      } finally {
        await client.close();
      }
    });
  }

  test('through 10% drop, 5% duplication and reordering: handshake, renegotiation and pings; corrupted packets are counted as dropped', async () => {
    // tls-crypt so that corrupted control packets are caught (and counted) before TLS sees them.
    const s = await lab.startOpenVpn({ proto: 'udp', renegSec: 8, tlsCrypt: true });
    const relay = await lab.startRelay({ targetHost: s.remote.host, targetPort: s.remote.port, drop: 0.1, duplicate: 0.05, reorder: 0.05, seed: 7 });
    const { profile } = await loadProfile(await s.clientProfile({ remote: relay.address }));
    const session = new OpenVpnSession({ profile, createTransport });
    try {
      await session.start();
      const echo = new IcmpEcho(session);
      let sent = 0;
      let answered = 0;
      const end = Date.now() + 20_000;
      while (Date.now() < end || session.renegotiations < 1) {
        if (Date.now() > end + 40_000) break;
        sent++;
        if (await echo.ping(s.serverTunIp, sent, { timeoutMs: 1500 })) answered++;
        await sleep(100);
      }
      assert.ok(session.renegotiations >= 1, 'a renegotiation completed over the bad network');
      // Each ping crosses the relay twice at 10% drop: about 81% come back.
      assert.ok(answered >= sent * 0.6, `pings keep flowing (${answered}/${sent})`);
      const st = relay.stats();
      assert.ok(st.down.dropped > 0 && st.down.duplicated > 0 && st.up.dropped > 0);

      // Every server-to-client packet duplicated: each duplicate must be caught by the replay window (which of
      // the random 5 % above were data packets depends on timing, so this is checked deterministically here).
      relay.setImpairment('both', {});
      await sleep(500);
      const replaysBefore = session.counters.dataDropped;
      relay.setImpairment('down', { duplicate: 1 });
      let dupAnswered = 0;
      for (let i = 0; i < 20; i++) if (await echo.ping(s.serverTunIp, ++sent, { timeoutMs: 1500 })) dupAnswered++;
      relay.setImpairment('both', {});
      await sleep(300);
      assert.equal(dupAnswered, 20, 'duplicated replies still answer each ping once');
      assert.ok(session.counters.dataDropped - replaysBefore >= 20, `duplicates dropped by the replay window: ${session.counters.dataDropped - replaysBefore}`);

      // Now only corruption, server to client: every corrupted packet must be dropped and counted.
      relay.setImpairment('both', {});
      await sleep(500);
      const before = relay.stats().down.corrupted;
      const droppedBefore = session.counters.dataDropped + session.counters.controlDropped;
      relay.setImpairment('down', { corrupt: 0.3 });
      for (let i = 0; i < 60; i++) {
        sent++;
        await echo.ping(s.serverTunIp, sent, { timeoutMs: 500 });
      }
      relay.setImpairment('both', {});
      await sleep(500);
      const corrupted = relay.stats().down.corrupted - before;
      const dropped = session.counters.dataDropped + session.counters.controlDropped - droppedBefore;
      assert.ok(corrupted > 5, `the relay corrupted ${corrupted} packets`);
      assert.equal(dropped, corrupted, 'each corrupted packet was dropped and counted, none delivered');
      assert.ok(await echo.ping(s.serverTunIp, ++sent, { timeoutMs: 3000 }), 'and the session is still fine');
    } catch (e) {
      withLogs(s)(e);
    } finally {
      await session.close();
      await relay.close();
    }
  });
});
