/**
 * ManualEspSession on an in-memory UDP transport and the simulated clock, with the gateway's side played by
 * our own SAs: up without a handshake, packets both ways, NAT keepalives when idle, drops counted by reason,
 * IKE and keepalive datagrams ignored, ICMP errors reported without ending the session, and a hard lifetime
 * that ends it for good (manual keys cannot be renewed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { VpnError } from '../../../src/errors.js';
import { parseIpsecConfig, type ManualConnection } from '../../../src/ipsec/config.js';
import { InboundSa, OutboundSa } from '../../../src/ipsec/esp-sa.js';
import { ManualEspSession } from '../../../src/ipsec/esp-session.js';
import { IpsecBackend } from '../../../src/ipsec/backend.js';
import { TransportError } from '../../../src/transport/common.js';
import type { Transport } from '../../../src/transport/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { buildIpv4, parseIpv4, parseIpv4Address } from '../../../src/wire/ipv4.js';

const K_OUT = '00112233445566778899aabbccddeeff01020304';
const K_IN = 'ffeeddccbbaa99887766554433221100a1a2a3a4';

function manual(extra = ''): ManualConnection {
  const text = `manual {
  lab {
    remote_addrs = 192.0.2.10
    vip = 10.203.0.9
    remote_ts = 10.200.0.0/24
    dns = 10.200.0.53
    ${extra}
    out {
      spi = 0xc1000001
      esp = aes128gcm16
      enc_key = 0x${K_OUT}
    }
    in {
      spi = 0xc1000002
      esp = aes128gcm16
      enc_key = 0x${K_IN}
      replay_window = 64
    }
  }
}
`;
  const c = parseIpsecConfig(text, 'lab.conf').manual.get('lab');
  assert.ok(c);
  return c;
}

class MemTransport extends EventEmitter implements Transport {
  readonly kind = 'udp' as const;
  readonly sent: Uint8Array[] = [];
  closed = false;
  async connect(): Promise<void> {}
  send(p: Uint8Array): void {
    this.sent.push(Uint8Array.from(p));
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  deliver(b: Uint8Array): void {
    this.emit('packet', Buffer.from(b));
  }
}

/** The gateway: receives with our outbound SA's keys, sends with our inbound SA's keys. */
function gatewaySas(c: ManualConnection) {
  const rx = new InboundSa({ spi: c.out.spi, suite: c.out.suite, encKey: c.out.encKey, integKey: c.out.integKey, now: 0 });
  const tx = new OutboundSa({ spi: c.in.spi, suite: c.in.suite, encKey: c.in.encKey, integKey: c.in.integKey, now: 0 });
  return { rx, tx };
}

const ip = (src: string, dst: string, n = 20) => buildIpv4({ src: parseIpv4Address(src), dst: parseIpv4Address(dst), protocol: 17, ttl: 64, id: 7 }, new Uint8Array(n).fill(0x5a));

async function upSession(conn: ManualConnection, clock: ManualClock) {
  const t = new MemTransport();
  const s = new ManualEspSession({ connection: conn, remote: { host: '192.0.2.10', port: 4500, proto: 'udp' }, createTransport: () => t, clock });
  const got: Uint8Array[] = [];
  s.onReceive((p) => got.push(p));
  const closed: string[] = [];
  s.watch({ closed: (e) => closed.push(`${e.reason}:${e.error?.code}`) });
  const info = await s.start();
  return { s, t, got, closed, info };
}

test('up without a handshake; packets both ways through the SAs; link config from the connection', async () => {
  const clock = new ManualClock(0);
  const conn = manual();
  const { s, t, got, info } = await upSession(conn, clock);
  assert.equal(info.spiOut, 0xc1000001);
  assert.deepEqual(s.config, { address: '10.203.0.9', netmask: '255.255.255.255', mtu: s.mtu, dns: ['10.200.0.53'], domains: [], routes: ['10.200.0.0/24'], redirectGateway: false });
  assert.ok(s.mtu >= 1400 && s.mtu <= 1440, `inner MTU leaves room for ESP in UDP: ${s.mtu}`);
  assert.equal(s.sessionInfo?.protocol, 'ipsec');
  const gw = gatewaySas(conn);
  s.send(ip('10.203.0.9', '10.200.0.5'));
  assert.equal(t.sent.length, 1);
  const opened = gw.rx.open(t.sent[0]!);
  assert.ok('packet' in opened, JSON.stringify(opened));
  assert.equal(parseIpv4(opened.packet).dst, parseIpv4Address('10.200.0.5'));
  t.deliver(gw.tx.seal(ip('10.200.0.5', '10.203.0.9')));
  assert.equal(got.length, 1);
  assert.equal(s.stats().packetsIn, 1);
  assert.equal(s.stats().packetsOut, 1);
  assert.equal(s.statusDetails().seqOut, 1);
  await s.close();
  assert.ok(t.closed);
});

test('drops are counted by reason and never end the session; keepalive and IKE datagrams are ignored', async () => {
  const clock = new ManualClock(0);
  const conn = manual();
  const { s, t, got, closed } = await upSession(conn, clock);
  const gw = gatewaySas(conn);
  const good = gw.tx.seal(ip('10.200.0.5', '10.203.0.9'));
  t.deliver(good);
  t.deliver(good); // replayed
  const bad = Uint8Array.from(gw.tx.seal(ip('10.200.0.5', '10.203.0.9')));
  bad[bad.length - 1]! ^= 1;
  t.deliver(bad); // bad ICV
  const foreign = Uint8Array.from(good);
  foreign[0] = 0x99; // unknown SPI
  t.deliver(foreign);
  t.deliver(gw.tx.seal(ip('10.77.0.1', '10.203.0.9'))); // outside remote_ts
  t.deliver(Uint8Array.of(0xff)); // NAT keepalive
  t.deliver(new Uint8Array(40)); // non-ESP marker + an IKE header's worth
  t.deliver(Uint8Array.of(1, 2, 3)); // malformed
  assert.equal(got.length, 1);
  const st = s.stats();
  assert.equal(st.drops!.replayed, 1);
  assert.equal(st.drops!['bad-icv'], 1);
  assert.equal(st.drops!['unknown-spi'], 1);
  assert.equal(st.drops!['outside-selector'], 1);
  assert.equal(st.drops!.ike, 1);
  assert.equal(st.drops!.malformed, 1);
  assert.equal(st.dropped, 6);
  t.emit('error', new TransportError('CONN_REFUSED', 'port unreachable (ICMP)', { fatal: false }));
  assert.equal(s.statusDetails().sendErrors, 1, 'an ICMP error is reported and counted');
  assert.deepEqual(closed, [], 'none of it ends the session');
  await s.close();
});

test('NAT keepalives after keep_alive seconds without sending (default 20 s)', async () => {
  const clock = new ManualClock(0);
  const { s, t } = await upSession(manual(), clock);
  clock.advance(19_999);
  assert.equal(t.sent.length, 0);
  clock.advance(1);
  assert.deepEqual([...t.sent[0]!], [0xff]);
  s.send(ip('10.203.0.9', '10.200.0.5'));
  clock.advance(19_999);
  assert.equal(t.sent.length, 2, 'traffic postpones the next keepalive');
  clock.advance(1);
  assert.equal(t.sent.length, 3);
  assert.equal(s.statusDetails().keepalivesSent, 2);
  await s.close();
});

test('a hard lifetime ends the session with SA_EXPIRED, which the backend treats as final', async () => {
  const clock = new ManualClock(0);
  const conn = manual();
  const limited: ManualConnection = { ...conn, out: { ...conn.out, lifetime: { ...conn.out.lifetime, rekeyPackets: 2, lifePackets: 3 } } };
  const { s, closed } = await upSession(limited, clock);
  for (let i = 0; i < 3; i++) s.send(ip('10.203.0.9', '10.200.0.5'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(closed, ['protocol-error:SA_EXPIRED']);
  assert.ok(new IpsecBackend({ connection: limited }).isFatal('protocol-error', new VpnError('SA_EXPIRED', 'x')));
  assert.ok(!new IpsecBackend({ connection: limited }).isFatal('transport-error', new VpnError('TRANSPORT_ERROR', 'x')));
  await s.close();
});
