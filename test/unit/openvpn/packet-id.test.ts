import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EARLY_NEG_START, PacketIdReceiver, PacketIdSender } from '../../../src/openvpn/packet-id.js';

describe('PacketIdSender', () => {
  test('pre-increments from 1 and fixes time at first use', () => {
    const s = new PacketIdSender();
    assert.deepEqual(s.next(1000), { id: 1, time: 1000 });
    assert.deepEqual(s.next(1005), { id: 2, time: 1000 });
    const b = Buffer.alloc(8);
    s.write(b, 0, 2000);
    assert.equal(b.toString('hex'), '00000003' + (1000).toString(16).padStart(8, '0'));
  });
  test('early negotiation start gives 0x0f000001 first', () => {
    const s = new PacketIdSender(EARLY_NEG_START);
    assert.equal(s.next(5).id, 0x0f000001);
  });
  test('wrap starts a new, later time', () => {
    const s = new PacketIdSender(0xfffffffe);
    assert.deepEqual(s.next(100), { id: 0xffffffff, time: 100 });
    assert.deepEqual(s.next(100), { id: 1, time: 101 });
  });
});

describe('PacketIdReceiver', () => {
  test('id 0 is always rejected', () => {
    const r = new PacketIdReceiver();
    assert.equal(r.check(0, 10, 10), 'zero-id');
  });
  test('in order, duplicate, reorder within 64, too old', () => {
    const r = new PacketIdReceiver();
    assert.equal(r.check(1, 10, 10), 'ok');
    assert.equal(r.check(1, 10, 10), 'replay');
    assert.equal(r.check(5, 10, 10), 'ok');
    assert.equal(r.check(3, 10, 10), 'ok'); // gap filled
    assert.equal(r.check(3, 10, 10), 'replay');
    assert.equal(r.check(100, 10, 10), 'ok');
    assert.equal(r.check(37, 10, 10), 'ok'); // 100-37 = 63 < 64
    assert.equal(r.check(36, 10, 10), 'too-old'); // 64 back
    assert.equal(r.check(5, 10, 10), 'too-old');
  });
  test('a higher time starts a new sequence, a lower time is rejected', () => {
    const r = new PacketIdReceiver();
    assert.equal(r.check(50, 10, 10), 'ok');
    assert.equal(r.check(1, 11, 11), 'ok');
    assert.equal(r.check(51, 10, 11), 'old-time');
    assert.equal(r.check(1, 11, 11), 'replay');
    assert.equal(r.check(2, 11, 11), 'ok');
  });
  test('unseen gap slots expire 15 s after a later id was seen', () => {
    const r = new PacketIdReceiver();
    assert.equal(r.check(1, 100, 100), 'ok');
    assert.equal(r.check(3, 100, 100), 'ok'); // 2 missing
    assert.equal(r.test(2, 100, 115), 'ok'); // 15 s: still fine
    assert.equal(r.test(2, 100, 116), 'expired'); // > 15 s after id 3 arrived
    // a later sequence of ids opens new slots that are not expired
    assert.equal(r.check(6, 100, 116), 'ok');
    assert.equal(r.check(5, 100, 116), 'ok');
    assert.equal(r.check(2, 100, 116), 'expired');
  });
  test('property: an id is never accepted twice in the same time sequence', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 200 }), { maxLength: 300 }), (ids) => {
        const r = new PacketIdReceiver();
        const seen = new Set<number>();
        for (const id of ids) {
          const v = r.check(id, 7, 7);
          if (v === 'ok') {
            assert.ok(!seen.has(id), `id ${id} accepted twice`);
            seen.add(id);
          }
        }
      }),
    );
  });
});
