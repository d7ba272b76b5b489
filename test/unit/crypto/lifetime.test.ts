import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { KeyLifetime, jittered } from '../../../src/crypto/lifetime.js';

describe('KeyLifetime (soft/hard by time, bytes, packets)', () => {
  test('bytes: count() reports the crossing once, stageAt follows', () => {
    const l = new KeyLifetime({ soft: { bytes: 1000 }, hard: { bytes: 1500 } }, 0);
    assert.equal(l.count(1, 600), undefined);
    assert.equal(l.stageAt(0), 'fresh');
    assert.equal(l.count(1, 400), 'soft');
    assert.equal(l.count(1, 100), undefined, 'soft is reported once');
    assert.equal(l.stageAt(0), 'soft');
    assert.equal(l.count(1, 400), 'hard');
    assert.equal(l.count(1, 400), undefined);
    assert.equal(l.stageAt(0), 'hard');
    assert.equal(l.bytes, 1900);
    assert.equal(l.packets, 5);
  });

  test('packets, and a hard limit reached before the soft one', () => {
    const l = new KeyLifetime({ soft: { packets: 10 }, hard: { bytes: 50 } }, 0);
    assert.equal(l.count(1, 60), 'hard');
    const p = new KeyLifetime({ soft: { packets: 3 } }, 0);
    p.count(1, 1);
    p.count(1, 1);
    assert.equal(p.count(1, 1), 'soft');
  });

  test('time: stages by age, deadlines for the owner timer', () => {
    const l = new KeyLifetime({ soft: { seconds: 10 }, hard: { seconds: 12 } }, 5000);
    assert.equal(l.nextDeadline(5000), 15000);
    assert.equal(l.stageAt(14999), 'fresh');
    assert.equal(l.stageAt(15000), 'soft');
    assert.equal(l.nextDeadline(15000), 17000);
    assert.equal(l.stageAt(17000), 'hard');
    assert.equal(l.nextDeadline(17000), undefined);
    const r = new KeyLifetime({ soft: { seconds: 10, bytes: 100 } }, 0).remaining(4000);
    assert.deepEqual(r.soft, { seconds: 6, bytes: 100, packets: undefined });
  });

  test('zero, negative and missing limits mean no limit', () => {
    const l = new KeyLifetime({ soft: { seconds: 0, bytes: -1 } }, 0);
    assert.ok(l.unlimited);
    assert.equal(l.count(1e6, 1e12), undefined);
    assert.equal(l.stageAt(1e12), 'fresh');
    assert.equal(l.nextDeadline(0), undefined);
    assert.ok(!new KeyLifetime({ hard: { packets: 1 } }, 0).unlimited);
  });

  test('jittered soft limits stay within [limit - jitter, limit] and at least 1', () => {
    assert.equal(jittered(100, 0), 100);
    assert.equal(jittered(undefined, 10), undefined);
    assert.equal(jittered(100, 10, () => 0), 100);
    assert.equal(jittered(100, 10, () => 0.999), 91);
    assert.equal(jittered(5, 100, () => 0.999), 2, 'never below 1: the jitter is capped at limit - 1');
  });
});
