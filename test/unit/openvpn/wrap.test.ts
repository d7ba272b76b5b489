import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { VpnError, WireError } from '../../../src/errors.js';
import { ControlUnwrapError, TlsCryptWrap, createControlWrap, type ControlWrap } from '../../../src/openvpn/wrap.js';
import { Opcode, decodeControlPacket, encodeControlPacket, type ControlPacket } from '../../../src/wire/openvpn.js';

/** Test helper: a 256-byte key2 from hex (as in a static key file body), or a deterministic one. */
function hexKey(hex: string): Buffer {
  const b = Buffer.from(hex.replace(/[^0-9a-f]/gi, ''), 'hex');
  assert.ok(b.length === 256 || b.length === 128);
  return b;
}
function testKey(seed: string): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < 8; i++) parts.push(createHash('sha256').update(`${seed}/${i}`).digest());
  return hexKey(Buffer.concat(parts).toString('hex'));
}

const sidC = Buffer.from('c1c2c3c4c5c6c7c8', 'hex');
const sidS = Buffer.from('5151515151515151', 'hex');
const KEY = testKey('k');
const T0 = 1_700_000_000;

function clientReset(opcode: number = Opcode.P_CONTROL_HARD_RESET_CLIENT_V2): Buffer {
  return encodeControlPacket({ opcode, keyId: 0, sessionId: sidC, acks: [], messageId: 0, payload: Buffer.alloc(0) });
}
function control(payload: string, messageId = 1, opcode: number = Opcode.P_CONTROL_V1): Buffer {
  return encodeControlPacket({
    opcode,
    keyId: 0,
    sessionId: sidC,
    acks: [0],
    remoteSessionId: sidS,
    messageId,
    payload: Buffer.from(payload),
  });
}
function serverReset(): Buffer {
  return encodeControlPacket({
    opcode: Opcode.P_CONTROL_HARD_RESET_SERVER_V2,
    keyId: 0,
    sessionId: sidS,
    acks: [0],
    remoteSessionId: sidC,
    messageId: 0,
    payload: Buffer.alloc(0),
  });
}

function pairs(): { name: string; client: () => ControlWrap; server: () => ControlWrap }[] {
  const wkc = Buffer.concat([Buffer.alloc(297, 0xab), Buffer.from([0x01, 0x2b])]); // 299 bytes, ends with its length
  return [
    { name: 'none', client: () => createControlWrap({ mode: 'none' }), server: () => createControlWrap({ mode: 'none' }) },
    ...['SHA1', 'SHA256', 'SHA384', 'SHA512'].map((digest) => ({
      name: `tls-auth ${digest}`,
      client: () => createControlWrap({ mode: 'tls-auth', key: KEY, direction: 1, digest }),
      server: () => createControlWrap({ mode: 'tls-auth', key: KEY, direction: 0, digest }),
    })),
    {
      name: 'tls-auth bidirectional',
      client: () => createControlWrap({ mode: 'tls-auth', key: KEY }),
      server: () => createControlWrap({ mode: 'tls-auth', key: KEY }),
    },
    {
      name: 'tls-crypt',
      client: () => createControlWrap({ mode: 'tls-crypt', key: KEY }),
      server: () => createControlWrap({ mode: 'tls-crypt', key: KEY, role: 'server' }),
    },
    {
      name: 'tls-crypt-v2',
      client: () => createControlWrap({ mode: 'tls-crypt-v2', key: KEY, wkc }),
      server: () => createControlWrap({ mode: 'tls-crypt-v2', key: KEY, wkc: Buffer.alloc(0), role: 'server' }),
    },
  ];
}

describe('first client packet sizes (reference §1.3)', () => {
  const cases: [string, ControlWrap, number][] = [
    ['plain', createControlWrap({ mode: 'none' }), 14],
    ['tls-auth SHA1', createControlWrap({ mode: 'tls-auth', key: KEY, direction: 1 }), 42],
    ['tls-auth SHA256', createControlWrap({ mode: 'tls-auth', key: KEY, direction: 1, digest: 'SHA256' }), 54],
    ['tls-auth SHA384', createControlWrap({ mode: 'tls-auth', key: KEY, direction: 1, digest: 'SHA384' }), 70],
    ['tls-auth SHA512', createControlWrap({ mode: 'tls-auth', key: KEY, direction: 1, digest: 'sha512' }), 86],
    ['tls-crypt', createControlWrap({ mode: 'tls-crypt', key: KEY }), 54],
    ['tls-crypt-v2 (WKc 299)', createControlWrap({ mode: 'tls-crypt-v2', key: KEY, wkc: Buffer.alloc(299) }), 54 + 299],
  ];
  for (const [name, w, size] of cases) {
    test(`${name}: ${size} bytes`, () => {
      const op = name.startsWith('tls-crypt-v2') ? Opcode.P_CONTROL_HARD_RESET_CLIENT_V3 : Opcode.P_CONTROL_HARD_RESET_CLIENT_V2;
      assert.equal(w.wrap(clientReset(op), T0).length, size);
      assert.equal(w.overheadFor(op), size - 14);
    });
  }
});

describe('round trips and rejections', () => {
  for (const p of pairs()) {
    test(`${p.name}: client → server and server → client`, () => {
      const c = p.client();
      const s = p.server();
      const reset = clientReset(p.name === 'tls-crypt-v2' ? Opcode.P_CONTROL_HARD_RESET_CLIENT_V3 : undefined);
      assert.ok(s.unwrap(c.wrap(reset, T0), T0).equals(reset));
      const sr = serverReset();
      assert.ok(c.unwrap(s.wrap(sr, T0), T0).equals(sr));
      const hello = control('client hello'.repeat(50));
      // the same plain packet twice (a retransmission) is two different wire packets, both accepted
      const w1 = c.wrap(hello, T0 + 1);
      const w2 = c.wrap(hello, T0 + 3);
      if (p.name !== 'none') assert.ok(!w1.equals(w2), 'retransmission must get a new replay id');
      assert.ok(s.unwrap(w2, T0 + 3).equals(hello));
      assert.ok(s.unwrap(w1, T0 + 3).equals(hello)); // reordered, within the window
      if (p.name === 'none') return;
      // replayed packet
      assert.throws(() => s.unwrap(w1, T0 + 3), (e: unknown) => e instanceof ControlUnwrapError && e.reason === 'replay');
    });

    if (p.name === 'none') continue;

    test(`${p.name}: every tampered byte is rejected`, () => {
      const c = p.client();
      const wire = c.wrap(control('payload bytes'), T0);
      for (let i = 0; i < wire.length; i++) {
        const s = p.server();
        const bad = Buffer.from(wire);
        bad[i] = bad[i]! ^ 0x01;
        assert.throws(
          () => s.unwrap(bad, T0),
          (e: unknown) => (e instanceof ControlUnwrapError && e.reason === 'auth') || e instanceof WireError,
          `byte ${i}`,
        );
      }
      // a truncated packet is a WireError or an auth failure, never anything else
      const s = p.server();
      for (let n = 0; n < wire.length; n++) {
        assert.throws(() => s.unwrap(wire.subarray(0, n), T0), (e: unknown) => e instanceof WireError || e instanceof ControlUnwrapError);
      }
    });

    test(`${p.name}: an older time sequence is rejected`, () => {
      const s = p.server();
      const newer = p.client();
      const older = p.client();
      const wOld = older.wrap(control('x'), T0); // time fixed at T0
      assert.ok(s.unwrap(newer.wrap(control('y'), T0 + 100), T0 + 100)); // time T0+100
      assert.throws(() => s.unwrap(wOld, T0 + 100), (e: unknown) => e instanceof ControlUnwrapError && e.reason === 'replay' && /old-time/.test(e.message));
    });
  }
});

describe('tls-auth', () => {
  test('layout and HMAC input exactly as §1.3, client direction 1 sends with F[192..192+H)', () => {
    const w = createControlWrap({ mode: 'tls-auth', key: KEY, direction: 1, digest: 'SHA256' });
    const plain = control('abc', 7);
    const wire = w.wrap(plain, T0);
    const H = 32;
    assert.ok(wire.subarray(0, 9).equals(plain.subarray(0, 9)));
    assert.equal(wire.readUInt32BE(9 + H), 1);
    assert.equal(wire.readUInt32BE(9 + H + 4), T0);
    assert.ok(wire.subarray(17 + H).equals(plain.subarray(9)));
    const mac = createHmac('sha256', KEY.subarray(192, 192 + H))
      .update(Buffer.concat([wire.subarray(9 + H, 17 + H), plain.subarray(0, 9), plain.subarray(9)]))
      .digest();
    assert.ok(wire.subarray(9, 9 + H).equals(mac));
    // the second packet has id 2 and the same time
    const wire2 = w.wrap(plain, T0 + 50);
    assert.equal(wire2.readUInt32BE(9 + H), 2);
    assert.equal(wire2.readUInt32BE(9 + H + 4), T0);
  });

  test('client direction 1 receives with F[64..64+H)', () => {
    const w = createControlWrap({ mode: 'tls-auth', key: KEY, direction: 1 });
    const plain = serverReset();
    const H = 20;
    const pid = Buffer.from('0000000100000064', 'hex');
    const mac = createHmac('sha1', KEY.subarray(64, 64 + H)).update(Buffer.concat([pid, plain])).digest();
    const wire = Buffer.concat([plain.subarray(0, 9), mac, pid, plain.subarray(9)]);
    assert.ok(w.unwrap(wire, 100).equals(plain));
  });

  test('wrong key direction is rejected', () => {
    const c = createControlWrap({ mode: 'tls-auth', key: KEY, direction: 1 });
    for (const server of [
      createControlWrap({ mode: 'tls-auth', key: KEY, direction: 1 }),
      createControlWrap({ mode: 'tls-auth', key: KEY }),
    ]) {
      assert.throws(() => server.unwrap(c.wrap(clientReset(), T0), T0), (e: unknown) => e instanceof ControlUnwrapError && e.reason === 'auth');
    }
    // a different digest is rejected too
    const sha256 = createControlWrap({ mode: 'tls-auth', key: KEY, direction: 0, digest: 'SHA256' });
    assert.throws(() => sha256.unwrap(c.wrap(clientReset(), T0), T0), (e: unknown) => e instanceof ControlUnwrapError || e instanceof WireError);
  });

  test('key and digest errors', () => {
    assert.throws(() => createControlWrap({ mode: 'tls-auth', key: KEY, digest: 'NOPE-1' }), (e: unknown) => e instanceof VpnError && e.code === 'PROFILE_UNSUPPORTED');
    const half = KEY.subarray(0, 128);
    assert.ok(createControlWrap({ mode: 'tls-auth', key: half })); // one key, bidirectional
    assert.throws(() => createControlWrap({ mode: 'tls-auth', key: half, direction: 1 }), (e: unknown) => e instanceof VpnError && e.code === 'PROFILE_SYNTAX');
  });
});

describe('tls-crypt', () => {
  test('layout: client sends with Ke=F[128..160) Ka=F[192..224), IV = tag[0..16)', () => {
    const w = createControlWrap({ mode: 'tls-crypt', key: KEY });
    const plain = control('secret tls bytes', 3);
    const wire = w.wrap(plain, T0);
    assert.equal(wire.length, plain.length + 40);
    assert.ok(wire.subarray(0, 9).equals(plain.subarray(0, 9)));
    assert.equal(wire.readUInt32BE(9), 1);
    assert.equal(wire.readUInt32BE(13), T0);
    const tag = wire.subarray(17, 49);
    const expectTag = createHmac('sha256', KEY.subarray(192, 224)).update(wire.subarray(0, 17)).update(plain.subarray(9)).digest();
    assert.ok(tag.equals(expectTag));
    const ct = createCipheriv('aes-256-ctr', KEY.subarray(128, 160), tag.subarray(0, 16)).update(plain.subarray(9));
    assert.ok(wire.subarray(49).equals(ct));
    // the body is not in clear
    assert.equal(wire.indexOf('secret tls bytes'), -1);
  });

  test('key-direction plays no role; a client cannot read its own packets (inverse keys)', () => {
    const c = createControlWrap({ mode: 'tls-crypt', key: KEY });
    const c2 = createControlWrap({ mode: 'tls-crypt', key: KEY });
    assert.throws(() => c2.unwrap(c.wrap(clientReset(), T0), T0), (e: unknown) => e instanceof ControlUnwrapError && e.reason === 'auth');
    const other = createControlWrap({ mode: 'tls-crypt', key: testKey('other'), role: 'server' });
    assert.throws(() => other.unwrap(c.wrap(clientReset(), T0), T0), ControlUnwrapError);
  });
});

describe('tls-crypt-v2', () => {
  const wkc = Buffer.concat([Buffer.alloc(40, 7), Buffer.from([0x00, 0x2a])]); // 42 bytes
  test('WKc in clear only after HARD_RESET_CLIENT_V3 and P_CONTROL_WKC_V1; early-neg ids start at 0x0f000001', () => {
    const c = createControlWrap({ mode: 'tls-crypt-v2', key: KEY, wkc });
    const r = c.wrap(clientReset(Opcode.P_CONTROL_HARD_RESET_CLIENT_V3), T0);
    assert.equal(r.length, 54 + 42);
    assert.ok(r.subarray(54).equals(wkc));
    assert.equal(r.readUInt32BE(9), 0x0f000001);
    const k = c.wrap(control('', 1, Opcode.P_CONTROL_WKC_V1), T0);
    assert.ok(k.subarray(k.length - 42).equals(wkc));
    assert.equal(k.readUInt32BE(9), 0x0f000002);
    const n = c.wrap(control('x', 2), T0);
    assert.equal(n.length, control('x', 2).length + 40);
    assert.equal(c.overheadFor(Opcode.P_CONTROL_V1), 40);
    assert.equal(c.overheadFor(Opcode.P_CONTROL_WKC_V1), 82);
    // the server side strips and remembers the WKc
    const s = new TlsCryptWrap({ key: KEY, role: 'server', wkc: Buffer.alloc(0) });
    assert.ok(s.unwrap(k, T0).equals(control('', 1, Opcode.P_CONTROL_WKC_V1)));
    assert.ok(s.lastWkc!.equals(wkc));
  });
  test('without early negotiation the counter starts at 1', () => {
    const c = createControlWrap({ mode: 'tls-crypt-v2', key: KEY, wkc, earlyNegotiation: false });
    assert.equal(c.wrap(clientReset(Opcode.P_CONTROL_HARD_RESET_CLIENT_V3), T0).readUInt32BE(9), 1);
  });
  test('a WKc of impossible length is refused', () => {
    assert.throws(() => createControlWrap({ mode: 'tls-crypt-v2', key: KEY, wkc: Buffer.alloc(1025) }), VpnError);
  });
});

describe('vectors captured from OpenVPN 2.6.14', () => {
  interface Vec {
    mode: 'tls-auth' | 'tls-crypt' | 'tls-crypt-v2';
    key: string;
    wkc?: string;
    serverSessionId: string;
    serverReply: string;
    serverReplyTime: number;
    clientPackets: { hex: string; t: number }[];
  }
  for (const mode of ['tls-auth', 'tls-crypt', 'tls-crypt-v2'] as const) {
    test(mode, () => {
      const v = JSON.parse(readFileSync(new URL(`./fixtures/openvpn-2.6.14-${mode}.json`, import.meta.url), 'utf8')) as Vec;
      const key = hexKey(v.key);
      const server =
        mode === 'tls-auth'
          ? createControlWrap({ mode, key, direction: 0, digest: 'SHA256' })
          : mode === 'tls-crypt'
            ? createControlWrap({ mode, key, role: 'server' })
            : new TlsCryptWrap({ key, role: 'server', wkc: Buffer.alloc(0) });
      const pkts = v.clientPackets.map((p) => decodeControlPacket(server.unwrap(Buffer.from(p.hex, 'hex'), p.t)));
      const [reset, hello, again] = pkts as [ControlPacket, ControlPacket, ControlPacket];
      const resetOp = mode === 'tls-crypt-v2' ? Opcode.P_CONTROL_HARD_RESET_CLIENT_V3 : Opcode.P_CONTROL_HARD_RESET_CLIENT_V2;
      assert.equal(reset.opcode, resetOp);
      assert.equal(reset.messageId, 0);
      assert.deepEqual(reset.acks, []);
      assert.equal(Buffer.from(v.clientPackets[0]!.hex, 'hex').length, mode === 'tls-crypt-v2' ? 54 + v.wkc!.length / 2 : 54);
      // the real client accepted our server reset: it ACKs id 0 with our session id
      const helloOp = mode === 'tls-crypt-v2' ? Opcode.P_CONTROL_WKC_V1 : Opcode.P_CONTROL_V1;
      assert.equal(hello.opcode, helloOp);
      assert.equal(hello.messageId, 1);
      assert.deepEqual(hello.acks, [0]);
      assert.equal(hello.remoteSessionId!.toString('hex'), v.serverSessionId);
      assert.equal(hello.payload[0], 0x16); // a TLS handshake record (ClientHello)
      // the retransmission: same message id and payload, new replay id
      assert.equal(again.messageId, 1);
      assert.ok(again.payload.equals(hello.payload));
      const wires = v.clientPackets.map((p) => Buffer.from(p.hex, 'hex'));
      const early = mode === 'tls-crypt-v2' ? 0x0f000000 : 0;
      const pidOff = mode === 'tls-auth' ? 9 + 32 : 9;
      assert.deepEqual(wires.map((w) => w.readUInt32BE(pidOff)), [early + 1, early + 2, early + 3]);
      if (mode === 'tls-crypt-v2') assert.ok((server as TlsCryptWrap).lastWkc!.equals(Buffer.from(v.wkc!, 'hex')));
      // replaying the capture is rejected
      assert.throws(() => server.unwrap(wires[1]!, v.clientPackets[1]!.t), ControlUnwrapError);
      // our client-role wrap reads the server reply that OpenVPN accepted
      const client =
        mode === 'tls-auth'
          ? createControlWrap({ mode, key, direction: 1, digest: 'SHA256' })
          : mode === 'tls-crypt'
            ? createControlWrap({ mode, key })
            : createControlWrap({ mode, key, wkc: Buffer.from(v.wkc!, 'hex') });
      const sr = decodeControlPacket(client.unwrap(Buffer.from(v.serverReply, 'hex'), v.serverReplyTime));
      assert.equal(sr.opcode, Opcode.P_CONTROL_HARD_RESET_SERVER_V2);
      assert.ok(sr.remoteSessionId!.equals(reset.sessionId));
    });
  }
});

describe('property: unwrap of untrusted bytes', () => {
  test('throws only WireError or ControlUnwrapError, never returns for random input', () => {
    const ws = pairs()
      .filter((p) => p.name !== 'none')
      .map((p) => p.server());
    const valid = pairs()[1]!.client().wrap(control('hello'), T0);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
          fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
            const b = Buffer.from(valid);
            b[i] = b[i]! ^ x;
            return b;
          }),
        ),
        (bytes) => {
          for (const w of ws) {
            try {
              w.unwrap(bytes, T0);
              assert.fail('random bytes authenticated');
            } catch (e) {
              if (!(e instanceof WireError || e instanceof ControlUnwrapError)) throw e;
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
