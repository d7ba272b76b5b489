/**
 * EspPath during a CHILD_SA rekey, make-before-break (RFC 7296 §2.8): a new inbound SA installed beside the old
 * one accepts packets at once while the old one still does; sending moves to the new outbound SA in one step;
 * the old inbound SA is retired only when asked, and its drops stay in the totals; packets on a retired or
 * never-installed SPI are counted as unknown-spi; the lifetime watch follows the current pair.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { EspPath } from '../../../src/ipsec/esp-path.js';
import { InboundSa, OutboundSa } from '../../../src/ipsec/esp-sa.js';
import { espSuite } from '../../../src/crypto/ipsec-algorithms.js';
import type { Transport } from '../../../src/transport/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/log.js';
import { buildIpv4, parseIpv4Address } from '../../../src/wire/ipv4.js';
import { parseEspHeader } from '../../../src/wire/esp.js';

class MemTransport extends EventEmitter implements Transport {
  readonly kind = 'udp' as const;
  readonly sent: Uint8Array[] = [];
  async connect(): Promise<void> {}
  send(p: Uint8Array): void {
    this.sent.push(Uint8Array.from(p));
  }
  async close(): Promise<void> {}
}

const suite = espSuite('aes128gcm16').suite;
const key = (b: number) => new Uint8Array(20).fill(b);
const ip = (n: number) => buildIpv4({ src: parseIpv4Address('10.200.0.1'), dst: parseIpv4Address('10.203.0.9'), protocol: 17, ttl: 64, id: n }, new Uint8Array(16).fill(n));

/** One direction's SA pair: what we open with and what the gateway seals with. */
function pair(spi: number, k: number, lifetime?: ConstructorParameters<typeof InboundSa>[0]['lifetime']) {
  return {
    ours: new InboundSa({ spi, suite, encKey: key(k), integKey: new Uint8Array(0), now: 0, lifetime }),
    theirs: new OutboundSa({ spi, suite, encKey: key(k), integKey: new Uint8Array(0), now: 0 }),
  };
}

function setup() {
  const clock = new ManualClock();
  const t = new MemTransport();
  const got: Uint8Array[] = [];
  const stages: string[] = [];
  const in1 = pair(0xa0000001, 1, { soft: { packets: 3 }, hard: { packets: 100 } });
  const out1 = new OutboundSa({ spi: 0xb0000001, suite, encKey: key(2), integKey: new Uint8Array(0), now: 0 });
  const path = new EspPath({ out: out1, in: in1.ours, transport: t, clock, log: silentLogger, keepAliveSeconds: 0, deliver: (p) => got.push(p), onLifetime: (s) => stages.push(s), onError: () => assert.fail('no error expected') });
  path.start();
  return { clock, t, got, stages, path, in1, out1 };
}

test('a new inbound SA is accepted beside the old one, sending switches in one step, the old SA retires on demand', () => {
  const { t, got, path, in1, out1 } = setup();
  path.receive(in1.theirs.seal(ip(1)));
  assert.equal(got.length, 1);

  const in2 = pair(0xa0000002, 3);
  path.addInbound(in2.ours);
  assert.deepEqual(path.inboundSpis.sort(), [0xa0000001, 0xa0000002]);
  path.receive(in2.theirs.seal(ip(2))); // the gateway already uses the new SA
  path.receive(in1.theirs.seal(ip(3))); // a packet still in flight on the old one
  assert.equal(got.length, 3, 'both SPIs accepted during the rekey');

  path.send(ip(4));
  assert.equal(parseEspHeader(t.sent.at(-1)!).spi, out1.spi, 'still the old outbound SA');
  const out2 = new OutboundSa({ spi: 0xb0000002, suite, encKey: key(4), integKey: new Uint8Array(0), now: 0 });
  path.useOutbound(out2, in2.ours);
  path.send(ip(5));
  const last = parseEspHeader(t.sent.at(-1)!);
  assert.equal(last.spi, out2.spi, 'the new outbound SA from the next packet on');
  assert.equal(last.seq, 1, 'with its own sequence numbers');
  assert.equal(path.out, out2);
  assert.equal(path.in, in2.ours);

  // A replay on the old SA before it is retired is still a replay of that SA.
  const old = in1.theirs.seal(ip(6));
  path.receive(old);
  path.receive(old);
  assert.equal(got.length, 4);
  assert.equal(path.removeInbound(in2.ours.spi), false, 'the current inbound SA cannot be removed');
  assert.equal(path.removeInbound(in1.ours.spi), true);
  path.receive(in1.theirs.seal(ip(7)));
  assert.equal(got.length, 4, 'the retired SPI is unknown now');
  const st = path.stats();
  assert.equal(st.drops?.['unknown-spi'], 1);
  assert.equal(st.drops?.replayed, 1, "the retired SA's replay stays in the totals");
  assert.equal(st.packetsIn, 4);
  assert.equal(st.packetsOut, 2);
});

test('the lifetime watch follows the current pair: soft on the old SA, reported again for the new pair', () => {
  const { stages, path, in1 } = setup();
  for (let i = 0; i < 3; i++) path.receive(in1.theirs.seal(ip(i)));
  assert.deepEqual(stages, ['soft']);
  path.receive(in1.theirs.seal(ip(9)));
  assert.deepEqual(stages, ['soft'], 'once per pair');
  const in2 = pair(0xa0000003, 5, { soft: { packets: 2 }, hard: { packets: 100 } });
  const out2 = new OutboundSa({ spi: 0xb0000003, suite, encKey: key(6), integKey: new Uint8Array(0), now: 0 });
  path.useOutbound(out2, in2.ours);
  path.receive(in2.theirs.seal(ip(1)));
  assert.deepEqual(stages, ['soft']);
  path.receive(in2.theirs.seal(ip(2)));
  assert.deepEqual(stages, ['soft', 'soft'], 'the new pair reaches its own soft lifetime');
});
