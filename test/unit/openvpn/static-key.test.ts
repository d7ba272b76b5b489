import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, createHmac } from 'node:crypto';
import fc from 'fast-check';
import {
  LongFormReplay,
  StaticKeyChannel,
  occResponse,
  p2pOccOptionsString,
  staticKeyChannelFromProfile,
} from '../../../src/openvpn/static-key.js';
import { framingFor } from '../../../src/openvpn/compress.js';
import { DataChannelError, OCC_OP, PING_MAGIC, buildOccMessage, isPing, occOpcode } from '../../../src/openvpn/datachannel.js';
import { StaticKey, formatStaticKey } from '../../../src/openvpn/keyfile.js';
import { parseProfile } from '../../../src/openvpn/profile.js';
import { ManualClock } from '../../../src/util/clock.js';
import { VpnError, WireError } from '../../../src/errors.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const KEY_BYTES = new Uint8Array(256).map((_, i) => (i * 13 + 5) & 255);
const KEY = new StaticKey(KEY_BYTES);
const IP = hex('4500001c000100004001f7cf0a0000010a000002 0800f7ff00000000');
const clock = () => new ManualClock(0, 1_764_150_000);

function pair(cipher: string, auth: string, a: 0 | 1 | undefined, b: 0 | 1 | undefined) {
  const mk = (direction: 0 | 1 | undefined) => new StaticKeyChannel({ mode: 'static-key', key: KEY, direction, cipher, auth, clock: clock() });
  return [mk(a), mk(b)] as const;
}

describe('static-key data channel (§7)', () => {
  test('CBC + HMAC byte layout: [HMAC(IV||ct)] [IV] [CBC(pid || net_time || payload)], direction 1 uses keys[1] to send', () => {
    const c = new StaticKeyChannel({ mode: 'static-key', key: KEY, direction: 1, cipher: 'AES-256-CBC', auth: 'SHA256', clock: clock() });
    const wire = c.encrypt(IP);
    const hmacKey = Buffer.from(KEY_BYTES.subarray(192, 224));
    const encKey = Buffer.from(KEY_BYTES.subarray(128, 160));
    assert.deepEqual(wire.subarray(0, 32), createHmac('sha256', hmacKey).update(wire.subarray(32)).digest());
    const d = createDecipheriv('aes-256-cbc', encKey, wire.subarray(32, 48));
    const pt = Buffer.concat([d.update(wire.subarray(48)), d.final()]);
    assert.equal(pt.readUInt32BE(0), 1); // first packet id is 1
    assert.equal(pt.readUInt32BE(4), 1_764_150_000); // net_time
    assert.deepEqual(pt.subarray(8), IP);
    assert.equal((wire.length - 48) % 16, 0);
    assert.ok(wire.length <= IP.length + c.overhead);
    assert.equal(c.encrypt(IP).length, wire.length);
    assert.equal(c.sendPacketId, 2);
  });

  test('cipher none + auth none matches packets from a real OpenVPN 2.6.14 peer (comp-lzo framing)', () => {
    const framing = framingFor({ kind: 'comp-lzo', mode: 'yes' });
    const c = new StaticKeyChannel({ mode: 'static-key', key: KEY, cipher: 'none', auth: 'none', framing, clock: new ManualClock(0, 0x6b0814ec) });
    // captured: packet id 2, net_time 0x6b0814ec, 0xFA, ping magic
    const real = hex('000000026b0814ecfa2a187bf3641eb4cb07ed2d0a981fc748');
    assert.ok(isPing(c.decrypt(real)));
    assert.deepEqual(c.encrypt(PING_MAGIC), hex('000000016b0814ecfa2a187bf3641eb4cb07ed2d0a981fc748'));
    const occReq = c.decrypt(hex('0000000b6b0814ecfa287f346bd4ef7a812d56b8d3afc5459c00'));
    assert.equal(occOpcode(occReq), OCC_OP.REQUEST);
  });

  test('cipher none + HMAC: [HMAC(pid||time||payload)] [pid] [time] [payload]', () => {
    const c = new StaticKeyChannel({ mode: 'static-key', key: KEY, cipher: 'none', auth: 'SHA1', clock: clock() });
    const wire = c.encrypt(IP);
    assert.deepEqual(wire.subarray(0, 20), createHmac('sha1', Buffer.from(KEY_BYTES.subarray(64, 84))).update(wire.subarray(20)).digest());
    assert.deepEqual(wire.subarray(20, 24), hex('00000001'));
    assert.deepEqual(wire.subarray(28), IP);
  });

  for (const [cipher, auth] of [
    ['AES-128-CBC', 'SHA1'],
    ['AES-192-CBC', 'SHA256'],
    ['AES-256-CBC', 'SHA512'],
    ['AES-256-CBC', 'none'],
    ['none', 'SHA256'],
  ] as const) {
    test(`${cipher}/${auth}: directions 0<->1 and none<->none talk; 0<->0 does not`, () => {
      for (const [a, b] of [[0, 1], [1, 0], [undefined, undefined]] as const) {
        const [x, y] = pair(cipher, auth, a, b);
        for (const p of [IP, PING_MAGIC, buildOccMessage(OCC_OP.EXIT)]) {
          assert.deepEqual(y.decrypt(x.encrypt(p)), p);
          assert.deepEqual(x.decrypt(y.encrypt(p)), p);
        }
      }
      if (auth !== 'none') {
        const [x, y] = pair(cipher, auth, 0, 0);
        assert.throws(() => y.decrypt(x.encrypt(IP)), (e: unknown) => e instanceof DataChannelError && e.reason === 'auth');
        assert.equal(y.stats.dropAuth, 1);
      }
    });
  }

  test('tampering, truncation and replays are dropped and counted, never delivered', () => {
    const [x, y] = pair('AES-256-CBC', 'SHA256', 0, 1);
    const w = x.encrypt(IP);
    const t = Buffer.from(w);
    t[40] ^= 1;
    assert.throws(() => y.decrypt(t), (e: unknown) => e instanceof DataChannelError && e.reason === 'auth');
    assert.throws(() => y.decrypt(w.subarray(0, 50)), (e: unknown) => e instanceof DataChannelError && e.reason === 'short');
    assert.deepEqual(y.decrypt(w), IP);
    assert.throws(() => y.decrypt(w), (e: unknown) => e instanceof DataChannelError && e.reason === 'replay');
    assert.deepEqual(y.stats, { ...y.stats, packetsIn: 1, dropAuth: 1, dropShort: 1, dropReplay: 1 });
  });

  test('long-form replay: reordering within the window, a restarted peer (newer net_time) is accepted, older time is not', () => {
    const r = new LongFormReplay(64);
    assert.equal(r.accept(0, 100), 'invalid');
    assert.equal(r.accept(5, 100), 'ok');
    assert.equal(r.accept(3, 100), 'ok');
    assert.equal(r.accept(3, 100), 'duplicate');
    assert.equal(r.accept(1000, 100), 'ok');
    assert.equal(r.accept(5, 100), 'too-old');
    assert.equal(r.accept(1, 101), 'ok'); // peer restarted: ids start over with a newer time
    assert.equal(r.currentTime, 101);
    assert.equal(r.accept(1001, 100), 'time-backtrack');
    assert.equal(r.accept(1, 101), 'duplicate');

    // the same through two channels: the sender restarts one second later
    const rx = new StaticKeyChannel({ mode: 'static-key', key: KEY, direction: 1, cipher: 'AES-128-CBC', clock: clock() });
    const c1 = clock();
    const tx1 = new StaticKeyChannel({ mode: 'static-key', key: KEY, direction: 0, cipher: 'AES-128-CBC', clock: c1 });
    const old = tx1.encrypt(IP);
    assert.deepEqual(rx.decrypt(tx1.encrypt(IP)), IP);
    c1.advance(1000);
    const tx2 = new StaticKeyChannel({ mode: 'static-key', key: KEY, direction: 0, cipher: 'AES-128-CBC', clock: c1 });
    assert.deepEqual(rx.decrypt(tx2.encrypt(IP)), IP);
    assert.throws(() => rx.decrypt(old), /time-backtrack/);
  });

  test('unsupported configurations fail with clear errors', () => {
    const mk = (o: { cipher?: string; auth?: string; key?: StaticKey }) => () => new StaticKeyChannel({ mode: 'static-key', key: KEY, ...o });
    assert.throws(mk({}), (e: unknown) => e instanceof VpnError && e.code === 'PROFILE_UNSUPPORTED' && /BF-CBC.*default.*cipher AES-256-CBC/.test(e.message));
    assert.throws(mk({ cipher: 'bf-cbc' }), /BF-CBC is not supported/);
    assert.throws(mk({ cipher: 'AES-256-GCM' }), /AES-256-GCM cannot be used with a static key/);
    assert.throws(mk({ cipher: 'CHACHA20-POLY1305' }), /AEAD/);
    assert.throws(mk({ cipher: 'DES-EDE3-CBC' }), (e: unknown) => e instanceof VpnError && e.code === 'PROFILE_UNSUPPORTED');
    assert.throws(mk({ cipher: 'AES-256-CBC', auth: 'MD5' }), (e: unknown) => e instanceof VpnError && e.code === 'PROFILE_UNSUPPORTED');
    assert.throws(() => new StaticKeyChannel({ mode: 'static-key', cipher: 'AES-256-CBC' }), /needs a `secret` key/);
    assert.throws(() => new StaticKeyChannel({ mode: 'static-key', key: new StaticKey(new Uint8Array(256)), cipher: 'AES-256-CBC' }), /all zero/);
  });

  test('property: random and mutated packets only raise DataChannelError/WireError', () => {
    const [x, y] = pair('AES-256-CBC', 'SHA256', 0, 1);
    const framing = framingFor({ kind: 'compress', algo: 'lz4-v2' });
    const plain = new StaticKeyChannel({ mode: 'static-key', key: KEY, cipher: 'none', auth: 'none', framing });
    const good = x.encrypt(IP);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (rnd, pos, val) => {
        const m = Buffer.from(good);
        m[pos % m.length] = val;
        for (const [ch, w] of [[y, Buffer.from(rnd)], [y, m], [plain, Buffer.from(rnd)]] as const) {
          try {
            ch.decrypt(w);
          } catch (e) {
            if (!(e instanceof DataChannelError) && !(e instanceof WireError)) throw e;
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('plaintext p2p', () => {
  test('the wire packet is the framed payload (as OpenVPN 2.6.14 with neither TLS nor secret sends its pings)', () => {
    const c = new StaticKeyChannel({ mode: 'p2p-plain' });
    const real = hex('2a187bf3641eb4cb07ed2d0a981fc748');
    assert.ok(isPing(c.decrypt(real)));
    assert.deepEqual(c.encrypt(PING_MAGIC), real);
    assert.equal(c.overhead, 0);
    const framed = new StaticKeyChannel({ mode: 'p2p-plain', framing: framingFor({ kind: 'comp-lzo', mode: 'no' }) });
    assert.deepEqual(framed.encrypt(IP), Buffer.concat([hex('fa'), IP]));
    assert.deepEqual(framed.decrypt(Buffer.concat([hex('fa'), IP])), IP);
    assert.throws(() => c.decrypt(Buffer.alloc(0)), (e: unknown) => e instanceof DataChannelError && e.reason === 'short');
  });
});

describe('OCC and profiles', () => {
  test('options strings match what OpenVPN 2.6.14 sends', () => {
    assert.equal(p2pOccOptionsString({ mode: 'p2p-plain', devType: 'null' }), 'V4,dev-type null,link-mtu 1500,tun-mtu 1500,proto UDPv4');
    assert.equal(
      p2pOccOptionsString({ mode: 'static-key', devType: 'null', linkMtu: 1509, compLzo: true, cipher: 'none', auth: 'none' }),
      'V4,dev-type null,link-mtu 1509,tun-mtu 1500,proto UDPv4,comp-lzo,cipher [null-cipher],auth [null-digest],keysize 0,secret',
    );
    assert.match(p2pOccOptionsString({ mode: 'static-key', direction: 1, cipher: 'aes-256-cbc', auth: 'sha256' }), /,keydir 1,cipher AES-256-CBC,auth SHA256,keysize 256,secret$/);
  });

  test('occResponse answers a request only', () => {
    const r = occResponse(buildOccMessage(OCC_OP.REQUEST), 'V4,x');
    assert.ok(r);
    assert.equal(occOpcode(r), OCC_OP.REPLY);
    assert.equal(r.subarray(17).toString('latin1'), 'V4,x\0');
    assert.equal(occResponse(PING_MAGIC, 'V4'), null);
    assert.equal(occResponse(buildOccMessage(OCC_OP.EXIT), 'V4'), null);
  });

  test('staticKeyChannelFromProfile uses secret, key-direction, cipher and auth from a parsed profile', () => {
    const text = `dev tun\nremote 127.0.0.1 1194\nifconfig 10.8.0.2 10.8.0.1\ncipher AES-256-CBC\nauth SHA512\nkey-direction 1\n<secret>\n${formatStaticKey(KEY_BYTES)}</secret>\n`;
    const { profile } = parseProfile(text);
    assert.equal(profile.mode, 'static-key');
    const ours = staticKeyChannelFromProfile(profile);
    assert.equal(ours.cipherName, 'AES-256-CBC');
    assert.equal(ours.authName, 'SHA512');
    const peer = new StaticKeyChannel({ mode: 'static-key', key: KEY, direction: 0, cipher: 'AES-256-CBC', auth: 'SHA512' });
    assert.deepEqual(peer.decrypt(ours.encrypt(IP)), IP);
    const noCipher = parseProfile(text.replace('cipher AES-256-CBC\n', '')).profile;
    assert.throws(() => staticKeyChannelFromProfile(noCipher), /BF-CBC/);
  });
});
