/**
 * Renegotiation against the lab's real OpenVPN 2.6 server, started by the server (its reneg-sec) over TCP with
 * the TLS1-PRF keys, and by us (the profile's reneg-sec): new key_ids come into use and no echo request goes
 * unanswered across the switch; and by bytes (the profile's reneg-bytes) during a download that must stay
 * byte-exact. (The long server-initiated UDP run is in openvpn-resilience.test.ts.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadProfile } from '../../src/openvpn/profile.js';
import { OpenVpnSession } from '../../src/openvpn/session.js';
import { IcmpEcho } from '../../src/stack/icmp-echo.js';
import { createTransport } from '../../src/transport/index.js';
import { appendToError, detSha256, labPrereqs, startLab, type ClientProfileOptions, type Lab, type OpenVpnServer, type OpenVpnServerOptions } from '../lab/index.js';
import { getHashed, openVpnTunnel } from './stack-helpers.js';

const pre = labPrereqs();

async function pingAcrossRenegotiations(server: OpenVpnServer, profileOpts: ClientProfileOptions, seconds: number, tlsEkm = true) {
  const { profile } = await loadProfile(await server.clientProfile(profileOpts));
  const session = new OpenVpnSession({ profile, createTransport, tlsEkm });
  try {
    await session.start();
    const echo = new IcmpEcho(session);
    let sent = 0;
    let answered = 0;
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      sent++;
      if (await echo.ping(server.serverTunIp, sent, { timeoutMs: 3000 })) answered++;
      await new Promise((r) => setTimeout(r, 100));
    }
    return { sent, answered, renegotiations: session.renegotiations };
  } catch (e) {
    appendToError(e, `--- server log ---\n${server.log().split('\n').slice(-40).join('\n')}`);
    throw e;
  } finally {
    await session.close();
  }
}

describe('renegotiation with a real OpenVPN 2.6 server', { skip: pre.skip, timeout: 300_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({ web: false, iperf: false });
  });
  after(async () => {
    await lab?.stop();
  });

  const cases: [string, OpenVpnServerOptions, ClientProfileOptions, boolean][] = [
    ['server-initiated, TCP, TLS1-PRF', { proto: 'tcp', renegSec: 4 }, {}, false],
    ['client-initiated (reneg-sec 4 in the profile), UDP', { proto: 'udp' }, { extra: ['reneg-sec 4'] }, true],
  ];
  for (const [name, serverOpts, profileOpts, ekm] of cases) {
    test(name, async () => {
      const s = await lab.startOpenVpn(serverOpts);
      const r = await pingAcrossRenegotiations(s, profileOpts, 11, ekm);
      assert.ok(r.renegotiations >= 2, `at least two renegotiations, saw ${r.renegotiations}`);
      assert.equal(r.answered, r.sent, `every echo answered across the key switches (${r.answered}/${r.sent})`);
      assert.match(s.log(), /TLS: soft reset|SOFT_RESET|Renegotiat|key_id=[1-7]/i);
    });
  }
});

describe('reneg-bytes against a real OpenVPN 2.6 server', { skip: pre.skip, timeout: 300_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({ openvpn: { proto: 'udp' }, iperf: false });
  });
  after(async () => {
    await lab?.stop();
  });

  test('reneg-bytes 5000000 rekeys during a 20 MB download, byte-exact', async () => {
    const { profile } = await loadProfile(await lab.clientProfile({ extra: ['reneg-bytes 5000000'] }));
    const tunnel = openVpnTunnel(profile);
    const mark = lab.openvpn!.logMark();
    try {
      await tunnel.start();
      const n = 20_000_000;
      const s = await tunnel.connect({ host: lab.web.host, port: lab.web.httpPort });
      const r = await getHashed(s, lab.web.host, `/bytes/${n}`);
      assert.equal(r.status, 200);
      assert.equal(r.bytes, n);
      assert.equal(r.sha256, detSha256(n), 'no byte lost or changed across the key switches');
      const session = tunnel.client.current as OpenVpnSession;
      // 20 MB of payload plus the requests, counted both ways: at least three 5 MB rounds
      assert.ok(session.renegotiations >= 3, `at least three renegotiations by bytes, saw ${session.renegotiations}`);
      // At verb 3 the server logs each key it installs: once for the first key, then once per soft reset.
      const log = lab.openvpn!.log().slice(mark);
      const keys = log.match(/Outgoing Data Channel: Cipher '[^']+' initialized/g) ?? [];
      assert.ok(keys.length - 1 >= 3, `the server log shows the soft resets (${keys.length - 1}):\n${log.split('\n').slice(-30).join('\n')}`);
      assert.equal(keys.length - 1, session.renegotiations, 'every soft reset we started completed on the server');
    } finally {
      await tunnel.close();
    }
  });
});
