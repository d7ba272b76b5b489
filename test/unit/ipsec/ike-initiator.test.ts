/**
 * The IKEv2 initiator against a scripted responder built from our own codecs and ike-keys.ts, on a simulated
 * clock: the known-answer vector of a real strongSwan exchange reproduced through the initiator's own key
 * derivation and AUTH check; happy paths (AEAD and CBC); INVALID_KE_PAYLOAD and COOKIE retries; retransmission
 * with backoff and the timeout; AUTHENTICATION_FAILED, NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE and a responder AUTH
 * that does not verify; DPD, DELETE and CREATE_CHILD_SA from the gateway; close(); IKE fragmentation (RFC 7383)
 * both ways with fragmentation = yes/accept/no, retransmission of every fragment and the gateway's fragmented
 * request answered (and its retransmission re-answered) in fragments; then the whole IkeSession
 * over in-memory UDP (port 500, then 4500 with the non-ESP marker, ESP both ways) and prepareIpsec.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { createKeyExchange, type KeyExchange } from '../../../src/crypto/dh.js';
import { espSuiteByTransforms, type EspSuite } from '../../../src/crypto/ipsec-algorithms.js';
import { VpnError } from '../../../src/errors.js';
import { prepareIpsec } from '../../../src/ipsec/backend.js';
import { parseIpsecConfig } from '../../../src/ipsec/config.js';
import { InboundSa, OutboundSa } from '../../../src/ipsec/esp-sa.js';
import { parseIdentity } from '../../../src/ipsec/ike/identity.js';
import { planIke } from '../../../src/ipsec/ike/plan.js';
import { IkeInitiator, type InitiatorConfig, type InitiatorEvent } from '../../../src/ipsec/ike/initiator.js';
import { espSaProposals, parseEspProposals, parseIkeProposals, type IkeEncr, type IkeInteg, type IkePrf } from '../../../src/ipsec/ike/proposals.js';
import { FragmentReassembler, sealFragments } from '../../../src/ipsec/ike/fragments.js';
import { openMessage, sealMessage, type SkAlgorithms } from '../../../src/ipsec/ike/sk.js';
import { deriveChildKeys, deriveIkeKeys, natDetectionHash, pskAuth, signedOctets, type IkeKeys } from '../../../src/ipsec/ike-keys.js';
import { ANY_IPV4_TS } from '../../../src/ipsec/ike/identity.js';
import type { Transport } from '../../../src/transport/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { Logger } from '../../../src/util/log.js';
import { AuthMethod, CpAttr, CpType, IkeExchange, IkeFlags, NotifyType, PayloadType, ProtocolId, TransformType, TsType } from '../../../src/wire/ike-constants.js';
import { buildIkeMessage, parseIkeMessage, type IkeHeaderFields, type IkeMessage, type IkePayload } from '../../../src/wire/ike.js';
import {
  buildAuth, buildCp, buildDelete, buildId, buildKe, buildNonce, buildNotify, buildSa, buildTs, parseAuth, parseCp, parseDelete, parseKe, parseNonce, parseNotify, parseSa,
  transformKeyLength, type Proposal, type TrafficSelector,
} from '../../../src/wire/ike-payloads.js';
import { buildIpv4, parseIpv4, parseIpv4Address } from '../../../src/wire/ipv4.js';

const h = (s: string) => Buffer.from(s, 'hex');
const PSK = Buffer.from('lab-psk-not-secret');
const GW = '192.0.2.1';
const p = (type: number, body: Uint8Array): IkePayload => ({ type, critical: false, body });
const note = (type: number, data: Uint8Array = new Uint8Array(0)) => p(PayloadType.NOTIFY, buildNotify({ protocol: 0, spi: new Uint8Array(0), type, data }));
/** A CREATE_CHILD_SA request for another CHILD_SA (no REKEY_SA): SA, Nonce, TSi, TSr. */
const newChildRequest = (): IkePayload[] => [
  p(PayloadType.SA, buildSa(espSaProposals(parseEspProposals(['aes128gcm16']), 0x51000001))),
  p(PayloadType.NONCE, buildNonce(new Uint8Array(32).fill(7))),
];
const ip4 = (s: string) => Uint8Array.from(s.split('.').map(Number));
const ts = (from: string, to: string): TrafficSelector => ({ type: TsType.IPV4_ADDR_RANGE, ipProtocol: 0, startPort: 0, endPort: 0xffff, startAddress: ip4(from), endAddress: ip4(to) });

// Every algorithm object, to map the transforms a responder picks back to keys and SK parameters.
const ALL = [
  ...parseIkeProposals(['aes128-aes192-aes256-sha1-sha256-sha384-sha512-prfsha1-prfsha256-prfsha384-prfsha512-modp2048']),
  ...parseIkeProposals(['aes128gcm16-aes192gcm16-aes256gcm16-aes128gcm8-aes192gcm12-chacha20poly1305-prfsha256-ecp256']),
];
const encrOf = (id: number, bits?: number) => ALL.flatMap((o) => o.encrs).find((e) => e.id === id && e.keyBits === bits)!;
const integOf = (id: number) => ALL.flatMap((o) => o.integs).find((e) => e.id === id)!;
const prfOf = (id: number) => ALL.flatMap((o) => o.prfs).find((e) => e.id === id)!;

interface ResponderOptions {
  psk?: Uint8Array;
  idr?: string;
  /** The key exchange group it insists on (INVALID_KE_PAYLOAD otherwise). */
  group?: number;
  cookie?: boolean;
  noIkeProposal?: boolean;
  noEspProposal?: boolean;
  tsUnacceptable?: boolean;
  /** Send an AUTH that does not verify. */
  badAuth?: boolean;
  /** Requests to ignore (by exchange type name), counted down. */
  drop?: Partial<Record<'init' | 'auth', number>>;
  vip?: string;
  /** Announce IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT. */
  fragSup?: boolean;
  /** Send our IKE_AUTH responses (and requests made with requestFragments) as SKF fragments of at most this many bytes. */
  fragLimit?: number;
}

/** A responder played with our own codecs: enough of RFC 7296 for the initiator's paths. */
class Responder {
  readonly o: ResponderOptions;
  readonly seen: IkeMessage[] = [];
  readonly raws: Uint8Array[] = [];
  spiR = randomBytes(8);
  nonceR = randomBytes(32);
  espSpi = 0xc0ffee01;
  keys: IkeKeys | undefined;
  sk: SkAlgorithms | undefined;
  prf: IkePrf | undefined;
  nonceI: Uint8Array = new Uint8Array(0);
  spiI: Uint8Array = new Uint8Array(8);
  initReq: Uint8Array | undefined;
  initResp: Uint8Array | undefined;
  esp: { suite: EspSuite; spiOut: number } | undefined;
  cookieValue = randomBytes(16);
  peerMid = 0;
  received: IkePayload[][] = [];
  inits: { group: number; cookie: boolean }[] = [];
  /** SKF datagrams received from the initiator. */
  fragmentsIn: Uint8Array[] = [];
  private defrag: FragmentReassembler | undefined;

  constructor(o: ResponderOptions = {}) {
    this.o = o;
  }

  /** The initiator's message in, our responses out. */
  handle(raw: Uint8Array): Uint8Array[] {
    const m = parseIkeMessage(raw);
    this.seen.push(m);
    this.raws.push(Uint8Array.from(raw));
    if (m.header.exchange === IkeExchange.IKE_SA_INIT) return this.init(raw, m);
    let inner: IkePayload[] | null;
    if (m.payloads.at(-1)?.type === PayloadType.SKF) {
      this.fragmentsIn.push(Uint8Array.from(raw));
      this.defrag ??= new FragmentReassembler(this.sk!, { encKey: this.keys!.skEi, integKey: this.keys!.skAi });
      const o = this.defrag.add(raw, m);
      assert.ok(o, 'the responder verifies each fragment the initiator sealed');
      if (!o.done) return [];
      inner = o.inner;
    } else {
      inner = openMessage(raw, m, this.sk!, { encKey: this.keys!.skEi, integKey: this.keys!.skAi });
    }
    assert.ok(inner, 'the responder opens what the initiator sealed');
    this.received.push(inner);
    if (m.header.flags & IkeFlags.RESPONSE) return [];
    if (m.header.exchange === IkeExchange.IKE_AUTH) return this.auth(m, inner);
    if (m.header.exchange === IkeExchange.INFORMATIONAL) return [this.seal(m.header.exchange, m.header.messageId, [], true)];
    return [];
  }

  private headerOf(exchange: number, mid: number, response: boolean, spiR: Uint8Array = this.spiR): IkeHeaderFields {
    return { spiI: this.spiI, spiR, exchange, flags: response ? IkeFlags.RESPONSE : 0, messageId: mid };
  }

  seal(exchange: number, mid: number, inner: IkePayload[], response: boolean): Uint8Array {
    return sealMessage(this.headerOf(exchange, mid, response), inner, this.sk!, { encKey: this.keys!.skEr, integKey: this.keys!.skAr });
  }

  /** Opens a response of the initiator to one of our requests. */
  openReply(raw: Uint8Array): IkePayload[] | null {
    return openMessage(raw, parseIkeMessage(raw), this.sk!, { encKey: this.keys!.skEi, integKey: this.keys!.skAi });
  }

  request(exchange: number, inner: IkePayload[]): Uint8Array {
    return this.seal(exchange, this.peerMid++, inner, false);
  }

  /** A request of ours in SKF fragments (fragLimit). */
  requestFragments(exchange: number, inner: IkePayload[]): Uint8Array[] {
    return sealFragments(this.headerOf(exchange, this.peerMid++, false), inner, this.sk!, { encKey: this.keys!.skEr, integKey: this.keys!.skAr }, this.o.fragLimit!);
  }

  /** Opens a response of the initiator sent in fragments (all of them, any order). */
  openReplyFragments(raws: Uint8Array[]): IkePayload[] | undefined {
    const r = new FragmentReassembler(this.sk!, { encKey: this.keys!.skEi, integKey: this.keys!.skAi });
    for (const raw of raws) {
      const o = r.add(raw);
      if (o?.done) return o.inner;
    }
    return undefined;
  }

  private init(raw: Uint8Array, m: IkeMessage): Uint8Array[] {
    this.spiI = Uint8Array.from(m.header.spiI);
    const pl = m.payloads;
    const ke = parseKe(pl.find((x) => x.type === PayloadType.KE)!.body);
    const hasCookie = pl[0]!.type === PayloadType.NOTIFY && parseNotify(pl[0]!.body).type === NotifyType.COOKIE;
    this.inits.push({ group: ke.group, cookie: hasCookie });
    if (this.o.drop?.init) {
      this.o.drop.init--;
      return [];
    }
    const plain = (payloads: IkePayload[]) => buildIkeMessage({ header: this.headerOf(IkeExchange.IKE_SA_INIT, 0, true, new Uint8Array(8)), payloads });
    if (this.o.cookie && !hasCookie) return [plain([note(NotifyType.COOKIE, this.cookieValue)])];
    if (hasCookie) assert.deepEqual(Buffer.from(parseNotify(pl[0]!.body).data), this.cookieValue);
    if (this.o.noIkeProposal) return [plain([note(NotifyType.NO_PROPOSAL_CHOSEN)])];
    const prop = parseSa(pl.find((x) => x.type === PayloadType.SA)!.body)[0]!;
    const first = (type: number) => prop.transforms.find((t) => t.type === type);
    const group = this.o.group ?? first(TransformType.DH)!.id;
    if (ke.group !== group) return [plain([note(NotifyType.INVALID_KE_PAYLOAD, Uint8Array.of(group >> 8, group & 0xff))])];
    const et = first(TransformType.ENCR)!;
    const encr: IkeEncr = encrOf(et.id, transformKeyLength(et));
    const it = first(TransformType.INTEG);
    const integ: IkeInteg | undefined = encr.aead ? undefined : integOf(it!.id);
    this.prf = prfOf(first(TransformType.PRF)!.id);
    this.sk = { encr, integ };
    const chosen: Proposal = { number: prop.number, protocol: ProtocolId.IKE, spi: new Uint8Array(0), transforms: [et, first(TransformType.PRF)!, ...(integ ? [it!] : []), { type: TransformType.DH, id: group, attributes: [] }] };
    const myKe = createKeyExchange(group);
    this.nonceI = Uint8Array.from(parseNonce(pl.find((x) => x.type === PayloadType.NONCE)!.body));
    this.keys = deriveIkeKeys({ prf: this.prf.hash, nonceI: this.nonceI, nonceR: this.nonceR, sharedSecret: myKe.computeSecret(ke.data), spiI: this.spiI, spiR: this.spiR, lengths: { encKey: encr.keyBytes, integKey: integ?.keyBytes ?? 0 } });
    this.initReq = Uint8Array.from(raw);
    const resp = buildIkeMessage({
      header: this.headerOf(IkeExchange.IKE_SA_INIT, 0, true),
      payloads: [p(PayloadType.SA, buildSa([chosen])), p(PayloadType.KE, buildKe({ group, data: myKe.publicValue })), p(PayloadType.NONCE, buildNonce(this.nonceR)), note(NotifyType.NAT_DETECTION_SOURCE_IP, randomBytes(20)), note(NotifyType.NAT_DETECTION_DESTINATION_IP, randomBytes(20)), ...(this.o.fragSup ? [note(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED)] : [])],
    });
    this.initResp = resp;
    return [resp];
  }

  private auth(m: IkeMessage, inner: IkePayload[]): Uint8Array[] {
    const mid = m.header.messageId;
    if (this.o.drop?.auth) {
      this.o.drop.auth--;
      return [];
    }
    const idi = inner.find((x) => x.type === PayloadType.IDi)!;
    const auth = parseAuth(inner.find((x) => x.type === PayloadType.AUTH)!.body);
    assert.equal(auth.method, AuthMethod.SHARED_KEY_MIC);
    const prf = this.prf!.hash;
    const expect = pskAuth({ prf, psk: this.o.psk ?? PSK, signedOctets: signedOctets({ message: this.initReq!, nonce: this.nonceR, prf, skP: this.keys!.skPi, idPayloadBody: idi.body }) });
    if (!expect.equals(Buffer.from(auth.data))) return [this.seal(IkeExchange.IKE_AUTH, mid, [note(NotifyType.AUTHENTICATION_FAILED)], true)];
    const idr = buildId(parseIdentity(this.o.idr ?? 'server.lab')!);
    let myAuth = pskAuth({ prf, psk: this.o.psk ?? PSK, signedOctets: signedOctets({ message: this.initResp!, nonce: this.nonceI, prf, skP: this.keys!.skPr, idPayloadBody: idr }) });
    if (this.o.badAuth) myAuth = randomBytes(myAuth.length);
    const head = [p(PayloadType.IDr, idr), p(PayloadType.AUTH, buildAuth({ method: AuthMethod.SHARED_KEY_MIC, data: myAuth }))];
    if (this.o.noEspProposal) return [this.seal(IkeExchange.IKE_AUTH, mid, [...head, note(NotifyType.NO_PROPOSAL_CHOSEN)], true)];
    if (this.o.tsUnacceptable) return [this.seal(IkeExchange.IKE_AUTH, mid, [...head, note(NotifyType.TS_UNACCEPTABLE)], true)];
    const prop = parseSa(inner.find((x) => x.type === PayloadType.SA)!.body)[0]!;
    const et = prop.transforms.find((t) => t.type === TransformType.ENCR)!;
    const it = prop.transforms.find((t) => t.type === TransformType.INTEG);
    const suite = espSuiteByTransforms({ encr: et.id, keyBits: transformKeyLength(et), integ: it?.id });
    this.esp = { suite, spiOut: Buffer.from(prop.spi).readUInt32BE(0) };
    const spi = Buffer.alloc(4);
    spi.writeUInt32BE(this.espSpi);
    const chosen: Proposal = { number: prop.number, protocol: ProtocolId.ESP, spi, transforms: [et, ...(it ? [it] : []), { type: TransformType.ESN, id: 0, attributes: [] }] };
    const vip = this.o.vip ?? '10.201.0.7';
    const cp = buildCp({ type: CpType.REPLY, attributes: [{ type: CpAttr.INTERNAL_IP4_ADDRESS, value: ip4(vip) }, { type: CpAttr.INTERNAL_IP4_DNS, value: ip4('10.200.0.53') }, { type: CpAttr.INTERNAL_DNS_DOMAIN, value: Buffer.from('lab.test') }] });
    const answer = [...head, p(PayloadType.CP, cp), p(PayloadType.SA, buildSa([chosen])), p(PayloadType.TSi, buildTs([ts(vip, vip)])), p(PayloadType.TSr, buildTs([ts('10.200.0.0', '10.200.0.255')]))];
    if (this.o.fragLimit) return sealFragments(this.headerOf(IkeExchange.IKE_AUTH, mid, true), answer, this.sk!, { encKey: this.keys!.skEr, integKey: this.keys!.skAr }, this.o.fragLimit);
    return [this.seal(IkeExchange.IKE_AUTH, mid, answer, true)];
  }

  childKeys() {
    const s = this.esp!.suite;
    return deriveChildKeys({ prf: this.prf!.hash, skD: this.keys!.skD, nonceI: this.nonceI, nonceR: this.nonceR, encKeyLen: s.encKeyBytes + s.saltBytes, integKeyLen: s.integKeyBytes });
  }
}

function config(ike: string[], esp: string[], extra: Partial<InitiatorConfig> = {}): InitiatorConfig {
  return {
    ike: parseIkeProposals(ike),
    esp: parseEspProposals(esp),
    localId: parseIdentity('client.lab')!,
    remoteId: parseIdentity('server.lab'),
    psk: PSK,
    remoteAddress: GW,
    remotePort: 500,
    tsi: [ANY_IPV4_TS],
    tsr: [ts('10.200.0.0', '10.200.0.255')],
    ...extra,
  };
}

/** Runs initiator and responder against each other until nothing moves; returns every event. */
function pump(i: IkeInitiator, r: Responder, first: InitiatorEvent[], clock: ManualClock): InitiatorEvent[] {
  const all: InitiatorEvent[] = [];
  let queue = first;
  for (let guard = 0; queue.length > 0 && guard < 50; guard++) {
    all.push(...queue);
    const next: InitiatorEvent[] = [];
    for (const ev of queue) if (ev.type === 'send') for (const resp of r.handle(ev.message)) next.push(...i.receive(resp, clock.now()));
    queue = next;
  }
  return all;
}

const ended = (evs: InitiatorEvent[]) => evs.find((e) => e.type === 'ended') as Extract<InitiatorEvent, { type: 'ended' }> | undefined;

// ------------------------------------------------------------------------------------------ the KAT

interface Kat {
  inputs: Record<'psk_ascii' | 'g_ir' | 'Ni' | 'Nr' | 'SPIi' | 'SPIr' | 'IKE_SA_INIT_request' | 'IKE_SA_INIT_response' | 'IDi_body' | 'IDr_body', string>;
  outputs: Record<'SKEYSEED' | 'SK_d' | 'SK_ai' | 'SK_ar' | 'SK_ei' | 'SK_er' | 'SK_pi' | 'SK_pr' | 'AUTH_i' | 'AUTH_r', string> & { child_keymat_aes128gcm: { encr_i_key_plus_salt: string; encr_r_key_plus_salt: string } };
}
const kat = JSON.parse(readFileSync(new URL('../../fixtures/ike/kat-ikev2-psk-modp2048.json', import.meta.url), 'utf8')) as Kat;

test('KAT (strongSwan 5.9.8, aes128-sha256-modp2048, ESP aes128gcm16): the initiator derives every key and verifies AUTH_r', () => {
  const I = kat.inputs;
  const O = kat.outputs;
  const reqKe = parseKe(parseIkeMessage(h(I.IKE_SA_INIT_request)).payloads.find((x) => x.type === PayloadType.KE)!.body);
  const fixedKe: KeyExchange = { group: 14, publicValue: reqKe.data, computeSecret: () => h(I.g_ir) };
  const queue = [h(I.SPIi), h(I.Ni)];
  const random = (n: number) => {
    const q = queue.shift();
    if (q) {
      assert.equal(q.length, n);
      return q;
    }
    return randomBytes(n);
  };
  const i = new IkeInitiator(config(['aes128-sha256-modp2048'], ['aes128gcm16'], { random, keyExchange: () => fixedKe, psk: Buffer.from(I.psk_ascii) }));
  const clock = new ManualClock(0);
  const start = i.start(0);
  const ourInit = (start[0] as { message: Uint8Array }).message;
  assert.deepEqual(Buffer.from(parseIkeMessage(ourInit).header.spiI), h(I.SPIi));
  // strongSwan's real response, as it answered strongSwan's request: the same SPIi, SA, nonce
  const evs = i.receive(h(I.IKE_SA_INIT_response), clock.now());
  const k = i.keys!;
  for (const [name, ours] of [['SKEYSEED', k.skeyseed], ['SK_d', k.skD], ['SK_ai', k.skAi], ['SK_ar', k.skAr], ['SK_ei', k.skEi], ['SK_er', k.skEr], ['SK_pi', k.skPi], ['SK_pr', k.skPr]] as const) {
    assert.equal(Buffer.from(ours).toString('hex'), O[name], name);
  }
  assert.equal(i.suite!.text, 'AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048');
  assert.deepEqual(evs.map((e) => e.type), ['float', 'send']);
  // our IKE_AUTH request opens with the KAT's SK_ei/SK_ai and its AUTH is prf(prf(PSK, pad), our request | Nr | prf(SK_pi, IDi'))
  const authReq = (evs[1] as { message: Uint8Array }).message;
  const sk: SkAlgorithms = { encr: encrOf(12, 128), integ: integOf(12) };
  const inner = openMessage(authReq, parseIkeMessage(authReq), sk, { encKey: h(O.SK_ei), integKey: h(O.SK_ai) })!;
  const idi = inner.find((x) => x.type === PayloadType.IDi)!;
  assert.equal(Buffer.from(idi.body).toString('hex'), I.IDi_body);
  const authI = parseAuth(inner.find((x) => x.type === PayloadType.AUTH)!.body).data;
  assert.deepEqual(Buffer.from(authI), pskAuth({ prf: 'sha256', psk: I.psk_ascii, signedOctets: signedOctets({ message: ourInit, nonce: h(I.Nr), prf: 'sha256', skP: h(O.SK_pi), idPayloadBody: idi.body }) }));
  // with strongSwan's own request the same function gives the KAT's AUTH_i
  assert.equal(pskAuth({ prf: 'sha256', psk: I.psk_ascii, signedOctets: signedOctets({ message: h(I.IKE_SA_INIT_request), nonce: h(I.Nr), prf: 'sha256', skP: h(O.SK_pi), idPayloadBody: h(I.IDi_body) }) }).toString('hex'), O.AUTH_i);
  // the IKE_AUTH response carries the KAT's AUTH_r: the initiator accepts it only if it computes the same value
  const sa = parseSa(inner.find((x) => x.type === PayloadType.SA)!.body)[0]!;
  const chosen: Proposal = { number: sa.number, protocol: ProtocolId.ESP, spi: h('c1234567'), transforms: [sa.transforms.find((t) => t.type === TransformType.ENCR)!, { type: TransformType.ESN, id: 0, attributes: [] }] };
  const cp = buildCp({ type: CpType.REPLY, attributes: [{ type: CpAttr.INTERNAL_IP4_ADDRESS, value: ip4('10.201.0.1') }] });
  const resp = sealMessage(
    { spiI: h(I.SPIi), spiR: h(I.SPIr), exchange: IkeExchange.IKE_AUTH, flags: IkeFlags.RESPONSE, messageId: 1 },
    [p(PayloadType.IDr, h(I.IDr_body)), p(PayloadType.AUTH, buildAuth({ method: AuthMethod.SHARED_KEY_MIC, data: h(O.AUTH_r) })), p(PayloadType.CP, cp), p(PayloadType.SA, buildSa([chosen])), p(PayloadType.TSi, buildTs([ts('10.201.0.1', '10.201.0.1')])), p(PayloadType.TSr, buildTs([ts('10.200.0.0', '10.200.0.255')]))],
    sk,
    { encKey: h(O.SK_er), integKey: h(O.SK_ar) },
  );
  const done = i.receive(resp, clock.now());
  assert.deepEqual(done.map((e) => e.type), ['established'], JSON.stringify(ended(done)?.error?.message));
  const est = i.established!;
  assert.equal(est.child.suite.name, 'aes128gcm16');
  assert.equal(est.child.spiOut, 0xc1234567);
  assert.equal(est.child.keys.initiator.encKey.toString('hex'), O.child_keymat_aes128gcm.encr_i_key_plus_salt);
  assert.equal(est.child.keys.responder.encKey.toString('hex'), O.child_keymat_aes128gcm.encr_r_key_plus_salt);
  assert.equal(est.remoteId, 'server.lab');
  assert.equal(est.cp.vip, '10.201.0.1');
});

// ------------------------------------------------------------------------------------------ exchanges

for (const [ike, esp, text] of [
  ['aes128gcm16-prfsha256-ecp256', 'aes128gcm16', 'AES_GCM_16_128/PRF_HMAC_SHA2_256/ECP_256'],
  ['aes256-sha256-modp2048', 'aes256-sha256', 'AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048'],
  ['chacha20poly1305-prfsha512-x25519', 'chacha20poly1305', 'CHACHA20_POLY1305/PRF_HMAC_SHA2_512/CURVE_25519'],
] as const) {
  test(`happy path ${ike} / ESP ${esp}: IKE_SA_INIT, float, IKE_AUTH with CP, SA, TS; child keys match the responder's`, () => {
    const clock = new ManualClock(0);
    const r = new Responder();
    const i = new IkeInitiator(config([ike], [esp]));
    const evs = pump(i, r, i.start(0), clock);
    assert.deepEqual(evs.map((e) => e.type), ['send', 'float', 'send', 'established']);
    assert.equal(i.suite!.text, text);
    const est = i.established!;
    assert.equal(est.cp.vip, '10.201.0.7');
    assert.deepEqual(est.cp.dns, ['10.200.0.53']);
    assert.deepEqual(est.cp.domains, ['lab.test']);
    assert.equal(est.child.suite.name, esp);
    assert.equal(est.child.spiOut, r.espSpi);
    assert.equal(est.child.spiIn, r.esp!.spiOut);
    const rk = r.childKeys();
    assert.deepEqual(est.child.keys.initiator, rk.initiator);
    assert.deepEqual(est.child.keys.responder, rk.responder);
    // the IKE_AUTH request: IDi N(INITIAL_CONTACT) IDr AUTH CP(REQUEST) SA TSi TSr
    assert.deepEqual(r.received[0]!.map((x) => x.type), [PayloadType.IDi, PayloadType.NOTIFY, PayloadType.IDr, PayloadType.AUTH, PayloadType.CP, PayloadType.SA, PayloadType.TSi, PayloadType.TSr]);
    const cp = parseCp(r.received[0]![4]!.body);
    assert.equal(cp.type, CpType.REQUEST);
    assert.deepEqual(cp.attributes.map((a) => a.type), [CpAttr.INTERNAL_IP4_ADDRESS, CpAttr.INTERNAL_IP4_DNS, CpAttr.INTERNAL_DNS_DOMAIN]);
    // IKE_SA_INIT: NAT-D source is a fake (never our real address), destination hashes the gateway
    const init = r.seen[0]!;
    assert.equal(init.header.flags, IkeFlags.INITIATOR);
    const types = init.payloads.map((x) => (x.type === PayloadType.NOTIFY ? parseNotify(x.body).type : x.type));
    assert.deepEqual(types, [PayloadType.SA, PayloadType.KE, PayloadType.NONCE, NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED]);
    assert.equal(i.deadline(), undefined, 'nothing outstanding');
  });
}

test('an IPv6 gateway: the NAT-D hashes take its 16-byte address, and the fake source is [::]:0 (16 zero bytes)', () => {
  const gw6 = '2001:db8:4::2';
  const i = new IkeInitiator(config(['aes128-sha256-modp2048'], ['aes128gcm16'], { remoteAddress: gw6, remotePort: 500 }));
  const send = i.start(0).find((e) => e.type === 'send') as Extract<InitiatorEvent, { type: 'send' }>;
  const m = parseIkeMessage(send.message);
  const nd = (t: number) => Buffer.from(m.payloads.map((x) => (x.type === PayloadType.NOTIFY ? parseNotify(x.body) : undefined)).find((n) => n?.type === t)!.data);
  const spiI = m.header.spiI;
  const zeroSpi = new Uint8Array(8);
  const gwBytes = Buffer.from([0x20, 0x01, 0x0d, 0xb8, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
  assert.deepEqual(nd(NotifyType.NAT_DETECTION_DESTINATION_IP), natDetectionHash(spiI, zeroSpi, gwBytes, 500));
  assert.notDeepEqual(nd(NotifyType.NAT_DETECTION_DESTINATION_IP), natDetectionHash(spiI, zeroSpi, gwBytes.subarray(12), 500), 'not 4 bytes of it');
  assert.deepEqual(nd(NotifyType.NAT_DETECTION_SOURCE_IP), natDetectionHash(spiI, zeroSpi, new Uint8Array(16), 0));
});

test('INVALID_KE_PAYLOAD: retried with the group asked for (same SPIi, MID 0); a group we never offered is NO_SHARED_CIPHER', () => {
  const clock = new ManualClock(0);
  const r = new Responder({ group: 14 });
  const i = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256-modp2048', 'aes128-sha256-x25519'], ['aes128gcm16']));
  const evs = pump(i, r, i.start(0), clock);
  assert.equal(evs.at(-1)!.type, 'established');
  assert.deepEqual(r.inits.map((x) => x.group), [19, 14]);
  assert.deepEqual(Buffer.from(r.seen[0]!.header.spiI), Buffer.from(r.seen[1]!.header.spiI));
  assert.equal(r.seen[1]!.header.messageId, 0);
  // the retry offers only proposals that hold group 14, with 14 first
  const sa = parseSa(r.seen[1]!.payloads.find((x) => x.type === PayloadType.SA)!.body);
  assert.equal(sa.length, 1);
  assert.deepEqual(sa[0]!.transforms.filter((t) => t.type === TransformType.DH).map((t) => t.id), [14, 19]);
  assert.equal(i.suite!.dhGroup, 14);

  // a gateway that refuses the very group it asks for: NO_SHARED_CIPHER once it said so twice (not a hang)
  const broken = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16']));
  const invalid19 = (m: Uint8Array) => buildIkeMessage({ header: { spiI: parseIkeMessage(m).header.spiI, spiR: new Uint8Array(8), exchange: IkeExchange.IKE_SA_INIT, flags: IkeFlags.RESPONSE, messageId: 0 }, payloads: [note(NotifyType.INVALID_KE_PAYLOAD, Uint8Array.of(0, 19))] });
  const req = (broken.start(0)[0] as { message: Uint8Array }).message;
  assert.deepEqual(broken.receive(invalid19(req), 0), [], 'the first one may be stale: ignored');
  const e0 = ended(broken.receive(invalid19(req), 0))!;
  assert.equal(e0.error?.code, 'NO_SHARED_CIPHER');
  assert.match(e0.error!.message, /refuses our ECP-256 key exchange although it asks for that group/);

  const r2 = new Responder({ group: 21 });
  const i2 = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16']));
  const e = ended(pump(i2, r2, i2.start(0), clock))!;
  assert.equal(e.error?.code, 'NO_SHARED_CIPHER');
  assert.match(e.error!.message, /group 21 .*aes128gcm16-prfsha256-ecp256/);
});

test('COOKIE: IKE_SA_INIT again with N(COOKIE) first, same SPIi and nonce; AUTH covers the request that was accepted', () => {
  const clock = new ManualClock(0);
  const r = new Responder({ cookie: true });
  const i = new IkeInitiator(config(['aes256gcm16-prfsha256-x25519'], ['aes256gcm16']));
  const evs = pump(i, r, i.start(0), clock);
  assert.equal(evs.at(-1)!.type, 'established', JSON.stringify(ended(evs)?.error?.message));
  assert.deepEqual(r.inits, [{ group: 31, cookie: false }, { group: 31, cookie: true }]);
  const nonce = (m: IkeMessage) => Buffer.from(m.payloads.find((x) => x.type === PayloadType.NONCE)!.body).toString('hex');
  assert.equal(nonce(r.seen[0]!), nonce(r.seen[1]!));
  assert.deepEqual(Buffer.from(r.seen[0]!.header.spiI), Buffer.from(r.seen[1]!.header.spiI));
});

test('retransmission: the same bytes after 1, 2, 4, 8, 8, 8 s, then HANDSHAKE_TIMEOUT 39 s after the first send', () => {
  const clock = new ManualClock(0);
  const i = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16']));
  const first = i.start(0);
  const sent: { at: number; bytes: string }[] = [{ at: 0, bytes: Buffer.from((first[0] as { message: Uint8Array }).message).toString('hex') }];
  let end: ReturnType<typeof ended>;
  for (let t = 0; t <= 60_000 && !end; t += 250) {
    clock.advance(t - clock.now());
    const d = i.deadline();
    if (d === undefined || d > t) continue;
    const evs = i.onTimer(t);
    for (const e of evs) if (e.type === 'send') sent.push({ at: t, bytes: Buffer.from(e.message).toString('hex') });
    end = ended(evs);
  }
  assert.deepEqual(sent.map((s) => s.at), [0, 1000, 3000, 7000, 15000, 23000, 31000]);
  assert.ok(sent.every((s) => s.bytes === sent[0]!.bytes), 'retransmissions are byte-identical');
  assert.equal(clock.now(), 39_000);
  assert.equal(end?.reason, 'handshake-timeout');
  assert.equal(end?.error?.code, 'HANDSHAKE_TIMEOUT');
  assert.match(end!.error!.message, /no answer to IKE_SA_INIT from 192\.0\.2\.1:500 after 7 transmissions over 39 s/);
  assert.equal(i.deadline(), undefined);
});

test('a lost IKE_AUTH is retransmitted and then answered; a late duplicate response is ignored', () => {
  const clock = new ManualClock(0);
  const r = new Responder({ drop: { auth: 1 } });
  const i = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16']));
  const evs = pump(i, r, i.start(0), clock);
  assert.equal(evs.at(-1)!.type, 'send', 'IKE_AUTH went unanswered');
  clock.advance(1000);
  const again = i.onTimer(clock.now());
  assert.equal(again.length, 1);
  assert.deepEqual(Buffer.from((again[0] as { message: Uint8Array }).message), Buffer.from((evs.at(-1) as { message: Uint8Array }).message));
  const done = pump(i, r, again, clock);
  assert.equal(done.at(-1)!.type, 'established');
  // the same response once more (a duplicate on the path): nothing happens
  const dup = r.handle(r.raws.at(-1)!);
  assert.deepEqual(i.receive(dup[0]!, clock.now()), []);
});

test('AUTHENTICATION_FAILED from the gateway (wrong PSK) ends with AUTH_FAILED', () => {
  const clock = new ManualClock(0);
  const r = new Responder({ psk: Buffer.from('another-psk') });
  const i = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16']));
  const e = ended(pump(i, r, i.start(0), clock))!;
  assert.equal(e.reason, 'auth-failed');
  assert.equal(e.error?.code, 'AUTH_FAILED');
  assert.match(e.error!.message, /AUTHENTICATION_FAILED.*'client\.lab'/);
  assert.equal(i.state, 'ended');
});

test('NO_PROPOSAL_CHOSEN: in IKE_SA_INIT and for the CHILD_SA, NO_SHARED_CIPHER naming what we offered', () => {
  const clock = new ManualClock(0);
  const i = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256', 'aes256-sha256-modp2048'], ['aes128gcm16']));
  const e = ended(pump(i, new Responder({ noIkeProposal: true }), i.start(0), clock))!;
  assert.equal(e.error?.code, 'NO_SHARED_CIPHER');
  assert.match(e.error!.message, /IKE proposals .*we offered aes128gcm16-prfsha256-ecp256, aes256-sha256-modp2048/);

  const r = new Responder({ noEspProposal: true });
  const i2 = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes256gcm16', 'aes256-sha256']));
  const evs = pump(i2, r, i2.start(0), clock);
  const e2 = ended(evs)!;
  assert.equal(e2.error?.code, 'NO_SHARED_CIPHER');
  assert.match(e2.error!.message, /ESP proposals .*we offered aes256gcm16, aes256-sha256/);
  // the IKE SA was up on the gateway's side: we deleted it
  const last = r.received.at(-1)!;
  assert.equal(last[0]!.type, PayloadType.DELETE);
  assert.equal(parseDelete(last[0]!.body).protocol, ProtocolId.IKE);
});

test('TS_UNACCEPTABLE ends with its own code and a DELETE of the IKE SA', () => {
  const clock = new ManualClock(0);
  const r = new Responder({ tsUnacceptable: true });
  const i = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16']));
  const e = ended(pump(i, r, i.start(0), clock))!;
  assert.equal(e.error?.code, 'TS_UNACCEPTABLE');
  assert.match(e.error!.message, /TSr 10\.200\.0\.0\/24/);
  assert.equal(parseDelete(r.received.at(-1)![0]!.body).protocol, ProtocolId.IKE);
});

test("a responder AUTH that does not verify, or an unexpected IDr, is AUTH_FAILED", () => {
  const clock = new ManualClock(0);
  const i = new IkeInitiator(config(['aes128-sha256-modp2048'], ['aes128gcm16']));
  const e = ended(pump(i, new Responder({ badAuth: true }), i.start(0), clock))!;
  assert.equal(e.reason, 'auth-failed');
  assert.equal(e.error?.code, 'AUTH_FAILED');
  assert.match(e.error!.message, /did not prove knowledge of our pre-shared key/);
  assert.equal(i.established, undefined);

  const i2 = new IkeInitiator(config(['aes128-sha256-modp2048'], ['aes128gcm16']));
  const e2 = ended(pump(i2, new Responder({ idr: 'evil.lab' }), i2.start(0), clock))!;
  assert.equal(e2.error?.code, 'AUTH_FAILED');
  assert.match(e2.error!.message, /identified itself as 'evil\.lab', but remote id 'server\.lab'/);
});

test('after IKE_AUTH: DPD answered empty (and a retransmitted one byte-identically), a second CHILD_SA refused, DELETE ends the SA', () => {
  const clock = new ManualClock(0);
  const r = new Responder();
  const i = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16']));
  pump(i, r, i.start(0), clock);
  const dpd = r.request(IkeExchange.INFORMATIONAL, []);
  const a = i.receive(dpd, clock.now());
  assert.equal(a.length, 1);
  const reply = (a[0] as { message: Uint8Array }).message;
  const hdr = parseIkeMessage(reply).header;
  assert.equal(hdr.flags, IkeFlags.INITIATOR | IkeFlags.RESPONSE);
  assert.equal(hdr.messageId, 0);
  assert.deepEqual(r.openReply(reply), []);
  const b = i.receive(dpd, clock.now());
  assert.deepEqual(Buffer.from((b[0] as { message: Uint8Array }).message), Buffer.from(reply), 'the cached response, not a new one');

  const rekey = i.receive(r.request(IkeExchange.CREATE_CHILD_SA, newChildRequest()), clock.now());
  const refusal = r.openReply((rekey[0] as { message: Uint8Array }).message)!;
  assert.equal(parseNotify(refusal[0]!.body).type, NotifyType.NO_ADDITIONAL_SAS);

  const del = i.receive(r.request(IkeExchange.INFORMATIONAL, [p(PayloadType.DELETE, buildDelete({ protocol: ProtocolId.IKE, spiSize: 0, spis: [] }))]), clock.now());
  assert.deepEqual(del.map((e) => e.type), ['send', 'ended']);
  assert.equal(ended(del)!.reason, 'server-exit');
});

test('a DELETE of our CHILD_SA is answered with our inbound SPI, then the IKE SA is deleted too', () => {
  const clock = new ManualClock(0);
  const r = new Responder();
  const i = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16']));
  pump(i, r, i.start(0), clock);
  const spi = Buffer.alloc(4);
  spi.writeUInt32BE(r.espSpi);
  const evs = i.receive(r.request(IkeExchange.INFORMATIONAL, [p(PayloadType.DELETE, buildDelete({ protocol: ProtocolId.ESP, spiSize: 4, spis: [spi] }))]), clock.now());
  assert.deepEqual(evs.map((e) => e.type), ['send', 'send', 'ended']);
  const d = parseDelete(r.openReply((evs[0] as { message: Uint8Array }).message)![0]!.body);
  assert.equal(Buffer.from(d.spis[0]!).readUInt32BE(0), i.established!.child.spiIn);
  const d2 = parseDelete(r.openReply((evs[1] as { message: Uint8Array }).message)![0]!.body);
  assert.equal(d2.protocol, ProtocolId.IKE);
});

test('close(): DELETE of the IKE SA (MID 2), ended once the gateway answers', () => {
  const clock = new ManualClock(0);
  const r = new Responder();
  const i = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16']));
  pump(i, r, i.start(0), clock);
  const evs = pump(i, r, i.close(clock.now()), clock);
  assert.deepEqual(evs.map((e) => e.type), ['send', 'ended']);
  assert.equal(ended(evs)!.reason, 'user');
  assert.equal(r.seen.at(-1)!.header.messageId, 2);
  assert.equal(parseDelete(r.received.at(-1)![0]!.body).protocol, ProtocolId.IKE);
});

test('garbage, foreign SPIs and tampered messages are dropped without ending anything', () => {
  const clock = new ManualClock(0);
  const r = new Responder({ drop: { auth: 1 } });
  const i = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16']));
  pump(i, r, i.start(0), clock);
  assert.deepEqual(i.receive(Uint8Array.of(1, 2, 3), 0), []);
  assert.deepEqual(i.receive(new Uint8Array(28), 0), []);
  const dpd = Uint8Array.from(r.request(IkeExchange.INFORMATIONAL, []));
  dpd[dpd.length - 1]! ^= 1;
  assert.deepEqual(i.receive(dpd, 0), []);
  assert.equal(i.state, 'auth');
});

// ------------------------------------------------------------------------------------------ fragmentation (RFC 7383)

const sends = (evs: InitiatorEvent[]) => evs.filter((e): e is Extract<InitiatorEvent, { type: 'send' }> => e.type === 'send').map((e) => e.message);
const lastPayload = (m: Uint8Array) => parseIkeMessage(m).payloads.at(-1)!.type;
const initNotifies = (r: Responder) => r.seen[0]!.payloads.filter((x) => x.type === PayloadType.NOTIFY).map((x) => parseNotify(x.body).type);

for (const [ike, esp] of [['aes128gcm16-prfsha256-ecp256', 'aes128gcm16'], ['aes256-sha256-modp2048', 'aes256-sha256']] as const) {
  test(`fragmentation (${ike}): our IKE_AUTH request and the gateway's response both in SKF fragments; established`, () => {
    const clock = new ManualClock(0);
    const r = new Responder({ fragSup: true, fragLimit: 150 });
    const lines: string[] = [];
    const logger = new Logger('debug', 'json', { write: (l) => lines.push((JSON.parse(l) as { msg: string }).msg) });
    const i = new IkeInitiator(config([ike], [esp], { fragmentLimit: 160, logger }));
    const evs = pump(i, r, i.start(0), clock);
    assert.equal(evs.at(-1)!.type, 'established', JSON.stringify(ended(evs)?.error?.message));
    assert.ok(initNotifies(r).includes(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED), 'announced in IKE_SA_INIT');
    assert.ok(r.fragmentsIn.length >= 2, `${r.fragmentsIn.length} fragments`);
    for (const f of r.fragmentsIn) assert.ok(f.length <= 160, `${f.length} bytes`);
    assert.deepEqual(r.received[0]!.map((x) => x.type), [PayloadType.IDi, PayloadType.NOTIFY, PayloadType.IDr, PayloadType.AUTH, PayloadType.CP, PayloadType.SA, PayloadType.TSi, PayloadType.TSr]);
    assert.ok(lines.some((l) => new RegExp(`^sending IKE_AUTH request 1 in ${r.fragmentsIn.length} fragments`).test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /^received fragment 1 of \d+ of IKE_AUTH response 1/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /^received fragment \d+ of \d+, reassembled IKE_AUTH response 1 \(\d+ bytes\)/.test(l)), lines.join('\n'));
    assert.equal(i.established!.cp.vip, '10.201.0.7');
  });
}

test('fragmentation: nothing is fragmented when it fits, or when the gateway did not announce support', () => {
  const clock = new ManualClock(0);
  const r1 = new Responder({ fragSup: true });
  const i1 = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16']));
  assert.equal(pump(i1, r1, i1.start(0), clock).at(-1)!.type, 'established');
  assert.equal(r1.fragmentsIn.length, 0, 'the PSK IKE_AUTH fits in 1280 bytes');
  const r2 = new Responder();
  const i2 = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16'], { fragmentLimit: 160 }));
  assert.equal(pump(i2, r2, i2.start(0), clock).at(-1)!.type, 'established');
  assert.equal(r2.fragmentsIn.length, 0, 'no FRAG_SUP from the gateway: sent whole');
});

test('fragmentation = no: no FRAGMENTATION_SUPPORTED, no fragments sent, and fragments from the gateway are dropped', () => {
  const clock = new ManualClock(0);
  const r = new Responder({ fragSup: true, fragLimit: 150 });
  const i = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16'], { fragmentation: 'no', fragmentLimit: 160 }));
  const evs = pump(i, r, i.start(0), clock);
  assert.ok(!initNotifies(r).includes(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED));
  assert.equal(r.fragmentsIn.length, 0);
  assert.equal(r.received.length, 1, 'the request went whole');
  assert.equal(evs.at(-1)!.type, 'send', 'the fragmented response was not taken');
  assert.equal(i.state, 'auth');
});

test('fragmentation = accept: announced, our request goes whole, the fragmented response is taken', () => {
  const clock = new ManualClock(0);
  const r = new Responder({ fragSup: true, fragLimit: 150 });
  const i = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16'], { fragmentation: 'accept', fragmentLimit: 160 }));
  const evs = pump(i, r, i.start(0), clock);
  assert.ok(initNotifies(r).includes(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED));
  assert.equal(r.fragmentsIn.length, 0);
  assert.equal(evs.at(-1)!.type, 'established');
});

test('fragmentation: a lost fragmented IKE_AUTH is retransmitted as all its fragments, byte-identical', () => {
  const clock = new ManualClock(0);
  const r = new Responder({ fragSup: true, drop: { auth: 1 } });
  const i = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16'], { fragmentLimit: 160 }));
  const evs = pump(i, r, i.start(0), clock);
  const first = sends(evs).filter((m) => lastPayload(m) === PayloadType.SKF);
  assert.ok(first.length >= 2);
  assert.equal(i.state, 'auth');
  clock.advance(1000);
  const again = i.onTimer(clock.now());
  assert.deepEqual(sends(again).map((m) => Buffer.from(m).toString('hex')), first.map((m) => Buffer.from(m).toString('hex')));
  assert.equal(pump(i, r, again, clock).at(-1)!.type, 'established');
});

test("fragmentation: the gateway's fragmented request is reassembled, answered in fragments, and its retransmission gets all of them once", () => {
  const clock = new ManualClock(0);
  const r = new Responder({ fragSup: true, fragLimit: 100 });
  const i = new IkeInitiator(config(['aes128gcm16-prfsha256-ecp256'], ['aes128gcm16'], { fragmentLimit: 64 }));
  assert.equal(pump(i, r, i.start(0), clock).at(-1)!.type, 'established');
  const req = r.requestFragments(IkeExchange.CREATE_CHILD_SA, [...newChildRequest(), note(40960, randomBytes(100))]);
  assert.ok(req.length >= 2);
  const outs = req.map((f) => i.receive(f, clock.now()));
  assert.ok(outs.slice(0, -1).every((o) => o.length === 0), 'nothing until the request is whole');
  const answer = sends(outs.at(-1)!);
  assert.ok(answer.length >= 2, `our response in ${answer.length} fragments`);
  for (const f of answer) assert.ok(f.length <= 64 && lastPayload(f) === PayloadType.SKF);
  const opened = r.openReplyFragments(answer)!;
  assert.equal(parseNotify(opened[0]!.body).type, NotifyType.NO_ADDITIONAL_SAS);
  // the gateway did not get it and retransmits every fragment: we answer once, with every cached fragment
  const again = req.map((f) => sends(i.receive(f, clock.now())));
  assert.deepEqual(again[0]!.map((m) => Buffer.from(m).toString('hex')), answer.map((m) => Buffer.from(m).toString('hex')));
  assert.ok(again.slice(1).every((x) => x.length === 0));
  // a tampered first fragment of the retransmission gets nothing
  const bad = Uint8Array.from(req[0]!);
  bad[bad.length - 1]! ^= 1;
  assert.deepEqual(i.receive(bad, clock.now()), []);
});

// ------------------------------------------------------------------------------------------ IkeSession

class MemTransport extends EventEmitter implements Transport {
  readonly kind = 'udp' as const;
  readonly sent: Uint8Array[] = [];
  closed = false;
  localAddress = '198.51.100.7';
  constructor(
    readonly port: number,
    private readonly peer: (t: MemTransport, d: Uint8Array) => void,
  ) {
    super();
  }
  async connect(): Promise<void> {}
  send(d: Uint8Array): void {
    const c = Uint8Array.from(d);
    this.sent.push(c);
    queueMicrotask(() => this.peer(this, c));
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  deliver(b: Uint8Array): void {
    this.emit('packet', Buffer.from(b));
  }
}

const SWANCTL = `connections {
  home {
    remote_addrs = ${GW}
    vips = 0.0.0.0
    proposals = aes128gcm16-prfsha256-ecp256
    local {
      auth = psk
      id = client.lab
    }
    remote {
      auth = psk
      id = server.lab
    }
    children {
      net {
        remote_ts = 10.200.0.0/24
        esp_proposals = aes128gcm16
      }
    }
  }
}
secrets {
  ike-other {
    id = someone.else
    secret = wrong
  }
  ike-lab {
    id-1 = server.lab
    id-2 = client.lab
    secret = "lab-psk-not-secret"
  }
}
`;

test('IkeSession: IKE_SA_INIT to 500, then 4500 with the marker; up with the VIP and routes; ESP both ways; close() deletes', async () => {
  const clock = new ManualClock(0);
  const r = new Responder();
  let esp: { tx: OutboundSa; rx: InboundSa } | undefined;
  const transports: MemTransport[] = [];
  const espIn: Uint8Array[] = [];
  const peer = (t: MemTransport, d: Uint8Array) => {
    let ike = d;
    if (t.port === 4500) {
      if (d.length === 1) return; // keepalive
      if (Buffer.from(d).readUInt32BE(0) !== 0) {
        espIn.push(d);
        return;
      }
      ike = d.subarray(4);
    }
    for (const resp of r.handle(ike)) t.deliver(t.port === 4500 ? Buffer.concat([Buffer.alloc(4), resp]) : resp);
  };
  const { backend, warnings } = await prepareIpsec({
    config: parseIpsecConfig(SWANCTL, 'home.conf'),
    clock,
    createTransport: (_k, o) => {
      const t = new MemTransport(o.port, peer);
      assert.equal(o.host, GW);
      transports.push(t);
      return t;
    },
  });
  assert.deepEqual(warnings, []);
  const s = backend.createSession(0);
  const got: Uint8Array[] = [];
  s.onReceive((pk) => got.push(pk));
  const closed: string[] = [];
  s.watch({ closed: (e) => closed.push(`${e.reason}:${e.error?.code}`) });
  await s.start();
  assert.deepEqual(transports.map((t) => t.port), [500, 4500]);
  assert.ok(transports[0]!.closed, 'the port-500 socket is closed after the move');
  assert.equal(Buffer.from(transports[0]!.sent[0]!).readUInt32BE(0) !== 0, true, 'no marker on port 500');
  assert.deepEqual([...transports[1]!.sent[0]!.subarray(0, 4)], [0, 0, 0, 0], 'the non-ESP marker on port 4500');
  const info = s.sessionInfo!;
  assert.equal(info.protocol, 'ipsec');
  assert.equal(info.server.port, 4500);
  assert.equal(info.cipher, 'aes128gcm16');
  assert.deepEqual(info.link.routes, ['10.200.0.0/24']);
  assert.equal(info.link.address, '10.201.0.7');
  assert.deepEqual(info.link.dns, ['10.200.0.53']);
  assert.deepEqual(info.link.domains, ['lab.test']);
  assert.equal(info.details.auth, 'psk');
  assert.equal(info.details.proposal, 'AES_GCM_16_128/PRF_HMAC_SHA2_256/ECP_256');
  assert.equal(info.details.dhGroup, 'ECP-256');
  assert.equal(info.details.tsr, '10.200.0.0/24');
  assert.match(String(info.details.ikeSpiI), /^[0-9a-f]{16}$/);
  // ESP with the responder's side of the child keys
  const k = r.childKeys();
  esp = {
    tx: new OutboundSa({ spi: r.esp!.spiOut, suite: r.esp!.suite, encKey: k.responder.encKey, integKey: k.responder.integKey, now: 0 }),
    rx: new InboundSa({ spi: r.espSpi, suite: r.esp!.suite, encKey: k.initiator.encKey, integKey: k.initiator.integKey, now: 0 }),
  };
  const pkt = (src: string, dst: string) => buildIpv4({ src: parseIpv4Address(src), dst: parseIpv4Address(dst), protocol: 17, ttl: 64, id: 1 }, new Uint8Array(30).fill(7));
  s.send(pkt('10.201.0.7', '10.200.0.5'));
  await new Promise((res) => setImmediate(res));
  const opened = esp.rx.open(espIn[0]!);
  assert.ok('packet' in opened, JSON.stringify(opened));
  assert.equal(parseIpv4(opened.packet).dst, parseIpv4Address('10.200.0.5'));
  transports[1]!.deliver(esp.tx.seal(pkt('10.200.0.5', '10.201.0.7')));
  assert.equal(got.length, 1);
  assert.equal(s.stats().packetsIn, 1);
  // the gateway's DPD over 4500 is answered through the ESP path's demultiplexer
  const before = transports[1]!.sent.length;
  transports[1]!.deliver(Buffer.concat([Buffer.alloc(4), r.request(IkeExchange.INFORMATIONAL, [])]));
  assert.equal(transports[1]!.sent.length, before + 1);
  assert.deepEqual(r.openReply(transports[1]!.sent.at(-1)!.subarray(4)), []);
  clock.advance(20_000);
  assert.deepEqual([...transports[1]!.sent.at(-1)!], [0xff], 'NAT keepalive after 20 s of silence');
  await s.close();
  assert.equal(parseDelete(r.received.at(-1)![0]!.body).protocol, ProtocolId.IKE, 'close() sent a DELETE');
  assert.deepEqual(closed, ['user:undefined']);
});

test('IkeSession: a wrong PSK fails start() with AUTH_FAILED, which the backend treats as final', async () => {
  const clock = new ManualClock(0);
  const r = new Responder({ psk: Buffer.from('the-real-one') });
  const { backend } = await prepareIpsec({
    config: parseIpsecConfig(SWANCTL, 'home.conf'),
    clock,
    createTransport: (_k, o) =>
      new MemTransport(o.port, (t, d) => {
        const ike = t.port === 4500 ? d.subarray(4) : d;
        for (const resp of r.handle(ike)) t.deliver(t.port === 4500 ? Buffer.concat([Buffer.alloc(4), resp]) : resp);
      }),
  });
  const s = backend.createSession(0);
  const err = await s.start().then(
    () => undefined,
    (e: unknown) => e as VpnError,
  );
  assert.equal(err?.code, 'AUTH_FAILED');
  assert.ok(backend.isFatal('auth-failed', err));
  assert.ok(backend.isFatal('protocol-error', new VpnError('NO_SHARED_CIPHER', 'x')));
  assert.ok(backend.isFatal('protocol-error', new VpnError('TS_UNACCEPTABLE', 'x')));
  assert.ok(!backend.isFatal('handshake-timeout', new VpnError('HANDSHAKE_TIMEOUT', 'x')));
  // after a working session, a gateway still loading its configuration is tried again; a refused login is not
  assert.ok(!backend.isFatal('protocol-error', new VpnError('NO_SHARED_CIPHER', 'x'), true));
  assert.ok(!backend.isFatal('protocol-error', new VpnError('TS_UNACCEPTABLE', 'x'), true));
  assert.ok(backend.isFatal('auth-failed', new VpnError('AUTH_FAILED', 'x'), true));
});

test('prepareIpsec: PSK by strongSwan matching rules; unsupported authentication is PROFILE_UNSUPPORTED with file:line', async () => {
  const cfg = (text: string) => parseIpsecConfig(text, 'c.conf');
  // ids listed: either id matches; no ids: any; the best match wins
  const a = await prepareIpsec({ config: cfg(SWANCTL.replace('id-2 = client.lab\n', '')) });
  assert.ok(a.backend);
  const anyKey = SWANCTL.replace(/ike-lab \{[^}]*\}/, 'ike-any {\n    secret = 0x6c61622d70736b2d6e6f742d736563726574\n  }');
  const b = await prepareIpsec({ config: cfg(anyKey) });
  assert.ok(b.backend);
  await assert.rejects(prepareIpsec({ config: cfg(SWANCTL.replace(/ike-lab \{[^}]*\}/, '')) }), (e: VpnError) => e.code === 'PROFILE_SYNTAX' && /no pre-shared key for connection home/.test(e.message));
  await assert.rejects(prepareIpsec({ config: cfg(SWANCTL.replace('auth = psk\n      id = client.lab', 'auth = eap-mschapv2\n      id = client.lab')) }), (e: VpnError) => e.code === 'PROFILE_UNSUPPORTED' && /c\.conf:\d+: .*EAP authentication is not supported yet/.test(e.message));
  await assert.rejects(prepareIpsec({ config: cfg(SWANCTL.replace('auth = psk\n      id = server.lab', 'auth = pubkey\n      id = server.lab')) }), (e: VpnError) => e.code === 'PROFILE_UNSUPPORTED' && /certificate/.test(e.message));
  await assert.rejects(prepareIpsec({ config: cfg(SWANCTL.replace('aes128gcm16-prfsha256-ecp256', 'aes128-sha256-modp1024')) }), (e: VpnError) => e.code === 'ALGORITHM_UNSUPPORTED' && /c\.conf:\d+: IKE proposal 'aes128-sha256-modp1024': algorithm 'modp1024'/.test(e.message));
  const noVip = await prepareIpsec({ config: cfg(SWANCTL.replace('    vips = 0.0.0.0\n', '')) });
  assert.match(noVip.warnings.join('\n'), /sets no vips; requesting a virtual IP anyway/);
});

test('planIke: fragmentation defaults to yes, force acts as yes with a note, accept and no pass through', () => {
  const plan = (extra: string) => {
    const config = parseIpsecConfig(SWANCTL.replace('    vips = 0.0.0.0\n', `    vips = 0.0.0.0\n${extra}`), 'c.conf');
    const warnings: string[] = [];
    const conn = [...config.connections.values()][0]!;
    return { p: planIke(config, conn, warnings), warnings };
  };
  assert.equal(plan('').p.fragmentation, 'yes');
  const forced = plan('    fragmentation = force\n');
  assert.equal(forced.p.fragmentation, 'yes');
  assert.match(forced.warnings.join('\n'), /c\.conf:\d+: fragmentation = force acts as yes with IKEv2/);
  assert.equal(plan('    fragmentation = accept\n').p.fragmentation, 'accept');
  assert.equal(plan('    fragmentation = no\n').p.fragmentation, 'no');
});
