import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VpnError, WireError } from '../../../src/errors.js';
import {
  buildOccOptionsString,
  buildPeerInfo,
  decodeKeyMethod2,
  decodeServerKeyMethod2,
  DEFAULT_IV_PROTO,
  encodeClientKeyMethod2,
  encodeKeyMethod2,
  IV_PROTO,
  KM_OFFSETS,
  newClientKeySource,
  parsePeerInfo,
} from '../../../src/openvpn/keymethod.js';

const fill = (v: number, n: number) => Buffer.alloc(n, v);
const OPTIONS = 'V4,dev-type tun,link-mtu 1521,tun-mtu 1500,proto UDPv4,auth SHA1,keysize 128,key-method 2,tls-client';

describe('key-method-2 encode (client)', () => {
  const msg = {
    preMaster: fill(0xaa, 48),
    random1: fill(0xbb, 32),
    random2: fill(0xcc, 32),
    options: OPTIONS,
    username: 'alice',
    password: 'pw',
    peerInfo: 'IV_VER=2.6.14\n',
  };
  const b = encodeClientKeyMethod2(msg);

  test('fixed part at offsets 0, 4, 5, 53, 85, 117', () => {
    assert.deepEqual(b.subarray(0, 4), Buffer.alloc(4));
    assert.equal(b[4], 2);
    assert.equal(KM_OFFSETS.client.preMaster, 5);
    assert.deepEqual(b.subarray(5, 53), msg.preMaster);
    assert.deepEqual(b.subarray(53, 85), msg.random1);
    assert.deepEqual(b.subarray(85, 117), msg.random2);
    assert.equal(KM_OFFSETS.client.options, 117);
  });

  test('strings: u16 length including the NUL, then bytes and NUL', () => {
    let off = 117;
    for (const s of [OPTIONS, 'alice', 'pw', 'IV_VER=2.6.14\n']) {
      assert.equal(b.readUInt16BE(off), s.length + 1, `length of ${JSON.stringify(s)}`);
      assert.equal(b.toString('latin1', off + 2, off + 2 + s.length), s);
      assert.equal(b[off + 2 + s.length], 0);
      off += 2 + s.length + 1;
    }
    assert.equal(off, b.length);
  });

  test('empty username/password/peer-info are 00 00 with no bytes', () => {
    const e = encodeClientKeyMethod2({ ...msg, username: undefined, password: '', peerInfo: undefined });
    const optEnd = 117 + 2 + OPTIONS.length + 1;
    assert.equal(e.length, optEnd + 6);
    assert.deepEqual(e.subarray(optEnd), Buffer.alloc(6));
  });

  test('round trip through the decoder (fromClient)', () => {
    const d = decodeKeyMethod2(b, { fromClient: true });
    assert.deepEqual(d.message.preMaster, msg.preMaster);
    assert.deepEqual(d.message.random1, msg.random1);
    assert.equal(d.message.options, OPTIONS);
    assert.equal(d.message.username, 'alice');
    assert.equal(d.message.password, 'pw');
    assert.equal(d.message.peerInfo, 'IV_VER=2.6.14\n');
    assert.equal(d.consumed, b.length);
    assert.equal(d.rest.length, 0);
  });

  test('refuses bad inputs', () => {
    assert.throws(() => encodeClientKeyMethod2({ ...msg, preMaster: fill(1, 47) }), VpnError);
    assert.throws(() => encodeClientKeyMethod2({ ...msg, random1: fill(1, 31) }), VpnError);
    assert.throws(() => encodeClientKeyMethod2({ ...msg, username: 'a\0b' }), VpnError);
    assert.throws(() => encodeClientKeyMethod2({ ...msg, options: 'x'.repeat(512) }), VpnError);
    assert.doesNotThrow(() => encodeClientKeyMethod2({ ...msg, options: 'x'.repeat(511) }));
  });

  test('newClientKeySource gives fresh sizes', () => {
    const a = newClientKeySource();
    assert.equal(a.preMaster.length, 48);
    assert.equal(a.random1.length, 32);
    assert.equal(a.random2.length, 32);
    assert.notDeepEqual(a.random1, newClientKeySource().random1);
  });
});

/** A server message built by hand at the §3.2 offsets. */
function serverMessage(options: string): Buffer {
  const o = Buffer.from(options + '\0');
  const b = Buffer.alloc(69 + 2 + o.length + 6);
  b[4] = 0x02;
  b.fill(0x11, 5, 37);
  b.fill(0x22, 37, 69);
  b.writeUInt16BE(o.length, 69);
  o.copy(b, 71);
  return b; // username, password, peer_info: 00 00 each (Buffer.alloc)
}

describe('key-method-2 decode (server)', () => {
  const SERVER_OPTS = 'V4,dev-type tun,link-mtu 1521,tun-mtu 1500,proto UDPv4,auth SHA1,keysize 128,key-method 2,tls-server';
  test('offsets 5, 37, 69 and the rest of the chunk', () => {
    const push = Buffer.from('PUSH_REPLY,route-gateway 10.8.0.1,peer-id 0,cipher AES-256-GCM\0');
    const msg = serverMessage(SERVER_OPTS);
    const d = decodeServerKeyMethod2(Buffer.concat([msg, push]));
    assert.deepEqual(d.message.random1, fill(0x11, 32));
    assert.deepEqual(d.message.random2, fill(0x22, 32));
    assert.equal(d.message.preMaster, undefined);
    assert.equal(d.message.options, SERVER_OPTS);
    assert.equal(d.message.username, '');
    assert.equal(d.message.password, '');
    assert.equal(d.message.peerInfo, '');
    assert.equal(d.consumed, msg.length);
    assert.deepEqual(d.rest, push);
  });

  test('method byte flags in the high nibble are ignored; other methods refused', () => {
    const m = serverMessage('V4');
    m[4] = 0x12;
    assert.equal(decodeServerKeyMethod2(m).message.options, 'V4');
    m[4] = 0x01;
    assert.throws(() => decodeServerKeyMethod2(m), (e: unknown) => e instanceof WireError && e.field === 'keyMethod');
  });

  test('leading bytes must be zero; options are required; truncation is a WireError', () => {
    const m = serverMessage('V4');
    m[0] = 1;
    assert.throws(() => decodeServerKeyMethod2(m), WireError);
    const n = serverMessage('V4');
    n.writeUInt16BE(0, 69);
    assert.throws(() => decodeServerKeyMethod2(n.subarray(0, 71)), (e: unknown) => e instanceof WireError && e.field === 'options');
    const full = serverMessage(SERVER_OPTS);
    assert.throws(() => decodeServerKeyMethod2(full.subarray(0, 80)), WireError);
    assert.throws(() => decodeServerKeyMethod2(full.subarray(0, 60)), WireError);
    // over-long options string (> 512 incl NUL)
    const big = Buffer.alloc(69 + 2 + 600);
    big[4] = 2;
    big.writeUInt16BE(600, 69);
    assert.throws(() => decodeServerKeyMethod2(big), WireError);
  });

  test('message that ends after the options string: missing strings are empty', () => {
    const full = serverMessage('V4,x');
    const short = full.subarray(0, full.length - 6);
    const d = decodeServerKeyMethod2(short);
    assert.equal(d.message.options, 'V4,x');
    assert.equal(d.message.peerInfo, undefined);
    assert.equal(d.rest.length, 0);
  });

  test('property: random and mutated input only ever throws WireError', () => {
    const base = Buffer.concat([serverMessage(SERVER_OPTS), Buffer.from('PUSH_REPLY,ping 10\0')]);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }).map((muts) => {
            const b = Buffer.from(base);
            for (const [p, v] of muts) b[p % b.length] = v;
            return b.subarray(0, Math.max(0, b.length - (muts[0]?.[0] ?? 0) % 40));
          }),
        ),
        fc.boolean(),
        (buf, fromClient) => {
          try {
            const d = decodeKeyMethod2(buf, { fromClient });
            assert.ok(d.consumed <= buf.length);
            assert.equal(d.consumed + d.rest.length, buf.length);
          } catch (e) {
            if (!(e instanceof WireError)) throw e;
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('OCC options string', () => {
  test('2.6-style default', () => {
    assert.equal(buildOccOptionsString(), OPTIONS);
  });
  test('openvpn3-style fields in order', () => {
    assert.equal(
      buildOccOptionsString({ linkMtu: 1522, compLzo: true, keyDirection: 1, cipher: 'AES-256-GCM', auth: 'none', keysize: 256, tlsAuth: true }),
      'V4,dev-type tun,link-mtu 1522,tun-mtu 1500,proto UDPv4,comp-lzo,keydir 1,cipher AES-256-GCM,auth [null-digest],keysize 256,tls-auth,key-method 2,tls-client',
    );
    assert.match(buildOccOptionsString({ cipher: 'none', proto: 'TCPv4_CLIENT' }), /proto TCPv4_CLIENT,cipher \[null-cipher\],auth SHA1/);
  });
});

describe('peer-info', () => {
  test('recommended first-version lines', () => {
    assert.equal(DEFAULT_IV_PROTO, 30);
    assert.equal(
      buildPeerInfo({ guiVersion: 'vpnproxy_0.1.0' }),
      'IV_VER=2.6.14\nIV_PLAT=linux\nIV_TCPNL=1\nIV_MTU=1600\nIV_NCP=2\n' +
        'IV_CIPHERS=AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305\nIV_PROTO=30\n' +
        'IV_LZO_STUB=1\nIV_COMP_STUB=1\nIV_COMP_STUBv2=1\nIV_GUI_VER=vpnproxy_0.1.0\n',
    );
  });
  test('IV_PROTO bit values; 2.6 client = 990', () => {
    const p26 =
      IV_PROTO.DATA_V2 | IV_PROTO.REQUEST_PUSH | IV_PROTO.TLS_KEY_EXPORT | IV_PROTO.AUTH_PENDING_KW |
      IV_PROTO.DNS_OPTION | IV_PROTO.CC_EXIT_NOTIFY | IV_PROTO.AUTH_FAIL_TEMP | IV_PROTO.DYN_TLS_CRYPT;
    assert.equal(p26, 990);
    assert.equal(IV_PROTO.NCP_P2P, 32);
    assert.equal(IV_PROTO.DATA_EPOCH, 1024);
    assert.equal(IV_PROTO.PUSH_UPDATE, 4096);
  });
  test('IV_NCP=2 only with both AES-GCM sizes; options and validation', () => {
    const m = parsePeerInfo(buildPeerInfo({ ciphers: ['AES-256-GCM', 'CHACHA20-POLY1305'], compStubs: false, tcpNl: false }));
    assert.equal(m.get('IV_NCP'), undefined);
    assert.equal(m.get('IV_LZO_STUB'), undefined);
    assert.equal(m.get('IV_TCPNL'), undefined);
    assert.equal(m.get('IV_CIPHERS'), 'AES-256-GCM:CHACHA20-POLY1305');
    assert.throws(() => buildPeerInfo({ proto: 30 | IV_PROTO.NCP_P2P }), VpnError);
    assert.throws(() => buildPeerInfo({ proto: 4 }), VpnError);
    assert.throws(() => buildPeerInfo({ guiVersion: 'a\nIV_PROTO=2' }), VpnError);
    assert.throws(() => buildPeerInfo({ extra: [['BAD KEY', '1']] }), VpnError);
    assert.equal(parsePeerInfo(buildPeerInfo({ extra: [['UV_X', 'y=z']] })).get('UV_X'), 'y=z');
  });
});

test('encodeKeyMethod2 without preMaster is the server form (decodes at server offsets)', () => {
  const b = encodeKeyMethod2({ random1: fill(1, 32), random2: fill(2, 32), options: 'V4' });
  assert.equal(b.length, 69 + 2 + 3 + 6);
  const d = decodeServerKeyMethod2(b);
  assert.deepEqual(d.message.random2, fill(2, 32));
  assert.equal(d.rest.length, 0);
});
