/**
 * The CREATE_CHILD_SA exchanges that rekey (RFC 7296 §1.3.2, §1.3.3, §2.17, §2.18), both ways, as pure steps:
 * the request we send and what its response makes, and our answer to the gateway's request and what it makes.
 * Which SA is current, collisions and deletes are the task manager's business (task-manager.ts).
 *
 *   CHILD_SA:  N(REKEY_SA, ESP, the old SA's inbound SPI of the requester) SA Ni [KEi] TSi TSr
 *              -> SA Nr [KEr] TSi TSr;  KEYMAT = prf+(SK_d, [g^ir |] Ni | Nr), "i" = the requester
 *   IKE SA:    SA(IKE, the requester's new 8-byte SPI) Ni KEi  ->  SA(the other new SPI) Nr KEr;
 *              SKEYSEED = prf(SK_d(old), g^ir | Ni | Nr), keys = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) with SPIi
 *              the requester's new SPI: the requester is the new IKE SA's original initiator.
 *
 * strongSwan keys a rekeyed IKE SA with the old SA's PRF throughout (keymat_v2.c); we offer and accept the
 * proposals of the connection, whose PRF is the old one in practice, and use the old PRF as strongSwan does.
 */
import { createKeyExchange as defaultKeyExchange, type KeyExchange } from '../../crypto/dh.js';
import type { Logger } from '../../util/log.js';
import { VpnError } from '../../errors.js';
import { NotifyType, PayloadType, ProtocolId } from '../../wire/ike-constants.js';
import type { IkePayload } from '../../wire/ike.js';
import { buildKe, buildNonce, buildSa, buildTs, parseKe, parseNonce, parseSa, parseTs, type KePayload, type Proposal, type TrafficSelector } from '../../wire/ike-payloads.js';
import { deriveChildKeys, deriveRekeyedIkeKeys, type ChildDirectionKeys } from '../ike-keys.js';
import type { EspSuite } from '../../crypto/ipsec-algorithms.js';
import { Requests, type RetransmitPolicy } from './exchange.js';
import { IkeSa } from './ike-sa.js';
import { firstOfType, notify, payload } from './messages.js';
import { chooseEspSuite, chooseIkeSuite, espOffersWith, espSaProposals, ikeSaProposals, type EspOffer, type IkeOffer, type IkeSuite, type SentIkeProposals } from './proposals.js';
import { selectEspProposal, selectIkeProposal } from './select.js';

/** A CHILD_SA as the session installs it: our inbound and outbound SPIs and keys. */
export interface ChildSaSpec {
  suite: EspSuite;
  esn: boolean;
  spiIn: number;
  spiOut: number;
  inbound: ChildDirectionKeys;
  outbound: ChildDirectionKeys;
  tsi: TrafficSelector[];
  tsr: TrafficSelector[];
}

const be32 = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
const group16 = (g: number) => Uint8Array.of(g >> 8, g & 0xff);

/** A CHILD_SA a rekey made, with the nonces of its exchange (collisions compare them). */
export interface RekeyedChild extends ChildSaSpec {
  nonces: readonly Uint8Array[];
}

/** The answer to a request of the gateway: the reply payloads, and what it made unless it is a refusal. */
export type Answer<T> = { reply: IkePayload[]; made?: T };

// ---------------------------------------------------------------- CHILD_SA, ours

export interface ChildRekeyRequest {
  readonly inner: IkePayload[];
  readonly nonce: Uint8Array;
  readonly spi: number;
  readonly ke?: KeyExchange;
  readonly sent: Proposal[];
  readonly sentOffers: readonly EspOffer[];
}

/** Our rekey of `old`: a new inbound SPI, our nonce, a KE when PFS (`group`) is wanted. */
export function childRekeyRequest(old: ChildSaSpec, esp: readonly EspOffer[], spi: number, nonce: Uint8Array, group: number | undefined, keyExchange = defaultKeyExchange): ChildRekeyRequest {
  const ke = group !== undefined ? keyExchange(group) : undefined;
  const sent = espSaProposals(esp, spi, group);
  const inner = [
    notify(NotifyType.REKEY_SA, new Uint8Array(0), ProtocolId.ESP, be32(old.spiIn)),
    payload(PayloadType.SA, buildSa(sent)),
    payload(PayloadType.NONCE, buildNonce(nonce)),
    ...(ke ? [payload(PayloadType.KE, buildKe({ group: ke.group, data: ke.publicValue }))] : []),
    payload(PayloadType.TSi, buildTs(old.tsi)),
    payload(PayloadType.TSr, buildTs(old.tsr)),
  ];
  return { inner, nonce, spi, ke, sent, sentOffers: espOffersWith(esp, group) };
}

/** The CHILD_SA the gateway's response to our rekey made (we initiated: our outbound keys are the initiator's). */
export function childFromRekeyResponse(req: ChildRekeyRequest, p: readonly IkePayload[], sa: IkeSa): RekeyedChild {
  const saP = firstOfType(p, PayloadType.SA);
  const nP = firstOfType(p, PayloadType.NONCE);
  const tsiP = firstOfType(p, PayloadType.TSi);
  const tsrP = firstOfType(p, PayloadType.TSr);
  if (!saP || !nP || !tsiP || !tsrP) throw new VpnError('PROTOCOL', "the gateway's CREATE_CHILD_SA response lacks SA, Nonce or TS");
  const chosen = chooseEspSuite(req.sent, req.sentOffers, parseSa(saP.body));
  const nonceR = parseNonce(nP.body);
  let secret: Uint8Array | undefined;
  if (chosen.group !== undefined) {
    const keP = firstOfType(p, PayloadType.KE);
    if (!keP || !req.ke) throw new VpnError('PROTOCOL', 'the gateway chose PFS for the CHILD_SA rekey but sent no KE');
    secret = req.ke.computeSecret(parseKe(keP.body).data);
  }
  const s = chosen.suite;
  const keys = deriveChildKeys({ prf: sa.suite.prf.hash, skD: sa.keys.skD, nonceI: req.nonce, nonceR, sharedSecret: secret, encKeyLen: s.encKeyBytes + s.saltBytes, integKeyLen: s.integKeyBytes });
  return { suite: s, esn: chosen.esn, spiIn: req.spi, spiOut: chosen.spi, inbound: keys.responder, outbound: keys.initiator, tsi: parseTs(tsiP.body), tsr: parseTs(tsrP.body), nonces: [req.nonce, nonceR] };
}

// ---------------------------------------------------------------- CHILD_SA, the gateway's

/**
 * Our answer to the gateway's rekey of `old` (request payloads `inner`): a CHILD_SA with our inbound SPI `spi`
 * and nonce, the gateway's keys being the initiator's; or a refusal (INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN).
 */
export function answerChildRekey(inner: readonly IkePayload[], old: ChildSaSpec, esp: readonly EspOffer[], sa: IkeSa, spi: number, nonceR: Uint8Array, keyExchange = defaultKeyExchange): Answer<RekeyedChild> {
  const saP = firstOfType(inner, PayloadType.SA)!;
  const nonceI = parseNonce(firstOfType(inner, PayloadType.NONCE)!.body);
  const keP = firstOfType(inner, PayloadType.KE);
  const ke = keP ? parseKe(keP.body) : undefined;
  const sel = selectEspProposal(parseSa(saP.body), esp, spi, ke?.group);
  if ('wantGroup' in sel) return { reply: [notify(NotifyType.INVALID_KE_PAYLOAD, group16(sel.wantGroup))] };
  if ('none' in sel) return { reply: [notify(NotifyType.NO_PROPOSAL_CHOSEN)] };
  const ch = sel.chosen;
  let ourKe: KeyExchange | undefined;
  let secret: Uint8Array | undefined;
  if (ch.group !== undefined) {
    ourKe = keyExchange(ch.group);
    secret = ourKe.computeSecret(ke!.data);
  }
  const s = ch.suite;
  const keys = deriveChildKeys({ prf: sa.suite.prf.hash, skD: sa.keys.skD, nonceI, nonceR, sharedSecret: secret, encKeyLen: s.encKeyBytes + s.saltBytes, integKeyLen: s.integKeyBytes });
  const tsiP = firstOfType(inner, PayloadType.TSi);
  const tsrP = firstOfType(inner, PayloadType.TSr);
  // The gateway's TSi is its side, its TSr ours: in our terms the other way round.
  const made: RekeyedChild = {
    suite: s,
    esn: ch.esn,
    spiIn: spi,
    spiOut: ch.peerSpi,
    inbound: keys.initiator,
    outbound: keys.responder,
    tsi: tsrP ? parseTs(tsrP.body) : old.tsi,
    tsr: tsiP ? parseTs(tsiP.body) : old.tsr,
    nonces: [nonceI, nonceR],
  };
  const reply = [
    payload(PayloadType.SA, buildSa([ch.reply])),
    payload(PayloadType.NONCE, buildNonce(nonceR)),
    ...(ourKe ? [payload(PayloadType.KE, buildKe({ group: ourKe.group, data: ourKe.publicValue }))] : []),
    ...(tsiP ? [payload(PayloadType.TSi, tsiP.body)] : []),
    ...(tsrP ? [payload(PayloadType.TSr, tsrP.body)] : []),
  ];
  return { reply, made };
}

// ---------------------------------------------------------------- the IKE SA

/** What a rekeyed IkeSa needs besides its keys. */
export interface IkeSaSettings {
  retransmit: RetransmitPolicy;
  /** Our requests of the IKE SA name the gateway so in timeouts ('192.0.2.1:4500'). */
  peerName: string;
  fragmentation: 'yes' | 'accept' | 'no';
  peerFragments: boolean;
  fragmentLimit?: number;
  random: (n: number) => Uint8Array;
  log: Logger;
}

export interface IkeRekeyRequest {
  readonly inner: IkePayload[];
  readonly nonce: Uint8Array;
  readonly spi: Uint8Array;
  readonly ke: KeyExchange;
  readonly sent: SentIkeProposals;
}

/** Our rekey of the IKE SA: our new SPI and nonce, a KE of `group` (the current SA's unless the gateway asked for another). */
export function ikeRekeyRequest(ike: readonly IkeOffer[], spi: Uint8Array, nonce: Uint8Array, group: number, keyExchange = defaultKeyExchange): IkeRekeyRequest {
  const ke = keyExchange(group);
  const sent = ikeSaProposals(ike, group);
  for (const p of sent.proposals) p.spi = spi;
  const inner = [payload(PayloadType.SA, buildSa(sent.proposals)), payload(PayloadType.NONCE, buildNonce(nonce)), payload(PayloadType.KE, buildKe({ group, data: ke.publicValue }))];
  return { inner, nonce, spi, ke, sent };
}

/** The IKE SA the gateway's response to our rekey made: we are its original initiator. */
export function ikeSaFromRekeyResponse(req: IkeRekeyRequest, p: readonly IkePayload[], old: IkeSa, settings: IkeSaSettings): { sa: IkeSa; nonceR: Uint8Array } {
  const saP = firstOfType(p, PayloadType.SA);
  const nP = firstOfType(p, PayloadType.NONCE);
  const keP = firstOfType(p, PayloadType.KE);
  if (!saP || !nP || !keP) throw new VpnError('PROTOCOL', "the gateway's IKE SA rekey response lacks SA, Nonce or KE");
  const reply = parseSa(saP.body);
  const suite = chooseIkeSuite(req.sent, reply, true);
  const ke = parseKe(keP.body);
  if (ke.group !== suite.dhGroup || ke.group !== req.ke.group) throw new VpnError('PROTOCOL', `the gateway's KE is for group ${ke.group}, not ${req.ke.group}`);
  const nonceR = parseNonce(nP.body);
  const sa = rekeyedIkeSa(old, { initiator: true, suite, nonceI: req.nonce, nonceR, secret: req.ke.computeSecret(ke.data), spiI: req.spi, spiR: Uint8Array.from(reply[0]!.spi) }, settings);
  return { sa, nonceR };
}

/**
 * Our answer to the gateway's rekey of the IKE SA `old`: a new IKE SA whose original initiator is the gateway
 * (its new SPI first), with our new SPI `spi` and nonce; or a refusal.
 */
export function answerIkeRekey(proposals: readonly Proposal[], nonceI: Uint8Array, ke: KePayload | undefined, old: IkeSa, ike: readonly IkeOffer[], spi: Uint8Array, nonceR: Uint8Array, settings: IkeSaSettings, keyExchange = defaultKeyExchange): Answer<IkeSa> {
  if (!ke) return { reply: [notify(NotifyType.INVALID_SYNTAX)] };
  const sel = selectIkeProposal(proposals, ike, spi, ke.group);
  if ('wantGroup' in sel) return { reply: [notify(NotifyType.INVALID_KE_PAYLOAD, group16(sel.wantGroup))] };
  if ('none' in sel) return { reply: [notify(NotifyType.NO_PROPOSAL_CHOSEN)] };
  const ourKe = keyExchange(ke.group);
  const made = rekeyedIkeSa(old, { initiator: false, suite: sel.chosen.suite, nonceI, nonceR, secret: ourKe.computeSecret(ke.data), spiI: sel.chosen.peerSpi, spiR: spi }, settings);
  const reply = [payload(PayloadType.SA, buildSa([sel.chosen.reply])), payload(PayloadType.NONCE, buildNonce(nonceR)), payload(PayloadType.KE, buildKe({ group: ke.group, data: ourKe.publicValue }))];
  return { reply, made };
}

/** The IKE SA that replaces `old`, keyed from its SK_d (RFC 7296 §2.18), with fresh message IDs both ways. */
export function rekeyedIkeSa(old: IkeSa, p: { initiator: boolean; suite: IkeSuite; nonceI: Uint8Array; nonceR: Uint8Array; secret: Uint8Array; spiI: Uint8Array; spiR: Uint8Array }, settings: IkeSaSettings): IkeSa {
  const keys = deriveRekeyedIkeKeys({
    prf: old.suite.prf.hash,
    oldPrf: old.suite.prf.hash,
    oldSkD: old.keys.skD,
    nonceI: p.nonceI,
    nonceR: p.nonceR,
    sharedSecret: p.secret,
    spiI: p.spiI,
    spiR: p.spiR,
    lengths: { encKey: p.suite.encr.keyBytes, integKey: p.suite.integ?.keyBytes ?? 0 },
  });
  return new IkeSa({
    spiI: p.spiI,
    spiR: p.spiR,
    initiator: p.initiator,
    suite: p.suite,
    keys,
    requests: new Requests(settings.retransmit, settings.peerName),
    fragmentation: settings.fragmentation,
    peerFragments: settings.peerFragments,
    fragmentLimit: settings.fragmentLimit,
    random: settings.random,
    log: settings.log,
  });
}
