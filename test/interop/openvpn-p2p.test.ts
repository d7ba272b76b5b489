/**
 * Static-key mode (both key directions, and none) and plaintext peer-to-peer against a real OpenVPN 2.6 peer
 * (`--secret` / no crypto, kernel tun in the lab): 20 pings to the peer's tunnel address answered.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadProfile } from '../../src/openvpn/profile.js';
import { OpenVpnClient } from '../../src/openvpn/client.js';
import { IcmpEcho } from '../../src/stack/icmp-echo.js';
import { createTransport } from '../../src/transport/index.js';
import { appendToError, labPrereqs, startLab, type Lab } from '../lab/index.js';
import { startP2pPeer, type P2pPeerOptions } from '../lab/p2p.js';

const pre = labPrereqs();

describe('static key and plaintext p2p against a real OpenVPN 2.6 peer', { skip: pre.skip, timeout: 300_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({ web: false, iperf: false });
  });
  after(async () => {
    await lab?.stop();
  });

  const cases: [string, P2pPeerOptions, boolean][] = [
    ['static key, peer direction 0 / ours 1, AES-256-CBC + SHA256', { secret: { direction: 0 } }, false],
    ['static key, peer direction 1 / ours 0 (inline <secret>), AES-128-CBC + SHA1', { secret: { direction: 1 }, cipher: 'AES-128-CBC', auth: 'SHA1' }, true],
    ['static key without a direction, AES-256-CBC + SHA512', { secret: { direction: null }, auth: 'SHA512' }, false],
    ['plaintext peer-to-peer', {}, false],
  ];
  for (const [name, opts, inline] of cases) {
    test(name, async () => {
      const peer = await startP2pPeer(lab, opts);
      const { profile } = await loadProfile(await peer.clientProfile({ inline }));
      const client = new OpenVpnClient({ profile, createTransport });
      try {
        const info = await client.start();
        assert.equal(info.localIp, peer.clientIp);
        const echo = new IcmpEcho(client);
        let answered = 0;
        for (let seq = 1; seq <= 20; seq++) if (await echo.ping(peer.peerIp, seq, { timeoutMs: 3000 })) answered++;
        assert.equal(answered, 20);
        assert.equal(client.current!.counters.dataDropped, 0);
      } catch (e) {
        appendToError(e, `--- peer log ---\n${peer.log().split('\n').slice(-30).join('\n')}`);
        throw e;
      } finally {
        await client.close();
        await peer.stop();
      }
    });
  }
});
