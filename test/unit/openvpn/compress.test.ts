import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  COMP_BYTE,
  compressionPeerInfo,
  framingFor,
  isRealCompression,
  occHasCompLzo,
  resolveCompression,
} from '../../../src/openvpn/compress.js';
import { DataChannelKey, OCC_OP, PING_MAGIC, buildOccMessage, isPing, occOpcode } from '../../../src/openvpn/datachannel.js';
import { sliceKey2 } from '../../../src/openvpn/keys.js';
import type { CompressionSetting } from '../../../src/openvpn/profile-types.js';
import { VpnError, WireError } from '../../../src/errors.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const IP = hex('4500001c000100004001f7cf0a0000010a000002 0800f7ff00000000'); // IPv4 + ICMP echo

const SETTINGS: Record<string, CompressionSetting | undefined> = {
  none: undefined,
  'comp-lzo no': { kind: 'comp-lzo', mode: 'no' },
  'comp-lzo yes': { kind: 'comp-lzo', mode: 'yes' },
  'comp-lzo adaptive': { kind: 'comp-lzo', mode: 'adaptive' },
  'compress stub': { kind: 'compress', algo: 'stub' },
  'compress lz4': { kind: 'compress', algo: 'lz4' },
  'compress stub-v2': { kind: 'compress', algo: 'stub-v2' },
  'compress lz4-v2': { kind: 'compress', algo: 'lz4-v2' },
  'compress lzo': { kind: 'compress', algo: 'lzo' },
};

/** What the §4.8 table says an uncompressed packet looks like on send. */
function expectedSend(name: string, p: Buffer): Buffer {
  if (name === 'none') return p;
  if (name.startsWith('comp-lzo') || name === 'compress lzo') return Buffer.concat([hex('fa'), p]);
  if (name === 'compress stub' || name === 'compress lz4') return Buffer.concat([hex('fb'), p.subarray(1), p.subarray(0, 1)]);
  return p[0] === 0x50 ? Buffer.concat([hex('5000'), p]) : p;
}

describe('compression framing (§4.8)', () => {
  for (const [name, setting] of Object.entries(SETTINGS)) {
    test(`${name}: IP packet, ping and OCC are framed per the table and come back unchanged`, () => {
      const f = framingFor(setting);
      assert.equal(f.name, name === 'none' ? 'none' : name);
      for (const p of [IP, PING_MAGIC, buildOccMessage(OCC_OP.EXIT), hex('50 01 02 03'), hex('ab')]) {
        const framed = Buffer.from(f.frame(p));
        assert.deepEqual(framed, expectedSend(name, p), `send form of ${p.toString('hex')}`);
        assert.ok(framed.length <= p.length + f.overhead);
        assert.deepEqual(f.unframe(framed), p);
      }
      // ping and OCC are still recognised after unframing
      assert.ok(isPing(f.unframe(Buffer.from(f.frame(PING_MAGIC)))));
      assert.equal(occOpcode(f.unframe(Buffer.from(f.frame(buildOccMessage(OCC_OP.REQUEST))))), OCC_OP.REQUEST);
      // empty payloads pass through
      assert.equal(f.unframe(Buffer.alloc(0)).length, 0);
    });
  }

  test('never compresses: frame() output always contains the packet verbatim', () => {
    fc.assert(
      fc.property(fc.constantFrom(...Object.values(SETTINGS)), fc.uint8Array({ minLength: 1, maxLength: 1600 }), (s, p) => {
        const framed = Buffer.from(framingFor(s).frame(p));
        assert.ok(framed.length >= p.length);
        assert.ok(framed.includes(Buffer.from(p.subarray(1))));
      }),
      { numRuns: 300 },
    );
  });

  test('receive: header bytes outside the family are WireErrors', () => {
    const lzo = framingFor(SETTINGS['comp-lzo no']);
    assert.throws(() => lzo.unframe(hex('fb 45')), /unexpected header byte 0xfb/);
    assert.throws(() => lzo.unframe(IP), WireError); // 0x45 is not a framing byte
    const swap = framingFor(SETTINGS['compress stub']);
    assert.throws(() => swap.unframe(hex('fa 45 00')), /unexpected header byte 0xfa/);
    assert.throws(() => swap.unframe(hex('66 45 00')), WireError);
    const v2 = framingFor(SETTINGS['compress stub-v2']);
    assert.throws(() => v2.unframe(hex('50')), /without a method byte/);
    assert.throws(() => v2.unframe(hex('50 02 aa')), /method 2/);
    assert.deepEqual(v2.unframe(IP), IP); // raw
    assert.deepEqual(v2.unframe(hex('fa 45')), hex('fa 45')); // raw too: v2 has no prefix byte
  });

  test('receive: compressed forms decompress (lenient within the family)', () => {
    // LZO: 'abcd' + 4-byte match = 'abcdabcd'
    const lzoData = hex('66 15 61626364 6c 00 11 0000');
    for (const n of ['comp-lzo no', 'comp-lzo yes', 'compress lzo']) assert.equal(framingFor(SETTINGS[n]).unframe(lzoData).toString(), 'abcdabcd');
    // LZ4 block '12 61 0100 10 62' = 'aaaaaaab'; swap form moves its first byte to the end
    const lz4Swap = hex('69 61 0100 10 62 12');
    for (const n of ['compress stub', 'compress lz4']) assert.equal(framingFor(SETTINGS[n]).unframe(lz4Swap).toString(), 'aaaaaaab');
    const lz4v2 = hex('50 01 12 61 0100 10 62');
    for (const n of ['compress stub-v2', 'compress lz4-v2']) assert.equal(framingFor(SETTINGS[n]).unframe(lz4v2).toString(), 'aaaaaaab');
    // bad compressed data is a WireError too
    assert.throws(() => framingFor(SETTINGS['compress lz4']).unframe(hex('69 00 00 00 10')), WireError);
  });

  test('decompressed size is bounded', () => {
    // LZ4: 'a' then a match of 4+15+255*8+... long: ~3000 bytes of 'a'
    const block = Buffer.concat([hex('1f 61 0100'), Buffer.alloc(11, 255), hex('00 00')]);
    const f = framingFor(SETTINGS['compress lz4-v2']);
    assert.throws(() => f.unframe(Buffer.concat([hex('5001'), block])), /exceeds 2048 bytes/);
    const big = framingFor(SETTINGS['compress lz4-v2'], undefined, { maxDecompressed: 4096 });
    assert.equal(big.unframe(Buffer.concat([hex('5001'), block])).length, 1 + 4 + 15 + 255 * 11);
    assert.throws(() => framingFor(undefined, undefined, { maxDecompressed: 10 }), VpnError);
  });

  test('a decompressed result is not overwritten by the next packet', () => {
    const f = framingFor(SETTINGS['comp-lzo yes']);
    const a = f.unframe(hex('66 15 61626364 6c 00 11 0000'));
    f.unframe(hex('66 15 7778797a 6c 00 11 0000'));
    assert.equal(a.toString(), 'abcdabcd');
  });

  test('property: unframe of random bytes only raises WireError, output bounded', () => {
    fc.assert(
      fc.property(fc.constantFrom(...Object.values(SETTINGS)), fc.uint8Array({ maxLength: 2000 }), fc.boolean(), (s, p, prefix) => {
        const f = framingFor(s);
        const input = Buffer.from(p);
        if (prefix && input.length > 0) input[0] = [0x66, 0x69, 0x50, 0xfa, 0xfb][input.length % 5]!;
        try {
          assert.ok(f.unframe(input).length <= Math.max(f.maxDecompressed, input.length));
        } catch (e) {
          if (!(e instanceof WireError)) throw e;
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('packets captured from a real OpenVPN 2.6.14 peer', () => {
  interface Cap {
    label: string;
    wire: string;
  }
  const caps = (
    JSON.parse(readFileSync(new URL('../../fixtures/compress/openvpn-2.6.14-captures.json', import.meta.url), 'utf8')) as {
      packets: Cap[];
    }
  ).packets;
  const settingFor = (label: string): CompressionSetting => {
    const l = label.replace(/^.*\//, '');
    if (l === 'comp-lzo-yes') return { kind: 'comp-lzo', mode: 'yes' };
    return { kind: 'compress', algo: l.replace('compress-', '') as 'lzo' | 'lz4' | 'lz4-v2' };
  };
  const ipv4Ok = (b: Buffer) => {
    if (b.length < 20 || b[0] !== 0x45 || b.readUInt16BE(2) !== b.length) return false;
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += b.readUInt16BE(i);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    return sum === 0xffff;
  };

  test('covers LZO and LZ4 (v1 swap and v2) compressed packets', () => {
    for (const first of ['66', '69', '5001']) assert.ok(caps.some((c) => c.wire.slice(16).startsWith(first)), first);
  });
  for (const c of caps) {
    test(`${c.label} ${c.wire.slice(16, 20)}…`, () => {
      const wire = hex(c.wire);
      const f = framingFor(settingFor(c.label));
      const payload = f.unframe(wire.subarray(8)); // packet id + net time (long form) precede the payload
      if (c.label.startsWith('ping/')) assert.ok(isPing(payload));
      else if (c.label.startsWith('occ-request/')) assert.equal(occOpcode(payload), OCC_OP.REQUEST);
      else if (c.label.startsWith('occ-reply/')) {
        assert.equal(occOpcode(payload), OCC_OP.REPLY);
        const text = payload.subarray(17).toString('latin1');
        assert.match(text, /^V4,dev-type null,link-mtu \d+,tun-mtu 1500,proto UDPv4,comp-lzo,cipher \[null-cipher\],auth \[null-digest\],keysize 0,secret\0$/);
      } else {
        assert.ok(ipv4Ok(payload), `not an IPv4 packet: ${payload.subarray(0, 24).toString('hex')}`);
        assert.equal(payload[9], 1, 'ICMP');
        // the ICMP payload is ping -p 4f70656e56504e2d ("OpenVPN-") or zeros
        const body = payload.subarray(20 + 8 + 16);
        assert.ok(body.includes(Buffer.from('OpenVPN-')) || body.every((x) => x === 0));
      }
    });
  }
});

describe('pushed compression merge rule', () => {
  test('no push: the profile setting stays', () => {
    assert.equal(resolveCompression(undefined), undefined);
    assert.deepEqual(resolveCompression(SETTINGS['comp-lzo yes']), SETTINGS['comp-lzo yes']);
  });
  test('a pushed setting replaces the profile one', () => {
    assert.deepEqual(resolveCompression(undefined, { kind: 'comp-lzo', mode: 'no' }), { kind: 'comp-lzo', mode: 'no' });
    assert.deepEqual(resolveCompression(SETTINGS['comp-lzo yes'], { kind: 'compress', algo: 'stub-v2' }), { kind: 'compress', algo: 'stub-v2' });
    assert.equal(framingFor(undefined, { kind: 'compress', algo: 'stub-v2' }).family, 'v2');
    assert.equal(framingFor(SETTINGS['compress lz4'], { kind: 'comp-lzo', mode: 'no' }).family, 'lzo');
  });
  test('pushed real algorithms are accepted by default (we decompress, never compress)', () => {
    assert.deepEqual(resolveCompression(undefined, { kind: 'compress', algo: 'lz4-v2' }), { kind: 'compress', algo: 'lz4-v2' });
    assert.deepEqual(resolveCompression(undefined, { kind: 'comp-lzo', mode: 'adaptive' }), { kind: 'comp-lzo', mode: 'adaptive' });
  });
  test("refusePushedAlgorithms gives 2.6's refusal, stubs still pass", () => {
    const o = { refusePushedAlgorithms: true };
    assert.throws(() => resolveCompression(undefined, { kind: 'compress', algo: 'lz4' }, o), (e: unknown) => e instanceof VpnError && e.code === 'PROTOCOL' && /not allowed/.test(e.message));
    assert.throws(() => resolveCompression(SETTINGS['comp-lzo no'], { kind: 'comp-lzo', mode: 'yes' }, o), /not allowed/);
    assert.deepEqual(resolveCompression(undefined, { kind: 'compress', algo: 'stub' }, o), { kind: 'compress', algo: 'stub' });
    assert.deepEqual(resolveCompression(SETTINGS['comp-lzo yes'], { kind: 'compress', algo: 'lz4-v2' }, o), { kind: 'compress', algo: 'lz4-v2' });
  });
  test('unknown or server-only pushed algorithms are PROTOCOL errors', () => {
    assert.throws(() => resolveCompression(undefined, { kind: 'compress', algo: 'snappy' }), /compress snappy/);
    assert.throws(() => resolveCompression(undefined, { kind: 'compress', algo: 'migrate' }), VpnError);
    assert.deepEqual(resolveCompression(undefined, { kind: 'compress', algo: 'LZ4-V2' }), { kind: 'compress', algo: 'lz4-v2' });
  });
  test('profile `compress migrate` frames nothing', () => {
    assert.equal(framingFor({ kind: 'compress', algo: 'migrate' }).family, 'none');
  });
  test('peer-info and OCC helpers', () => {
    assert.deepEqual(compressionPeerInfo(undefined), ['IV_LZO_STUB=1', 'IV_COMP_STUB=1', 'IV_COMP_STUBv2=1']);
    assert.deepEqual(compressionPeerInfo(SETTINGS['comp-lzo no']), ['IV_LZO_STUB=1', 'IV_COMP_STUB=1', 'IV_COMP_STUBv2=1']);
    assert.ok(compressionPeerInfo(SETTINGS['compress lz4-v2']).includes('IV_LZ4v2=1'));
    assert.equal(isRealCompression(SETTINGS['compress stub-v2']), false);
    assert.equal(isRealCompression(SETTINGS['comp-lzo adaptive']), true);
    assert.equal(occHasCompLzo(undefined), false);
    assert.equal(occHasCompLzo(SETTINGS['compress stub-v2']), true);
  });
});

describe('framing inside DataChannelKey', () => {
  test('AEAD and CBC keys carry every framing; a compressed packet from the peer decrypts to the IP packet', () => {
    const key2 = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) key2[i] = (i * 7 + 1) & 255;
    for (const cipher of ['AES-256-GCM', 'AES-128-CBC']) {
      for (const setting of Object.values(SETTINGS)) {
        const ours = new DataChannelKey({ keyId: 1, cipher, auth: 'SHA256', keys: sliceKey2(key2, 'normal'), framing: framingFor(setting) });
        const theirs = new DataChannelKey({ keyId: 1, cipher, auth: 'SHA256', keys: sliceKey2(key2, 'inverse'), framing: framingFor(setting) });
        for (const p of [IP, PING_MAGIC, buildOccMessage(OCC_OP.EXIT)]) assert.deepEqual(theirs.decrypt(ours.encrypt(p)), p);
      }
      // the server (identity framing on its side, so we hand-frame) sends LZ4-v2 compressed data
      const server = new DataChannelKey({ keyId: 0, cipher, auth: 'SHA256', keys: sliceKey2(key2, 'inverse') });
      const client = new DataChannelKey({ keyId: 0, cipher, auth: 'SHA256', keys: sliceKey2(key2, 'normal'), framing: framingFor(SETTINGS['compress lz4-v2']) });
      assert.equal(client.decrypt(server.encrypt(hex('5001 12 61 0100 10 62'))).toString(), 'aaaaaaab');
    }
  });
});
