/** Shared steps of the OpenVPN interop tests. */
import assert from 'node:assert/strict';
import { loadProfile } from '../../src/openvpn/profile.js';
import { OpenVpnSession, type ConnectedInfo } from '../../src/openvpn/session.js';
import { IcmpEcho } from '../../src/stack/icmp-echo.js';
import { createTransport } from '../../src/transport/index.js';
import { appendToError, type ClientProfileOptions, type OpenVpnServer } from '../lab/index.js';

/** Connects with a profile made for `server` (or the given file), asserts 20 answered pings, closes. */
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

