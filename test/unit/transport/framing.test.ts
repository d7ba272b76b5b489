import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VpnError } from '../../../src/errors.js';
import { TcpFrameDecoder } from '../../../src/transport/tcp.js';
import { frame } from './servers.js';

function decodeAll(chunks: Buffer[], max = 65535) {
  const frames: Buffer[] = [];
  const errors: VpnError[] = [];
  const d = new TcpFrameDecoder(max, (f) => frames.push(Buffer.from(f)), (e) => errors.push(e));
  for (const c of chunks) d.push(c);
  return { frames, errors, d };
}

function splitAt(data: Buffer, cuts: number[]): Buffer[] {
  const pos = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of pos) {
    out.push(data.subarray(prev, p));
    prev = p;
  }
  out.push(data.subarray(prev));
  return out;
}

test('byte-at-a-time, header split, several frames per chunk', () => {
  const pkts = [Buffer.from('a'), Buffer.alloc(300, 7), Buffer.from('hello')];
  const data = frame(...pkts);
  const one = decodeAll([...data].map((b) => Buffer.from([b])));
  assert.deepEqual(one.frames, pkts);
  const whole = decodeAll([data]);
  assert.deepEqual(whole.frames, pkts);
  assert.equal(whole.d.pendingBytes, 0);
  const partial = decodeAll([data.subarray(0, 4)]);
  assert.deepEqual(partial.frames, [pkts[0]]);
  assert.equal(partial.d.pendingBytes, 1, 'one header byte of the next frame held');
});

test('frames wholly inside one chunk are views (no copy); split frames reuse one buffer', () => {
  const data = frame(Buffer.from('abc'), Buffer.from('defg'));
  const seen: Buffer[] = [];
  const d = new TcpFrameDecoder(100, (f) => seen.push(f), () => {});
  d.push(data);
  assert.equal(seen[0]!.buffer, data.buffer);
  assert.equal(seen[0]!.byteOffset, data.byteOffset + 2);
  const seen2: Buffer[] = [];
  const d2 = new TcpFrameDecoder(100, (f) => seen2.push(f), () => {});
  const two = frame(Buffer.from('xyz1'), Buffer.from('xyz2'));
  d2.push(two.subarray(0, 3));
  d2.push(two.subarray(3, 9));
  d2.push(two.subarray(9));
  assert.equal(seen2.length, 2);
  assert.equal(seen2[0]!.buffer, seen2[1]!.buffer, 'the split-frame buffer is reused');
  assert.equal(String(seen2[1]), 'xyz2');
});

test('zero-length and oversize frames are PROTOCOL errors and stop delivery', () => {
  const z = decodeAll([Buffer.concat([frame(Buffer.from('ok')), Buffer.from([0, 0]), frame(Buffer.from('no'))])]);
  assert.deepEqual(z.frames.map(String), ['ok']);
  assert.equal(z.errors.length, 1);
  assert.equal(z.errors[0]!.code, 'PROTOCOL');
  assert.match(z.errors[0]!.message, /zero-length/);
  const big = decodeAll([Buffer.from([0x48]), Buffer.from('TTP/1.1 200 OK')], 1600); // an HTTP server answering
  assert.equal(big.frames.length, 0);
  assert.equal(big.errors.length, 1);
  assert.match(big.errors[0]!.message, /packet length 18516 > 1600/);
});

test('stopped flag halts delivery mid-chunk', () => {
  const frames: string[] = [];
  const d: TcpFrameDecoder = new TcpFrameDecoder(100, (f) => {
    frames.push(String(f));
    d.stopped = true;
  }, () => {});
  d.push(frame(Buffer.from('1'), Buffer.from('2')));
  assert.deepEqual(frames, ['1']);
});

test('property: any split of any frame sequence decodes to the same packets', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 2000 }), { maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (pkts, cuts) => {
        const data = frame(...pkts);
        const { frames, errors } = decodeAll(splitAt(data, cuts), 2000);
        assert.equal(errors.length, 0);
        assert.deepEqual(frames.map((f) => new Uint8Array(f)), pkts);
      },
    ),
    { numRuns: 300 },
  );
});

test('property: random byte streams never throw, only report VpnError', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 10 }), (chunks) => {
      const { errors } = decodeAll(chunks.map((c) => Buffer.from(c)), 1000);
      assert.ok(errors.length <= 1);
      for (const e of errors) assert.ok(e instanceof VpnError);
    }),
  );
});
