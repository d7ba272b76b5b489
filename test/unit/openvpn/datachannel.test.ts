import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { VpnError, WireError } from '../../../src/errors.js';
import {
  buildOccMessage,
  DataChannelError,
  DataChannelKey,
  dataPacketKeyId,
  isOccExit,
  isPing,
  OCC_MAGIC,
  OCC_OP,
  occOpcode,
  packetOpcode,
  PING_MAGIC,
} from '../../../src/openvpn/datachannel.js';
import type { DataChannelKeyOptions, PayloadFraming } from '../../../src/openvpn/datachannel.js';
import { sliceKey2 } from '../../../src/openvpn/keys.js';

const KEY2 = Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 7 + 3) & 0xff));
const clientKeys = sliceKey2(KEY2, 'normal');
const serverKeys = sliceKey2(KEY2, 'inverse');
const K = (from: number, len: number) => KEY2.subarray(from, from + len);
const IP = Buffer.from('450000281234400040060000c0a80001c0a80002', 'hex');

function pair(cipher: string, auth: string, extra: Partial<DataChannelKeyOptions> = {}) {
  const client = new DataChannelKey({ keyId: 1, cipher, auth, keys: clientKeys, ...extra });
  const server = new DataChannelKey({ keyId: 1, cipher, auth, keys: serverKeys, ...extra });
  return { client, server };
}

function dropReason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof DataChannelError) return e.reason;
    throw e;
  }
  return 'none';
}

describe('AEAD layout (by hand with createCipheriv)', () => {
  test('P_DATA_V2: header, packet id, tag before ciphertext, AD = header || pid, nonce = pid || K[64..72)', () => {
    const k = new DataChannelKey({ keyId: 2, cipher: 'AES-256-GCM', auth: 'SHA1', keys: clientKeys, peerId: 0x010203 });
    const w = k.encrypt(IP);
    assert.equal(w.length, 4 + 4 + 16 + IP.length);
    assert.deepEqual(w.subarray(0, 4), Buffer.from([0x48 | 2, 0x01, 0x02, 0x03]));
    assert.equal(w.readUInt32BE(4), 1, 'first packet id is 1');
    const nonce = Buffer.concat([w.subarray(4, 8), K(64, 8)]);
    const d = createDecipheriv('aes-256-gcm', K(0, 32), nonce, { authTagLength: 16 });
    d.setAAD(w.subarray(0, 8));
    d.setAuthTag(w.subarray(8, 24));
    assert.deepEqual(Buffer.concat([d.update(w.subarray(24)), d.final()]), IP);
    assert.equal(k.encrypt(IP).readUInt32BE(4), 2);
    assert.equal(k.sendPacketId, 2);
  });

  test('P_DATA_V1: one-byte header, AD = packet id only', () => {
    const k = new DataChannelKey({ keyId: 0, cipher: 'AES-128-GCM', auth: 'SHA1', keys: clientKeys });
    const w = k.encrypt(IP);
    assert.equal(w[0], 0x30);
    assert.equal(w.length, 1 + 4 + 16 + IP.length);
    const d = createDecipheriv('aes-128-gcm', K(0, 16), Buffer.concat([w.subarray(1, 5), K(64, 8)]), { authTagLength: 16 });
    d.setAAD(w.subarray(1, 5));
    d.setAuthTag(w.subarray(5, 21));
    assert.deepEqual(Buffer.concat([d.update(w.subarray(21)), d.final()]), IP);
  });

  test('CHACHA20-POLY1305 uses the same layout', () => {
    const k = new DataChannelKey({ keyId: 0, cipher: 'CHACHA20-POLY1305', keys: clientKeys, peerId: 7 });
    const w = k.encrypt(IP);
    const d = createDecipheriv('chacha20-poly1305', K(0, 32), Buffer.concat([w.subarray(4, 8), K(64, 8)]), { authTagLength: 16 });
    d.setAAD(w.subarray(0, 8), { plaintextLength: w.length - 24 });
    d.setAuthTag(w.subarray(8, 24));
    assert.deepEqual(Buffer.concat([d.update(w.subarray(24)), d.final()]), IP);
  });

  test('decrypts a server packet built by hand (openvpn3 sample header 48000001 00000005), V2 and V1', () => {
    const k = new DataChannelKey({ keyId: 0, cipher: 'AES-256-GCM', keys: clientKeys });
    const hdr = Buffer.from('4800000100000005', 'hex');
    const c = createCipheriv('aes-256-gcm', K(128, 32), Buffer.concat([hdr.subarray(4), K(192, 8)]), { authTagLength: 16 });
    c.setAAD(hdr);
    const ct = Buffer.concat([c.update(IP), c.final()]);
    const wire = Buffer.concat([hdr, c.getAuthTag(), ct]);
    assert.equal(dataPacketKeyId(wire), 0);
    assert.deepEqual(k.decrypt(wire), IP);
    // the peer-id is not checked, but it is authenticated: changing it breaks the tag
    const other = Buffer.from(wire);
    other[3] = 2;
    assert.equal(dropReason(() => k.decrypt(other)), 'auth');
    // V1 from the server although we would send V1 too
    const c1 = createCipheriv('aes-256-gcm', K(128, 32), Buffer.concat([Buffer.from('00000006', 'hex'), K(192, 8)]), { authTagLength: 16 });
    c1.setAAD(Buffer.from('00000006', 'hex'));
    const ct1 = Buffer.concat([c1.update(PING_MAGIC), c1.final()]);
    const w1 = Buffer.concat([Buffer.from([0x30, 0, 0, 0, 6]), c1.getAuthTag(), ct1]);
    assert.ok(isPing(k.decrypt(w1)));
  });
});

describe('CBC + HMAC layout (§4.3)', () => {
  test('[hdr][HMAC(IV||ct)][IV][CBC(pid || payload)], client keys K[0..], K[64..]', () => {
    const k = new DataChannelKey({ keyId: 3, cipher: 'AES-256-CBC', auth: 'SHA512', keys: clientKeys, peerId: 5 });
    const w = k.encrypt(IP);
    const hl = 4;
    const h = 64;
    assert.deepEqual(w.subarray(0, 4), Buffer.from([0x48 | 3, 0, 0, 5]));
    assert.equal((w.length - hl - h - 16) % 16, 0);
    assert.deepEqual(w.subarray(hl, hl + h), createHmac('sha512', K(64, 64)).update(w.subarray(hl + h)).digest());
    const iv = w.subarray(hl + h, hl + h + 16);
    const d = createDecipheriv('aes-256-cbc', K(0, 32), iv);
    const pt = Buffer.concat([d.update(w.subarray(hl + h + 16)), d.final()]);
    assert.equal(pt.readUInt32BE(0), 1);
    assert.deepEqual(pt.subarray(4), IP);
    const w2 = k.encrypt(IP);
    assert.notDeepEqual(w2.subarray(hl + h, hl + h + 16), iv, 'fresh IV per packet');
  });

  test('decrypts a hand-built server packet (AES-128-CBC/SHA1, V1)', () => {
    const k = new DataChannelKey({ keyId: 0, cipher: 'AES-128-CBC', auth: 'SHA1', keys: clientKeys });
    const iv = randomBytes(16);
    const c = createCipheriv('aes-128-cbc', K(128, 16), iv);
    const ct = Buffer.concat([c.update(Buffer.from([0, 0, 0, 9])), c.update(IP), c.final()]);
    const mac = createHmac('sha1', K(192, 20)).update(iv).update(ct).digest();
    const wire = Buffer.concat([Buffer.from([0x30]), mac, iv, ct]);
    assert.deepEqual(k.decrypt(wire), IP);
    assert.equal(k.replay.highest, 9);
    assert.equal(dropReason(() => k.decrypt(wire)), 'replay');
  });

  test('wrong --auth digest on one side fails authentication', () => {
    const a = new DataChannelKey({ keyId: 0, cipher: 'AES-256-CBC', auth: 'SHA1', keys: clientKeys });
    const b = new DataChannelKey({ keyId: 0, cipher: 'AES-256-CBC', auth: 'SHA256', keys: serverKeys });
    assert.equal(dropReason(() => b.decrypt(a.encrypt(IP))), 'auth');
    assert.equal(b.stats.dropAuth, 1);
  });
});

describe('cipher none (§4.4)', () => {
  test('with auth: [hdr][HMAC(pid||payload)][pid][payload]', () => {
    const k = new DataChannelKey({ keyId: 0, cipher: 'none', auth: 'SHA256', keys: clientKeys });
    const w = k.encrypt(IP);
    assert.equal(w.length, 1 + 32 + 4 + IP.length);
    assert.equal(w.readUInt32BE(33), 1);
    assert.deepEqual(w.subarray(37), IP);
    assert.deepEqual(w.subarray(1, 33), createHmac('sha256', K(64, 32)).update(w.subarray(33)).digest());
  });
  test('without auth: [hdr][pid][payload]', () => {
    const { client, server } = pair('none', 'none', { peerId: 1 });
    const w = client.encrypt(IP);
    assert.deepEqual(w.subarray(0, 8), Buffer.from([0x49, 0, 0, 1, 0, 0, 0, 1]));
    assert.deepEqual(w.subarray(8), IP);
    assert.deepEqual(server.decrypt(w), IP);
  });
});

describe('round trips client <-> server for every cipher', () => {
  const combos: [string, string][] = [
    ['AES-128-GCM', 'SHA1'],
    ['AES-192-GCM', 'SHA1'],
    ['AES-256-GCM', 'SHA1'],
    ['CHACHA20-POLY1305', 'SHA1'],
    ['AES-128-CBC', 'SHA1'],
    ['AES-192-CBC', 'SHA256'],
    ['AES-256-CBC', 'SHA384'],
    ['AES-256-CBC', 'SHA512'],
    ['none', 'SHA1'],
    ['none', 'none'],
  ];
  for (const [cipher, auth] of combos) {
    for (const peerId of [undefined, 0]) {
      test(`${cipher}/${auth} ${peerId === undefined ? 'V1' : 'V2'}`, () => {
        const { client, server } = pair(cipher, auth, peerId === undefined ? {} : { peerId });
        for (const len of [1, 15, 16, 17, 100, 1400]) {
          const p = randomBytes(len);
          const w = client.encrypt(p);
          assert.equal(w[0]! >>> 3, peerId === undefined ? 6 : 9);
          assert.ok(w.length <= len + client.overhead, 'overhead is an upper bound');
          assert.deepEqual(server.decrypt(w), p);
          assert.deepEqual(client.decrypt(server.encrypt(p)), p);
        }
        assert.equal(client.stats.packetsOut, 6);
        assert.equal(server.stats.packetsIn, 6);
        if (cipher !== 'none' || auth !== 'none') {
          const w = client.encrypt(IP);
          const t = Buffer.from(w);
          t[t.length - 1]! ^= 1;
          assert.equal(dropReason(() => server.decrypt(t)), 'auth');
        }
      });
    }
  }
});

describe('receive checks', () => {
  test('replay: duplicate rejected; window is updated only after authentication', () => {
    const { client, server } = pair('AES-256-GCM', 'SHA1', { peerId: 0 });
    const w1 = client.encrypt(IP);
    const w2 = client.encrypt(IP);
    assert.deepEqual(server.decrypt(w2), IP);
    assert.deepEqual(server.decrypt(w1), IP, 'out of order within the window');
    assert.equal(dropReason(() => server.decrypt(w1)), 'replay');
    // forged packet with a huge packet id and a bad tag: must not slide the window
    const forged = Buffer.from(client.encrypt(IP));
    forged.writeUInt32BE(1_000_000, 4);
    assert.equal(dropReason(() => server.decrypt(forged)), 'auth');
    assert.equal(server.replay.highest, 2);
    const w3 = client.encrypt(IP);
    assert.deepEqual(server.decrypt(w3), IP);
    assert.equal(server.stats.dropReplay, 1);
    assert.equal(server.stats.dropAuth, 1);
  });

  test('packets older than the window are rejected', () => {
    const { client, server } = pair('AES-128-GCM', 'SHA1', { replayWindow: 32 });
    const first = client.encrypt(IP);
    for (let i = 0; i < 40; i++) server.decrypt(client.encrypt(IP));
    assert.equal(dropReason(() => server.decrypt(first)), 'replay');
  });

  test('packet id 0 is rejected (none/none lets us forge it)', () => {
    const { server } = pair('none', 'none');
    assert.equal(dropReason(() => server.decrypt(Buffer.from([0x31, 0, 0, 0, 0, 1, 2]))), 'replay');
    assert.deepEqual(server.decrypt(Buffer.from([0x31, 0, 0, 0, 1, 1, 2])), Buffer.from([1, 2]));
  });

  test('wrong key id, wrong opcode, short packets', () => {
    const { client } = pair('AES-256-GCM', 'SHA1');
    const other = new DataChannelKey({ keyId: 2, cipher: 'AES-256-GCM', keys: serverKeys });
    assert.equal(dropReason(() => other.decrypt(client.encrypt(IP))), 'key-id');
    assert.equal(dropReason(() => other.decrypt(Buffer.from([0x20 | 2, 1, 2, 3]))), 'opcode');
    assert.equal(dropReason(() => other.decrypt(Buffer.alloc(0))), 'short');
    // AEAD needs at least one ciphertext byte
    assert.equal(dropReason(() => other.decrypt(Buffer.concat([Buffer.from([0x4a, 0, 0, 0]), Buffer.alloc(20)]))), 'short');
    const cbc = new DataChannelKey({ keyId: 0, cipher: 'AES-128-CBC', keys: serverKeys });
    assert.equal(dropReason(() => cbc.decrypt(Buffer.alloc(1 + 20 + 16 + 15, 0x30))), 'short');
    assert.equal(dropReason(() => cbc.decrypt(Buffer.alloc(1 + 20 + 16 + 17, 0x30))), 'auth', 'HMAC checked before block alignment');
    assert.equal(dropReason(() => cbc.decrypt(Buffer.alloc(1 + 20 + 16, 0x30))), 'short');
    assert.equal(other.stats.dropKeyId, 1);
    assert.equal(other.stats.dropOpcode, 1);
    assert.equal(other.stats.dropShort, 2);
  });

  test('helpers: packetOpcode, dataPacketKeyId', () => {
    assert.equal(packetOpcode(Buffer.from([0x4b])), 9);
    assert.equal(dataPacketKeyId(Buffer.from([0x4b])), 3);
    assert.equal(dataPacketKeyId(Buffer.from([0x35])), 5);
    assert.equal(dataPacketKeyId(Buffer.from([0x20])), -1);
    assert.equal(dataPacketKeyId(Buffer.alloc(0)), -1);
  });
});

describe('send side', () => {
  test('packet id exhaustion and the wrap trigger', () => {
    const { client } = pair('AES-128-GCM', 'SHA1');
    assert.equal(client.wantsRenegotiation, false);
    Reflect.set(client, 'sendId', 0xfefffffe);
    client.encrypt(IP);
    assert.equal(client.wantsRenegotiation, false);
    client.encrypt(IP);
    assert.equal(client.wantsRenegotiation, true);
    Reflect.set(client, 'sendId', 0xfffffffe);
    assert.equal(client.encrypt(IP).readUInt32BE(1), 0xffffffff);
    assert.throws(() => client.encrypt(IP), (e: unknown) => e instanceof VpnError && e.code === 'PROTOCOL');
  });
  test('empty payloads and bad options are refused', () => {
    const { client } = pair('AES-128-GCM', 'SHA1');
    assert.throws(() => client.encrypt(Buffer.alloc(0)), VpnError);
    assert.throws(() => new DataChannelKey({ keyId: 8, cipher: 'AES-128-GCM', keys: clientKeys }), VpnError);
    assert.throws(() => new DataChannelKey({ keyId: 0, cipher: 'AES-128-GCM', keys: clientKeys, peerId: 0x1000000 }), VpnError);
    assert.throws(() => new DataChannelKey({ keyId: 0, cipher: 'BF-CBC', keys: clientKeys }), VpnError);
    assert.throws(() => new DataChannelKey({ keyId: 0, cipher: 'AES-128-CBC', auth: 'MD4', keys: clientKeys }), VpnError);
    const zero = sliceKey2(Buffer.alloc(256));
    assert.throws(() => new DataChannelKey({ keyId: 0, cipher: 'AES-128-GCM', keys: zero }), VpnError);
  });
  test('V2 header carries the peer-id 0xFFFFFF', () => {
    const k = new DataChannelKey({ keyId: 7, cipher: 'AES-128-GCM', keys: clientKeys, peerId: 0xffffff });
    assert.deepEqual(k.encrypt(IP).subarray(0, 4), Buffer.from([0x4f, 0xff, 0xff, 0xff]));
  });
});

describe('magic payloads and framing hook', () => {
  test('ping and OCC constants and detection', () => {
    assert.equal(PING_MAGIC.toString('hex'), '2a187bf3641eb4cb07ed2d0a981fc748');
    assert.equal(OCC_MAGIC.toString('hex'), '287f346bd4ef7a812d56b8d3afc5459c');
    assert.ok(isPing(PING_MAGIC));
    assert.ok(!isPing(Buffer.concat([PING_MAGIC, Buffer.from([0])])));
    assert.ok(!isPing(IP.subarray(0, 16)));
    const exit = buildOccMessage(OCC_OP.EXIT);
    assert.equal(exit.length, 17);
    assert.ok(isOccExit(exit));
    assert.equal(occOpcode(buildOccMessage(OCC_OP.REPLY, Buffer.from('V4\0'))), 1);
    assert.equal(occOpcode(OCC_MAGIC), -1);
    assert.equal(occOpcode(PING_MAGIC), -1);
  });

  test('OCC EXIT and ping survive the data channel', () => {
    const { client, server } = pair('AES-256-GCM', 'SHA1');
    assert.ok(isOccExit(client.decrypt(server.encrypt(buildOccMessage(OCC_OP.EXIT)))));
    assert.ok(isPing(client.decrypt(server.encrypt(PING_MAGIC))));
  });

  test('framing is applied inside the encryption, to pings too, and undone on receive', () => {
    const fa: PayloadFraming = {
      name: 'comp-lzo-no',
      overhead: 1,
      frame: (p) => {
        const o = Buffer.allocUnsafe(p.length + 1);
        o[0] = 0xfa;
        o.set(p, 1);
        return o;
      },
      unframe: (p) => {
        if (p[0] !== 0xfa) throw new WireError('bad framing byte', 'comp', 0);
        return p.subarray(1);
      },
    };
    const { client, server } = pair('AES-128-GCM', 'SHA1', { framing: fa });
    const w = client.encrypt(PING_MAGIC);
    assert.equal(w.length, 1 + 4 + 16 + 17);
    const d = createDecipheriv('aes-128-gcm', K(0, 16), Buffer.concat([w.subarray(1, 5), K(64, 8)]), { authTagLength: 16 });
    d.setAAD(w.subarray(1, 5));
    d.setAuthTag(w.subarray(5, 21));
    assert.deepEqual(Buffer.concat([d.update(w.subarray(21)), d.final()]), Buffer.concat([Buffer.from([0xfa]), PING_MAGIC]));
    assert.ok(isPing(server.decrypt(w)));
    const plainClient = new DataChannelKey({ keyId: 1, cipher: 'AES-128-GCM', keys: clientKeys });
    const framedServer = new DataChannelKey({ keyId: 1, cipher: 'AES-128-GCM', keys: serverKeys, framing: fa });
    assert.throws(() => framedServer.decrypt(plainClient.encrypt(IP)), WireError);
  });
});

describe('property: decrypt of random or mutated bytes throws only DataChannelError', () => {
  for (const [cipher, auth] of [
    ['AES-256-GCM', 'SHA1'],
    ['CHACHA20-POLY1305', 'SHA1'],
    ['AES-256-CBC', 'SHA256'],
    ['none', 'SHA1'],
    ['none', 'none'],
  ] as const) {
    test(`${cipher}/${auth}`, () => {
      const { client, server } = pair(cipher, auth, { peerId: 3 });
      const valid = client.encrypt(IP);
      fc.assert(
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
            fc.uint8Array({ minLength: 1, maxLength: 200 }).map((a) => {
              const b = Buffer.from(a);
              b[0] = 0x49; // V2, key id 1
              return b;
            }),
            fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.nat({ max: 30 })).map(([pos, x, cut]) => {
              const b = Buffer.from(valid);
              b[pos % b.length]! ^= x;
              return b.subarray(0, b.length - (cut % b.length));
            }),
          ),
          (buf) => {
            try {
              server.decrypt(buf);
            } catch (e) {
              if (!(e instanceof DataChannelError)) throw e;
            }
          },
        ),
        { numRuns: 500 },
      );
    });
  }
});
