/**
 * The IKE SA's task manager on the simulated clock, against a scripted gateway that speaks through the same
 * IkeSa class in the other role: the gateway's CHILD_SA rekey (new inbound SA at once, outbound switched at
 * the old SA's DELETE, keys as the gateway derives them), our own CHILD_SA rekey (outbound at once, then our
 * DELETE), the IKE SA rekey from either side with the role flip (SPIs, I flag, keys, message IDs from 0, the
 * old SA's DELETE), collisions settled by the lowest nonce, the request window with a queue, the response
 * cache for retransmitted requests, and DPD: sent after silence, retransmitted, given up at dpd_timeout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createKeyExchange } from '../../../src/crypto/dh.js';
import { deriveChildKeys, deriveIkeKeys, deriveRekeyedIkeKeys } from '../../../src/ipsec/ike-keys.js';
import { Requests } from '../../../src/ipsec/ike/exchange.js';
import { IkeSa } from '../../../src/ipsec/ike/ike-sa.js';
import { chooseEspSuite, chooseIkeSuite, espSaProposals, ikeSaProposals, parseEspProposals, parseIkeProposals, type IkeSuite } from '../../../src/ipsec/ike/proposals.js';
import { selectEspProposal, selectIkeProposal } from '../../../src/ipsec/ike/select.js';
import { TaskManager, type ChildSaSpec, type TaskEvent } from '../../../src/ipsec/ike/task-manager.js';
import { silentLogger } from '../../../src/util/log.js';
import { IkeExchange, IkeFlags, NotifyType, PayloadType, ProtocolId } from '../../../src/wire/ike-constants.js';
import { parseIkeMessage, type IkePayload } from '../../../src/wire/ike.js';
import { buildDelete, buildKe, buildNonce, buildNotify, buildSa, buildTs, parseDelete, parseKe, parseNonce, parseNotify, parseSa } from '../../../src/wire/ike-payloads.js';
import { ANY_IPV4_TS } from '../../../src/ipsec/ike/identity.js';

const IKE = parseIkeProposals(['aes128gcm16-prfsha256-ecp256']);
const ESP = parseEspProposals(['aes128gcm16']);
const p = (type: number, body: Uint8Array): IkePayload => ({ type, critical: false, body });
const be32 = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
const POLICY = { initialMs: 1000, factor: 2, maxIntervalMs: 8000, retransmits: 6 };

function suite(): IkeSuite {
  const sent = ikeSaProposals(IKE);
  return chooseIkeSuite(sent, [{ ...sent.proposals[0]!, transforms: sent.proposals[0]!.transforms.filter((t, i, a) => a.findIndex((x) => x.type === t.type) === i) }]);
}

/** Our side and the gateway's of one IKE SA with a CHILD_SA, as after IKE_AUTH. */
function setup(o: { dpd?: number; dpdTimeout?: number; ikeRekey?: number; random?: (n: number) => Uint8Array } = {}) {
  const s = suite();
  const spiI = randomBytes(8);
  const spiR = randomBytes(8);
  const keys = deriveIkeKeys({ prf: s.prf.hash, nonceI: randomBytes(32), nonceR: randomBytes(32), sharedSecret: randomBytes(32), spiI, spiR, lengths: { encKey: s.encr.keyBytes, integKey: 0 } });
  const mk = (initiator: boolean) => new IkeSa({ spiI, spiR, initiator, suite: s, keys, requests: new Requests(POLICY, 'gw'), fragmentation: 'yes', peerFragments: true, random: (n) => randomBytes(n), log: silentLogger });
  const ours = mk(true);
  const gw = mk(false);
  // the IKE_SA_INIT/IKE_AUTH requests used our message IDs 0 and 1
  ours.requests.start(34, [], 0);
  ours.requests.complete();
  ours.requests.start(35, [], 0);
  ours.requests.complete();
  const child: ChildSaSpec = {
    suite: ESP[0]!.suites[0]!,
    esn: false,
    spiIn: 0xa0000001,
    spiOut: 0xb0000001,
    inbound: { encKey: Buffer.alloc(20, 1), integKey: Buffer.alloc(0) },
    outbound: { encKey: Buffer.alloc(20, 2), integKey: Buffer.alloc(0) },
    tsi: [ANY_IPV4_TS],
    tsr: [ANY_IPV4_TS],
  };
  let inbound = 0;
  const tm = new TaskManager(ours, child, {
    ike: IKE,
    esp: ESP,
    ikeRekeySeconds: o.ikeRekey ?? 0,
    ikeRandSeconds: 0,
    dpdDelaySeconds: o.dpd ?? 0,
    dpdTimeoutSeconds: o.dpdTimeout,
    retransmit: POLICY,
    peerName: 'gw',
    fragmentation: 'yes',
    peerFragments: true,
    random: o.random ?? ((n) => randomBytes(n)),
    log: silentLogger,
    inboundCount: () => inbound,
  }, 0);
  return { tm, gw, child, s, bump: () => inbound++ };
}

const sends = (evs: TaskEvent[]) => evs.filter((e): e is Extract<TaskEvent, { type: 'send' }> => e.type === 'send').map((e) => e.message);
const kinds = (evs: TaskEvent[]) => evs.map((e) => e.type);

/** The gateway opens one message of ours with its IkeSa. */
function gwOpen(gw: IkeSa, raw: Uint8Array, kind: 'request' | 'response') {
  const m = parseIkeMessage(raw);
  assert.ok(gw.owns(m.header), 'a message of our IKE SA');
  const inner = gw.open(raw, m, kind);
  assert.ok(inner, 'the gateway opens it');
  return { header: m.header, inner };
}

/** The gateway's CHILD_SA rekey request for our `child`; returns the request and what it needs to finish. */
function gwChildRekey(gw: IkeSa, child: ChildSaSpec, nonce = randomBytes(32)) {
  const spi = 0xc0000002;
  const proposals = espSaProposals(ESP, spi);
  const req = gw.request(IkeExchange.CREATE_CHILD_SA, [
    p(PayloadType.NOTIFY, buildNotify({ protocol: ProtocolId.ESP, spi: be32(child.spiOut), type: NotifyType.REKEY_SA, data: new Uint8Array(0) })),
    p(PayloadType.SA, buildSa(proposals)),
    p(PayloadType.NONCE, buildNonce(nonce)),
    p(PayloadType.TSi, buildTs([ANY_IPV4_TS])),
    p(PayloadType.TSr, buildTs([ANY_IPV4_TS])),
  ], 0);
  return { req, spi, proposals, nonce };
}

test("the gateway rekeys the CHILD_SA: new inbound SA at once with the gateway's keys, outbound switched at the old SA's DELETE", () => {
  const { tm, gw, child, s } = setup();
  const r = gwChildRekey(gw, child);
  const evs = tm.receive(r.req[0]!, 1000);
  assert.deepEqual(kinds(evs), ['child-added', 'send']);
  const added = (evs[0] as Extract<TaskEvent, { type: 'child-added' }>).child;
  assert.equal(added.spiOut, r.spi);
  const resp = gwOpen(gw, sends(evs)[0]!, 'response');
  assert.equal(resp.header.flags, IkeFlags.INITIATOR | IkeFlags.RESPONSE);
  assert.equal(resp.header.messageId, 0, "the gateway's own counter");
  gw.requests.complete();
  const chosen = chooseEspSuite(r.proposals, ESP, parseSa(resp.inner.find((x) => x.type === PayloadType.SA)!.body));
  assert.equal(chosen.spi, added.spiIn);
  const nr = parseNonce(resp.inner.find((x) => x.type === PayloadType.NONCE)!.body);
  const keys = deriveChildKeys({ prf: s.prf.hash, skD: gw.keys.skD, nonceI: r.nonce, nonceR: nr, encKeyLen: 20, integKeyLen: 0 });
  assert.deepEqual(Buffer.from(added.inbound.encKey), keys.initiator.encKey, 'our inbound = the gateway-to-us keys');
  assert.deepEqual(Buffer.from(added.outbound.encKey), keys.responder.encKey);

  // the gateway deletes the old SA: we switch, retire ours and answer with our old inbound SPI
  const del = gw.request(IkeExchange.INFORMATIONAL, [p(PayloadType.DELETE, buildDelete({ protocol: ProtocolId.ESP, spiSize: 4, spis: [be32(child.spiOut)] }))], 2000);
  const evs2 = tm.receive(del[0]!, 2000);
  assert.deepEqual(kinds(evs2), ['child-outbound', 'child-removed', 'send']);
  assert.equal((evs2[0] as { spiIn: number }).spiIn, added.spiIn);
  assert.equal((evs2[1] as { spiIn: number }).spiIn, child.spiIn);
  const d = gwOpen(gw, sends(evs2)[0]!, 'response');
  assert.deepEqual([...parseDelete(d.inner[0]!.body).spis[0]!], [...be32(child.spiIn)]);
  assert.equal(tm.activeChild?.spiIn, added.spiIn);
  assert.equal(tm.stats.childRekeys, 1);
});

test('our CHILD_SA rekey: outbound on the new SA as soon as the response is in, then our DELETE of the old one', () => {
  const { tm, gw, child, s } = setup();
  const evs = tm.rekeyChild(1000);
  const req = gwOpen(gw, sends(evs)[0]!, 'request');
  assert.equal(req.header.exchange, IkeExchange.CREATE_CHILD_SA);
  assert.equal(req.header.messageId, 2, 'after IKE_SA_INIT (0) and IKE_AUTH (1)');
  const rekey = parseNotify(req.inner[0]!.body);
  assert.equal(rekey.type, NotifyType.REKEY_SA);
  assert.deepEqual([...rekey.spi], [...be32(child.spiIn)], 'REKEY_SA names our inbound SPI');
  const theirSpi = 0xc0000003;
  const sel = selectEspProposal(parseSa(req.inner.find((x) => x.type === PayloadType.SA)!.body), ESP, theirSpi, undefined);
  assert.ok('chosen' in sel);
  const nr = randomBytes(32);
  const resp = gw.respond(req.header, [p(PayloadType.SA, buildSa([sel.chosen.reply])), p(PayloadType.NONCE, buildNonce(nr)), p(PayloadType.TSi, buildTs([ANY_IPV4_TS])), p(PayloadType.TSr, buildTs([ANY_IPV4_TS]))]);
  const evs2 = tm.receive(resp[0]!, 1100);
  assert.deepEqual(kinds(evs2), ['child-added', 'child-outbound', 'send']);
  const added = (evs2[0] as Extract<TaskEvent, { type: 'child-added' }>).child;
  const keys = deriveChildKeys({ prf: s.prf.hash, skD: gw.keys.skD, nonceI: parseNonce(req.inner.find((x) => x.type === PayloadType.NONCE)!.body), nonceR: nr, encKeyLen: 20, integKeyLen: 0 });
  assert.deepEqual(Buffer.from(added.outbound.encKey), keys.initiator.encKey, 'we initiated: our outbound = initiator keys');
  assert.equal(added.spiOut, theirSpi);
  const del = gwOpen(gw, sends(evs2)[0]!, 'request');
  assert.deepEqual([...parseDelete(del.inner[0]!.body).spis[0]!], [...be32(child.spiIn)]);
  const evs3 = tm.receive(gw.respond(del.header, [p(PayloadType.DELETE, buildDelete({ protocol: ProtocolId.ESP, spiSize: 4, spis: [be32(child.spiOut)] }))])[0]!, 1200);
  assert.deepEqual(kinds(evs3), ['child-removed']);
  assert.equal((evs3[0] as { spiIn: number }).spiIn, child.spiIn);
});

test('the gateway rekeys the IKE SA: role flip (its SPI first, no I flag from us, its keys), message IDs from 0, the old SA until its DELETE', () => {
  const { tm, gw, s } = setup();
  const ke = createKeyExchange(19);
  const ni = randomBytes(32);
  const gwSpi = randomBytes(8);
  const sent = ikeSaProposals(IKE, 19);
  for (const x of sent.proposals) x.spi = gwSpi;
  const req = gw.request(IkeExchange.CREATE_CHILD_SA, [p(PayloadType.SA, buildSa(sent.proposals)), p(PayloadType.NONCE, buildNonce(ni)), p(PayloadType.KE, buildKe({ group: 19, data: ke.publicValue }))], 0);
  const evs = tm.receive(req[0]!, 1000);
  assert.deepEqual(kinds(evs), ['send', 'ike-rekeyed']);
  const resp = gwOpen(gw, sends(evs)[0]!, 'response');
  gw.requests.complete();
  const reply = parseSa(resp.inner.find((x) => x.type === PayloadType.SA)!.body);
  const ns = chooseIkeSuite(sent, reply, true);
  const ourSpi = reply[0]!.spi;
  const secret = ke.computeSecret(parseKe(resp.inner.find((x) => x.type === PayloadType.KE)!.body).data);
  const nr = parseNonce(resp.inner.find((x) => x.type === PayloadType.NONCE)!.body);
  const keys = deriveRekeyedIkeKeys({ prf: s.prf.hash, oldSkD: gw.keys.skD, nonceI: ni, nonceR: nr, sharedSecret: secret, spiI: gwSpi, spiR: ourSpi, lengths: { encKey: ns.encr.keyBytes, integKey: 0 } });
  const gw2 = new IkeSa({ spiI: gwSpi, spiR: ourSpi, initiator: true, suite: ns, keys, requests: new Requests(POLICY, 'us'), fragmentation: 'yes', peerFragments: true, random: (n) => randomBytes(n), log: silentLogger });
  const re = evs[1] as Extract<TaskEvent, { type: 'ike-rekeyed' }>;
  assert.equal(re.spiI, Buffer.from(gwSpi).toString('hex'), "the gateway's new SPI first");
  assert.equal(tm.ikeSa.initiator, false);

  // a DPD on the new SA, message ID 0: answered without the I flag, sealed with the responder's keys
  const dpd = gw2.request(IkeExchange.INFORMATIONAL, [], 1500);
  const a = tm.receive(dpd[0]!, 1500);
  const ans = gwOpen(gw2, sends(a)[0]!, 'response');
  assert.equal(ans.header.flags, IkeFlags.RESPONSE);
  assert.equal(ans.header.messageId, 0);
  gw2.requests.complete();
  // our next request goes on the new SA with message ID 0
  const ours = sends(tm.rekeyChild(1600));
  const r2 = gwOpen(gw2, ours[0]!, 'request');
  assert.equal(r2.header.messageId, 0);
  assert.equal(r2.header.flags, 0, 'no I flag: the gateway is the original initiator now');
  // the gateway deletes the old IKE SA on the old SA: answered there, the tunnel stays
  const del = gw.request(IkeExchange.INFORMATIONAL, [p(PayloadType.DELETE, buildDelete({ protocol: ProtocolId.IKE, spiSize: 0, spis: [] }))], 1700);
  const d = tm.receive(del[0]!, 1700);
  assert.ok(!kinds(d).includes('ended'), 'deleting the old IKE SA does not end anything');
  assert.equal(gwOpen(gw, sends(d)[0]!, 'response').inner.length, 0);
  assert.equal(tm.stats.ikeRekeys, 1);
});

test('our IKE SA rekey: we stay the initiator of the new SA, its keys are ours, and the old SA is deleted', () => {
  const { tm, gw, s } = setup();
  const evs = tm.rekeyIke(1000);
  const req = gwOpen(gw, sends(evs)[0]!, 'request');
  const ni = parseNonce(req.inner.find((x) => x.type === PayloadType.NONCE)!.body);
  const theirKe = parseKe(req.inner.find((x) => x.type === PayloadType.KE)!.body);
  const props = parseSa(req.inner.find((x) => x.type === PayloadType.SA)!.body);
  const gwSpi = randomBytes(8);
  const sel = selectIkeProposal(props, IKE, gwSpi, theirKe.group);
  assert.ok('chosen' in sel);
  const ke = createKeyExchange(theirKe.group);
  const nr = randomBytes(32);
  const resp = gw.respond(req.header, [p(PayloadType.SA, buildSa([sel.chosen.reply])), p(PayloadType.NONCE, buildNonce(nr)), p(PayloadType.KE, buildKe({ group: theirKe.group, data: ke.publicValue }))]);
  const evs2 = tm.receive(resp[0]!, 1100);
  assert.deepEqual(kinds(evs2), ['ike-rekeyed', 'send']);
  const keys = deriveRekeyedIkeKeys({ prf: s.prf.hash, oldSkD: gw.keys.skD, nonceI: ni, nonceR: nr, sharedSecret: ke.computeSecret(theirKe.data), spiI: sel.chosen.peerSpi, spiR: gwSpi, lengths: { encKey: s.encr.keyBytes, integKey: 0 } });
  assert.deepEqual(Buffer.from(tm.ikeSa.keys.skEi), keys.skEi);
  assert.equal(tm.ikeSa.initiator, true);
  // the DELETE of the old IKE SA travels on the old SA
  const del = gwOpen(gw, sends(evs2)[0]!, 'request');
  assert.equal(parseDelete(del.inner[0]!.body).protocol, ProtocolId.IKE);
  const evs3 = tm.receive(gw.respond(del.header, [])[0]!, 1200);
  assert.deepEqual(kinds(evs3), []);
});

test('collision: both sides rekey the CHILD_SA at once; the SA with the lowest nonce is deleted by whoever made it', () => {
  for (const oursLowest of [true, false]) {
    // our rekey's nonce 0x00… (lowest of all) or 0xff…, our nonce in the gateway's exchange 0xee…; the
    // gateway's 0x40… in its request and 0xc0… in its answer to ours
    const nonces = [Buffer.alloc(32, oursLowest ? 0x00 : 0xff), Buffer.alloc(32, 0xee)];
    const { tm, gw, child } = setup({ random: (n) => (n === 32 ? nonces.shift()! : randomBytes(n)) });
    const ourReq = gwOpen(gw, sends(tm.rekeyChild(1000))[0]!, 'request');
    // the gateway's own rekey of the same SA crosses ours; we answer it
    const theirs = gwChildRekey(gw, child, Buffer.alloc(32, 0x40));
    const a = tm.receive(theirs.req[0]!, 1010);
    assert.deepEqual(kinds(a), ['child-added', 'send']);
    const theirNew = (a[0] as Extract<TaskEvent, { type: 'child-added' }>).child;
    gw.requests.complete();
    // then the gateway answers ours
    const sel = selectEspProposal(parseSa(ourReq.inner.find((x) => x.type === PayloadType.SA)!.body), ESP, 0xc0000009, undefined);
    assert.ok('chosen' in sel);
    const resp = gw.respond(ourReq.header, [p(PayloadType.SA, buildSa([sel.chosen.reply])), p(PayloadType.NONCE, buildNonce(Buffer.alloc(32, 0xc0))), p(PayloadType.TSi, buildTs([ANY_IPV4_TS])), p(PayloadType.TSr, buildTs([ANY_IPV4_TS]))]);
    const b = tm.receive(resp[0]!, 1020);
    const ourNew = (b[0] as Extract<TaskEvent, { type: 'child-added' }>).child;
    const del = gwOpen(gw, sends(b)[0]!, 'request');
    const deleted = Buffer.from(parseDelete(del.inner[0]!.body).spis[0]!).readUInt32BE(0);
    if (oursLowest) {
      assert.deepEqual(kinds(b), ['child-added', 'send'], 'ours is redundant: no switch to it');
      assert.equal(deleted, ourNew.spiIn, 'we delete the SA we made');
      // the gateway's SA takes over when it deletes the old one
      const d = tm.receive(gw.request(IkeExchange.INFORMATIONAL, [p(PayloadType.DELETE, buildDelete({ protocol: ProtocolId.ESP, spiSize: 4, spis: [be32(child.spiOut)] }))], 1030)[0]!, 1030);
      assert.ok(kinds(d).includes('child-outbound'));
      assert.equal(tm.activeChild?.spiIn, theirNew.spiIn);
    } else {
      assert.deepEqual(kinds(b), ['child-added', 'child-outbound', 'send'], 'theirs is redundant: ours is used at once');
      assert.equal(deleted, child.spiIn, 'we delete the old SA; the gateway deletes its redundant one');
      assert.equal(tm.activeChild?.spiIn, ourNew.spiIn);
    }
  }
});

test('window and queue: one request in flight, the next after its response; a retransmitted request gets the cached response', () => {
  const { tm, gw } = setup({ dpd: 10 });
  // silence for 10 s: a DPD; a CHILD rekey asked meanwhile waits for it
  const d = sends(tm.onTimer(10_000));
  assert.equal(d.length, 1);
  const dpd = gwOpen(gw, d[0]!, 'request');
  assert.equal(dpd.inner.length, 0);
  assert.deepEqual(sends(tm.rekeyChild(10_100)), [], 'queued behind the DPD');
  const next = sends(tm.receive(gw.respond(dpd.header, [])[0]!, 10_200));
  assert.equal(next.length, 1, 'the rekey goes once the DPD is answered');
  assert.equal(gwOpen(gw, next[0]!, 'request').header.messageId, dpd.header.messageId + 1);
  // the gateway's DPD, and its retransmission: the same bytes again, processed once
  const req = gw.request(IkeExchange.INFORMATIONAL, [], 11_000);
  const first = sends(tm.receive(req[0]!, 11_000));
  const again = sends(tm.receive(req[0]!, 11_500));
  assert.deepEqual(again.map((x) => Buffer.from(x).toString('hex')), first.map((x) => Buffer.from(x).toString('hex')));
  assert.equal(tm.stats.peerRequests, 1);
});

test('DPD: after dpd_delay of silence, retransmitted on the schedule, the gateway declared dead at dpd_timeout', () => {
  const { tm, bump } = setup({ dpd: 5, dpdTimeout: 10 });
  bump();
  assert.deepEqual(sends(tm.onTimer(5000)), [], 'traffic came in: no DPD');
  const at: number[] = [];
  let end: TaskEvent | undefined;
  for (let t = 5250; t <= 40_000 && !end; t += 250) {
    const d = tm.deadline();
    if (d === undefined || d > t) continue;
    const evs = tm.onTimer(t);
    if (sends(evs).length) at.push(t);
    end = evs.find((e) => e.type === 'ended');
  }
  assert.deepEqual(at, [10_000, 11_000, 13_000, 17_000], 'sent after 5 s more of silence, then 1, 2, 4 s');
  assert.ok(end && end.type === 'ended');
  assert.equal(end.reason, 'ping-restart');
  assert.match(end.error!.message, /liveness check \(DPD\)/);
  assert.equal(tm.stats.dpdSent, 1);
});

test('the gateway deletes the IKE SA: answered, then ended for a reconnect; a DELETE of our only CHILD_SA ends it too', () => {
  const { tm, gw } = setup();
  const evs = tm.receive(gw.request(IkeExchange.INFORMATIONAL, [p(PayloadType.DELETE, buildDelete({ protocol: ProtocolId.IKE, spiSize: 0, spis: [] }))], 0)[0]!, 0);
  assert.deepEqual(kinds(evs), ['send', 'ended']);
  assert.equal((evs[1] as Extract<TaskEvent, { type: 'ended' }>).reason, 'server-exit');
  const b = setup();
  const evs2 = b.tm.receive(b.gw.request(IkeExchange.INFORMATIONAL, [p(PayloadType.DELETE, buildDelete({ protocol: ProtocolId.ESP, spiSize: 4, spis: [be32(b.child.spiOut)] }))], 0)[0]!, 0);
  assert.deepEqual(kinds(evs2), ['send', 'send', 'ended'], 'our answer, our DELETE of the IKE SA, the end');
});
