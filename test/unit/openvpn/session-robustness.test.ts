/**
 * The session under garbage: random and mutated datagrams from the server's address are counted and dropped,
 * never thrown, and the session carries on (its hard reset keeps being retransmitted on schedule).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import fc from 'fast-check';
import { parseProfile } from '../../../src/openvpn/profile.js';
import { OpenVpnSession } from '../../../src/openvpn/session.js';
import type { Transport, TransportEvents } from '../../../src/transport/types.js';
import { ManualClock } from '../../../src/util/clock.js';

class FakeTransport extends EventEmitter implements Transport {
  readonly kind = 'udp' as const;
  sent: Buffer[] = [];
  async connect(): Promise<void> {}
  send(p: Uint8Array): void {
    this.sent.push(Buffer.from(p));
  }
  async close(): Promise<void> {
    this.emit('close');
  }
  deliver(p: Buffer): void {
    this.emit('packet', p);
  }
  override on<E extends keyof TransportEvents>(e: E, l: TransportEvents[E]): this {
    return super.on(e, l);
  }
  override off<E extends keyof TransportEvents>(e: E, l: TransportEvents[E]): this {
    return super.off(e, l);
  }
}

const CA = `-----BEGIN CERTIFICATE-----
MIIBkjCCATegAwIBAgIUflRpIw50J1DOTkZHbuKjFeHkzcYwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTRXhhbXBsZSBWUE4gUm9vdCBDQTAeFw0yNjExMjYxMTA4NDla
Fw0zNjExMjMxMTA4NDlaMB4xHDAaBgNVBAMME0V4YW1wbGUgVlBOIFJvb3QgQ0Ew
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATNbZ10Gz0k+DxCQiAUMJfoXfEM1xrN
5p5DZIyxx45J09D5v7HK3pZ2dHV/mylHosiY/sjDUdYWhCZGS2pwf133o1MwUTAd
BgNVHQ4EFgQU6PS4lFelHCII3U0u6z6tYv+hu5wwHwYDVR0jBBgwFoAU6PS4lFel
HCII3U0u6z6tYv+hu5wwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBG
AiEAm3YVTC/wGS6UU91kgQCqGib2GcyjbPccFKoeKGe8RxgCIQCkST4Hp9saxyac
rJ7d1Ag9BtXGTWoGCbz0jZe/24t26Q==
-----END CERTIFICATE-----`;

function makeSession() {
  const { profile } = parseProfile(`client\ndev tun\nremote 127.0.0.1 1194\nauth-user-pass\n<auth-user-pass>\nu\np\n</auth-user-pass>\n<ca>\n${CA}\n</ca>\n`, { path: 'robust.ovpn' });
  const clock = new ManualClock();
  const t = new FakeTransport();
  const session = new OpenVpnSession({ profile, clock, createTransport: () => t, credentials: { username: 'u', password: 'p' } });
  return { session, t, clock };
}

test('random and mutated datagrams are dropped and counted, never thrown', async () => {
  const { session, t, clock } = makeSession();
  const started = session.start().catch(() => undefined);
  await new Promise((r) => setImmediate(r));
  assert.equal(t.sent.length, 1, 'the hard reset went out');
  const reset = t.sent[0]!;
  // A plausible server reset with a wrong session id, and garbage of every shape.
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 1600 }), fc.uint8Array({ minLength: reset.length, maxLength: reset.length })), (bytes) => {
      t.deliver(Buffer.from(bytes));
    }),
    { numRuns: 3000 },
  );
  const c = session.counters;
  assert.ok(c.controlDropped + c.dataDroppedBeforeUp > 2500, `dropped and counted: ${JSON.stringify(c)}`);
  // The session is still alive: the reset is retransmitted after tls-timeout (2 s).
  const before = t.sent.length;
  clock.advance(2100);
  assert.ok(t.sent.length > before, 'retransmission still on schedule');
  await session.close();
  await started;
});

test('a data packet before the session is established is refused', async () => {
  const { session, t } = makeSession();
  const started = session.start().catch(() => undefined);
  await new Promise((r) => setImmediate(r));
  t.deliver(Buffer.from([0x48, 0, 0, 0, 0, 0, 0, 1, ...new Array(40).fill(7)]));
  assert.equal(session.counters.dataDroppedBeforeUp, 1);
  await session.close();
  await started;
});
