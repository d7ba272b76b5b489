/**
 * Reconnects against the lab's real OpenVPN 2.6 server: the client object survives a server restart (UDP:
 * the server's RESTART notice; TCP: the connection reset), a silent server (ping-restart), and a dead first
 * remote (it moves on to the next). Consumers keep the same handle and pings flow again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadProfile } from '../../src/openvpn/profile.js';
import { OpenVpnClient, type ReconnectingEvent } from '../../src/openvpn/client.js';
import { IcmpEcho } from '../../src/stack/icmp-echo.js';
import { createTransport } from '../../src/transport/index.js';
import { appendToError, labPrereqs, startLab, type ClientProfileOptions, type Lab, type OpenVpnServer } from '../lab/index.js';

const pre = labPrereqs();

async function waitUntil(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function pingOnce(echo: IcmpEcho, server: OpenVpnServer, seq: number): Promise<boolean> {
  return (await echo.ping(server.serverTunIp, seq, { timeoutMs: 2000 })) !== undefined;
}

async function withClient(
  server: OpenVpnServer,
  profileOpts: ClientProfileOptions & { path?: string },
  fn: (c: OpenVpnClient, echo: IcmpEcho, events: ReconnectingEvent[]) => Promise<void>,
): Promise<void> {
  const { profile } = await loadProfile(profileOpts.path ?? (await server.clientProfile(profileOpts)));
  const client = new OpenVpnClient({ profile, createTransport });
  const events: ReconnectingEvent[] = [];
  client.on('reconnecting', (e) => events.push(e));
  try {
    await client.start();
    await fn(client, new IcmpEcho(client), events);
  } catch (e) {
    appendToError(e, `--- server log ---\n${server.log().split('\n').slice(-30).join('\n')}`);
    throw e;
  } finally {
    await client.close();
  }
}

describe('reconnect against a real OpenVPN 2.6 server', { skip: pre.skip, timeout: 300_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({ web: false, iperf: false });
  });
  after(async () => {
    await lab?.stop();
  });

  test('UDP: the server restarts (it tells clients RESTART); the same client handle works again', async () => {
    const s = await lab.startOpenVpn({ proto: 'udp', explicitExitNotify: 1 });
    await withClient(s, {}, async (client, echo, events) => {
      assert.ok(await pingOnce(echo, s, 1));
      await s.stop();
      await s.start();
      await waitUntil('a second session', () => client.sessionsEstablished >= 2, 30_000);
      assert.ok(await pingOnce(echo, s, 2), 'pings flow on the same handle after the reconnect');
      assert.ok(events.length >= 1);
      assert.ok(['server-restart', 'server-exit', 'transport-error', 'handshake-timeout'].includes(events[0]!.reason), events[0]!.reason);
    });
  });

  test('TCP: the server goes away (connection reset); the client reconnects', async () => {
    const s = await lab.startOpenVpn({ proto: 'tcp' });
    await withClient(s, {}, async (client, echo, events) => {
      assert.ok(await pingOnce(echo, s, 1));
      await s.stop();
      await s.start();
      await waitUntil('a second session', () => client.sessionsEstablished >= 2, 30_000);
      assert.ok(await pingOnce(echo, s, 2));
      assert.equal(events[0]!.reason, 'transport-error');
    });
  });

  test('a silent server is detected by ping-restart, and the client comes back when it answers again', async () => {
    const s = await lab.startOpenVpn({ proto: 'udp' });
    // Our own, short keepalive instead of the pushed one.
    const profile = { extra: ['pull-filter ignore "ping"', 'ping 1', 'ping-restart 3'] };
    await withClient(s, profile, async (client, echo, events) => {
      assert.ok(await pingOnce(echo, s, 1));
      s.signal('SIGSTOP');
      try {
        await waitUntil('ping-restart', () => events.some((e) => e.reason === 'ping-restart'), 10_000);
      } finally {
        s.signal('SIGCONT');
      }
      await waitUntil('a second session', () => client.sessionsEstablished >= 2, 40_000);
      assert.ok(await pingOnce(echo, s, 2));
    });
  });

  test('a dead first remote: the client moves on to the next remote', async () => {
    const s = await lab.startOpenVpn({ proto: 'udp' });
    // Port 9 on the server host answers with ICMP port unreachable: a transport error at once.
    const text = await s.clientProfileText({ remote: { host: s.remote.host, port: 9 } });
    const path = join(lab.dir, 'two-remotes.ovpn');
    await writeFile(path, text.replace(/^remote .*$/m, (line) => `${line}\nremote ${s.remote.host} ${s.remote.port}\nconnect-retry 1`));
    const profile = { path };
    await withClient(s, profile, async (client, echo, events) => {
      assert.ok(await pingOnce(echo, s, 1));
      assert.ok(events.length >= 1, 'one failed attempt first');
      assert.equal(events[0]!.next.port, s.remote.port);
      assert.equal(client.connectedInfo?.remote.port, s.remote.port);
    });
  });
});
