/**
 * The IKEv2 initiator with a pre-shared key, certificates or EAP-MSCHAPv2 (RFC 7296, RFC 7427), sans-I/O: the session hands it datagrams (IKE messages
 * without the non-ESP marker) and timer ticks on its clock, and carries out the events it returns: messages
 * to send, the move to the NAT-T port, the established CHILD_SA, the end of the IKE SA.
 *
 *   IKE_SA_INIT  -> SA KE Ni N(NAT_DETECTION_SOURCE_IP) N(NAT_DETECTION_DESTINATION_IP)
 *                <- SA KE Nr …     | N(COOKIE): again with the cookie first | N(INVALID_KE_PAYLOAD): again
 *                                    with the group asked for | an error notify: fail
 *   (then every message goes to port 4500 behind the non-ESP marker)
 *   IKE_AUTH     -> SK{ IDi [CERT+] N(INITIAL_CONTACT) [CERTREQ] [IDr] [AUTH] CP(CFG_REQUEST) SA TSi TSr }
 *                <- SK{ IDr [CERT+] AUTH [EAP] CP(CFG_REPLY) SA TSi TSr }
 *   with EAP (no AUTH in the first request): -> SK{ EAP } <- SK{ EAP } … until EAP-Success, then
 *                -> SK{ AUTH(MSK) }  <- SK{ AUTH(MSK) CP SA TSi TSr }   (RFC 7296 §2.16)
 *
 * Our AUTH: a PSK MIC, a signature with our certificate's key (certs.ts; RFC 7427 when the gateway sent
 * SIGNATURE_HASH_ALGORITHMS), or none before EAP-MSCHAPv2 (eap-client.ts). The gateway's AUTH: a PSK MIC, or a
 * signature checked against its certificate, whose chain is verified to a configured CA and which must vouch
 * for IDr.
 *
 * The NAT_DETECTION_SOURCE_IP hash is made of a source that cannot be ours (0.0.0.0:0, or [::]:0), so the responder
 * always sees a NAT and encapsulates ESP in UDP, which is the only ESP a userspace client can speak (ipsec.md
 * §3.3). Once IKE_SA_INIT is done the IKE SA's protection and message IDs live in an IkeSa (ike-sa.ts); once
 * IKE_AUTH is done, a TaskManager (task-manager.ts) runs it: the gateway's requests, rekeys both ways, DPD,
 * deletes, and close(), which sends a DELETE of the IKE SA. This class forwards to it from then on, so the
 * session has one object to talk to for the IKE SA's whole life.
 *
 * IKE fragmentation (RFC 7383, fragments.ts): unless fragmentation = no, IKE_SA_INIT carries
 * N(IKEV2_FRAGMENTATION_SUPPORTED); when the gateway sent it too, an SK message over the limit (a 1280-byte
 * datagram) goes out as SKF fragments (not with fragmentation = accept), and the gateway's SKF fragments are
 * authenticated and reassembled (IkeSa), responses and requests each in their own reassembler.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createKeyExchange as defaultKeyExchange, groupName, type KeyExchange } from '../../crypto/dh.js';
import { VpnError } from '../../errors.js';
import type { CloseReason } from '../../session/types.js';
import { silentLogger, type Logger } from '../../util/log.js';
import { AuthMethod, CertEncoding, HashAlgorithm, IkeExchange, IkeFlags, NotifyType, PayloadType, ProtocolId, authMethodName, exchangeName } from '../../wire/ike-constants.js';
import { buildIkeMessage, isFromInitiator, isResponse, parseIkeMessage, type IkeHeaderFields, type IkeMessage, type IkePayload } from '../../wire/ike.js';
import { buildAuth, buildCert, buildCertreq, buildDelete, buildEap, buildId, buildKe, buildNonce, buildSa, buildTs, parseAuth, parseCert, parseEap, parseHashAlgorithms, parseId, parseKe, parseNonce, parseSa, parseTs, type Proposal, type TrafficSelector } from '../../wire/ike-payloads.js';
import { caKeyHash, certMatchesId, oneLine, parseCertificate, signAuth, verifyAuthSignature, verifyChain } from './certs.js';
import { EapMschapv2Client } from './eap-client.js';
import { deriveChildKeys, deriveIkeKeys, natDetectionHash, pskAuth, signedOctets, type IkeKeys } from '../ike-keys.js';
import { DEFAULT_RETRANSMIT, Requests } from './exchange.js';
import { addressBytes, identityText, sameIdentity, selectorsText } from './identity.js';
import { cpRequest, describeMessage, errorNotifies, findNotify, firstOfType, notify, notifyFailure, payload, readCpReply } from './messages.js';
import { chooseEspSuite, chooseIkeSuite, describeOffers, espSaProposals, firstGroup, ikeSaProposals, offeredGroups, type IkeSuite, type SentIkeProposals } from './proposals.js';
import { IkeSa } from './ike-sa.js';
import { TaskManager, type TaskEvent } from './task-manager.js';
import type { Established, InitiatorConfig, InitiatorEvent } from './types.js';

export type { EstablishedChild, Established, InitiatorConfig, InitiatorEvent } from './types.js';

type State = 'idle' | 'init' | 'auth' | 'established' | 'deleting' | 'ended';

const MAX_INIT_RETRIES = 3;
const ZERO_SPI = new Uint8Array(8);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export class IkeInitiator {
  private state_: State = 'idle';
  private readonly c: InitiatorConfig;
  private readonly log: Logger;
  private readonly random: (n: number) => Uint8Array;
  private readonly requests: Requests;
  /** The IKE SA once IKE_SA_INIT is done (its keys, message IDs, fragments). */
  private sa: IkeSa | undefined;
  /** After IKE_AUTH: everything the IKE SA does (peer requests, rekeys, DPD, deletes). */
  private tasks: TaskManager | undefined;
  private spiI: Uint8Array = new Uint8Array(8);
  private spiR: Uint8Array = ZERO_SPI;
  private nonceI: Uint8Array = new Uint8Array(0);
  private nonceR: Uint8Array = new Uint8Array(0);
  private ke: KeyExchange | undefined;
  private cookie: Uint8Array | undefined;
  private sentIke: SentIkeProposals | undefined;
  private cookieRounds = 0;
  private keRetries = 0;
  private sameGroupRefusals = 0;
  private initRequest: Uint8Array | undefined;
  private initResponse: Uint8Array | undefined;
  private suite_: IkeSuite | undefined;
  private keys_: IkeKeys | undefined;
  private espSpi = 0;
  private sentEsp: Proposal[] = [];
  private established_: Established | undefined;
  /** The gateway's SIGNATURE_HASH_ALGORITHMS (RFC 7427), undefined when it sent none. */
  private peerHashes: number[] | undefined;
  private eap: EapMschapv2Client | undefined;
  /** The IDi body we sent, and the gateway's IDr body (for the MSK-based AUTH of EAP). */
  private idiBody: Uint8Array | undefined;
  private idrBody: Uint8Array | undefined;
  private remoteIdText: string | undefined;
  private msk: Uint8Array | undefined;
  private authRound: 'first' | 'eap' | 'final' = 'first';
  /** Both sides announced FRAGMENTATION_SUPPORTED (RFC 7383): big SK messages go out as SKF fragments. */
  private peerFragments = false;
  private out: InitiatorEvent[] = [];

  constructor(config: InitiatorConfig) {
    this.c = config;
    this.log = config.logger ?? silentLogger;
    this.random = config.random ?? ((n) => randomBytes(n));
    this.requests = new Requests(config.retransmit ?? DEFAULT_RETRANSMIT, `${config.remoteAddress}:${config.remotePort}`);
  }

  get state(): State {
    return this.state_;
  }
  /** The IKE SA's keys once IKE_SA_INIT completed (for tests and key logs). */
  get keys(): IkeKeys | undefined {
    return this.keys_;
  }
  get suite(): IkeSuite | undefined {
    return this.suite_;
  }
  get established(): Established | undefined {
    return this.established_;
  }
  /** When onTimer() should be called next (ms on the caller's clock), or undefined. */
  deadline(): number | undefined {
    if (this.state_ === 'ended') return undefined;
    return this.tasks ? this.tasks.deadline() : this.requests.deadline();
  }
  /** The gateway's port changed (after the float): named in timeout messages. */
  setPeerPort(port: number): void {
    this.requests.peer = `${this.c.remoteAddress}:${port}`;
  }
  /** The task manager of the established IKE SA (rekeys, DPD, deletes), for the session and tests. */
  get manager(): TaskManager | undefined {
    return this.tasks;
  }

  /** Sends the first IKE_SA_INIT request. */
  start(now: number): InitiatorEvent[] {
    if (this.state_ !== 'idle') return [];
    this.state_ = 'init';
    this.spiI = this.randomNonZero(8);
    this.nonceI = Uint8Array.from(this.random(32));
    this.newKeyExchange(firstGroup(this.c.ike));
    const m = this.buildInit();
    this.requests.start(IkeExchange.IKE_SA_INIT, [m], now);
    return this.flush();
  }

  /** One IKE message from the gateway. Anything that is not for us, or does not verify, is dropped. */
  receive(raw: Uint8Array, now: number): InitiatorEvent[] {
    if (this.state_ === 'idle' || this.state_ === 'ended') return [];
    if (this.tasks) return this.fromTasks(this.tasks.receive(raw, now));
    let msg: IkeMessage;
    try {
      msg = parseIkeMessage(raw);
    } catch (e) {
      this.log.debug(`malformed IKE message dropped: ${(e as Error).message}`);
      return [];
    }
    const h = msg.header;
    if (!Buffer.from(h.spiI).equals(Buffer.from(this.spiI)) || isFromInitiator(h)) return [];
    try {
      if (isResponse(h)) {
        if (!this.requests.matches(h.exchange, h.messageId)) return [];
        if (h.exchange === IkeExchange.IKE_SA_INIT) this.onInitResponse(raw, msg, now);
        else this.onEncryptedResponse(raw, msg, now);
      } else if (this.sa?.owns(h)) {
        // A request of the gateway before IKE_AUTH is done: nothing we can act on yet.
        this.log.debug(`${exchangeName(h.exchange)} request from the gateway during IKE_AUTH ignored`);
      }
    } catch (e) {
      const err = e instanceof VpnError ? e : new VpnError('PROTOCOL', (e as Error).message);
      if (err.code === 'WIRE') this.log.debug(`IKE message dropped: ${err.message}`);
      else this.end('protocol-error', err);
    }
    return this.flush();
  }

  /** Retransmissions and the timeout of the request in flight. */
  onTimer(now: number): InitiatorEvent[] {
    if (this.state_ === 'ended') return [];
    if (this.tasks) return this.fromTasks(this.tasks.onTimer(now));
    const r = this.requests.onTimer(now);
    if (r && 'resend' in r) {
      this.log.debug(`retransmitting ${this.requests.outstanding?.what ?? 'request'}${r.resend.length > 1 ? ` (all ${r.resend.length} fragments)` : ''}`);
      for (const message of r.resend) this.out.push({ type: 'send', message });
    } else if (r && 'timeout' in r) {
      if (this.state_ === 'deleting') this.end('user');
      else if (this.state_ === 'established') this.end('ping-restart', r.timeout);
      else this.end('handshake-timeout', r.timeout);
    }
    return this.flush();
  }

  /** Leaves: a DELETE of the IKE SA when there is one ('ended' follows its answer or timeout). */
  close(now: number): InitiatorEvent[] {
    if (this.state_ === 'ended' || this.state_ === 'deleting') return [];
    if (this.state_ !== 'established' || !this.tasks) {
      this.end('user');
      return this.flush();
    }
    this.state_ = 'deleting';
    return this.fromTasks(this.tasks.close(now));
  }

  // ------------------------------------------------------------------ IKE_SA_INIT

  private newKeyExchange(group: number): void {
    this.ke = (this.c.keyExchange ?? defaultKeyExchange)(group);
    this.sentIke = ikeSaProposals(this.c.ike, this.keRetries > 0 ? group : undefined);
  }

  private buildInit(): Uint8Array {
    // The gateway's address as its own bytes: 4 for IPv4, 16 for IPv6 (RFC 7296 §2.23 hashes the address as sent).
    const gw = addressBytes(this.c.remoteAddress);
    const dst = natDetectionHash(this.spiI, ZERO_SPI, gw, this.c.remotePort);
    // A source no packet of ours ever has (the unspecified address of the same family, port 0): the responder
    // concludes we are behind a NAT and UDP-encapsulates ESP.
    const fakeSrc = natDetectionHash(this.spiI, ZERO_SPI, new Uint8Array(gw.length), 0);
    const payloads: IkePayload[] = [
      ...(this.cookie ? [notify(NotifyType.COOKIE, this.cookie)] : []),
      payload(PayloadType.SA, buildSa(this.sentIke!.proposals)),
      payload(PayloadType.KE, buildKe({ group: this.ke!.group, data: this.ke!.publicValue })),
      payload(PayloadType.NONCE, buildNonce(this.nonceI)),
      notify(NotifyType.NAT_DETECTION_SOURCE_IP, fakeSrc),
      notify(NotifyType.NAT_DETECTION_DESTINATION_IP, dst),
      ...(this.fragmentation() !== 'no' ? [notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED)] : []),
      ...(this.usesCerts() ? [notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, Uint8Array.of(0, HashAlgorithm.SHA2_256, 0, HashAlgorithm.SHA2_384, 0, HashAlgorithm.SHA2_512))] : []),
    ];
    const header: IkeHeaderFields = { spiI: this.spiI, spiR: ZERO_SPI, exchange: IkeExchange.IKE_SA_INIT, flags: IkeFlags.INITIATOR, messageId: 0 };
    const m = buildIkeMessage({ header, payloads });
    this.initRequest = m;
    this.log.debug(`sending ${describeMessage(header, payloads)} (${groupName(this.ke!.group)})`);
    this.out.push({ type: 'send', message: m });
    return m;
  }

  private onInitResponse(raw: Uint8Array, msg: IkeMessage, now: number): void {
    const p = msg.payloads;
    this.log.debug(`received ${describeMessage(msg.header, p)}`);
    const cookie = findNotify(p, NotifyType.COOKIE);
    if (cookie) {
      if (cookie.data.length < 1 || cookie.data.length > 64) throw new VpnError('PROTOCOL', `the gateway sent a COOKIE of ${cookie.data.length} bytes (1..64)`);
      if (this.cookie && Buffer.from(cookie.data).equals(Buffer.from(this.cookie))) return; // a duplicate of the last round
      if (++this.cookieRounds > MAX_INIT_RETRIES) throw new VpnError('PROTOCOL', `the gateway asked for a COOKIE ${this.cookieRounds} times`);
      this.cookie = Uint8Array.from(cookie.data);
      this.log.info('the gateway asked for a COOKIE; sending IKE_SA_INIT again with it');
      this.requests.restart([this.buildInit()], now);
      return;
    }
    const invalidKe = findNotify(p, NotifyType.INVALID_KE_PAYLOAD);
    if (invalidKe) {
      const group = invalidKe.data.length === 2 ? (invalidKe.data[0]! << 8) | invalidKe.data[1]! : -1;
      if (!offeredGroups(this.c.ike).includes(group)) throw new VpnError('NO_SHARED_CIPHER', `the gateway asked for key exchange group ${group} (INVALID_KE_PAYLOAD), which none of our IKE proposals has; we offered ${describeOffers(this.c.ike)}`);
      if (group === this.ke!.group) {
        // Once may be a stale answer to the previous round; twice means the gateway cannot do what it asks for.
        if (++this.sameGroupRefusals < 2) return;
        throw new VpnError('NO_SHARED_CIPHER', `the gateway refuses our ${groupName(group)} key exchange although it asks for that group (INVALID_KE_PAYLOAD); it probably lacks support for it`);
      }
      if (++this.keRetries > MAX_INIT_RETRIES) throw new VpnError('PROTOCOL', `the gateway keeps refusing our key exchange (INVALID_KE_PAYLOAD, last for group ${group})`);
      this.log.info(`the gateway wants key exchange group ${groupName(group)} (INVALID_KE_PAYLOAD); sending IKE_SA_INIT again`);
      this.newKeyExchange(group);
      this.requests.restart([this.buildInit()], now);
      return;
    }
    const errs = errorNotifies(p);
    if (errs.length > 0) {
      const f = notifyFailure(errs[0]!, IkeExchange.IKE_SA_INIT, { offered: describeOffers(this.c.ike) });
      this.end(f.reason, f.error);
      return;
    }
    const spiR = msg.header.spiR;
    if (Buffer.from(spiR).equals(Buffer.from(ZERO_SPI))) throw new VpnError('PROTOCOL', 'the gateway answered IKE_SA_INIT with a zero responder SPI');
    const saP = firstOfType(p, PayloadType.SA);
    const keP = firstOfType(p, PayloadType.KE);
    const nP = firstOfType(p, PayloadType.NONCE);
    if (!saP || !keP || !nP) throw new VpnError('PROTOCOL', `the gateway's IKE_SA_INIT response lacks ${[!saP && 'SA', !keP && 'KE', !nP && 'Nonce'].filter(Boolean).join(', ')}`);
    const suite = chooseIkeSuite(this.sentIke!, parseSa(saP.body));
    const ke = parseKe(keP.body);
    if (ke.group !== suite.dhGroup || ke.group !== this.ke!.group) throw new VpnError('PROTOCOL', `the gateway's KE is for group ${ke.group}, but we sent ${this.ke!.group} and it chose ${suite.dhGroup}`);
    this.nonceR = Uint8Array.from(parseNonce(nP.body));
    const secret = this.ke!.computeSecret(ke.data);
    this.spiR = Uint8Array.from(spiR);
    this.suite_ = suite;
    this.keys_ = deriveIkeKeys({
      prf: suite.prf.hash,
      nonceI: this.nonceI,
      nonceR: this.nonceR,
      sharedSecret: secret,
      spiI: this.spiI,
      spiR: this.spiR,
      lengths: { encKey: suite.encr.keyBytes, integKey: suite.integ?.keyBytes ?? 0 },
    });
    this.initResponse = Uint8Array.from(raw);
    const sha = findNotify(p, NotifyType.SIGNATURE_HASH_ALGORITHMS);
    if (sha) this.peerHashes = parseHashAlgorithms(sha.data);
    this.peerFragments = this.fragmentation() !== 'no' && findNotify(p, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) !== undefined;
    this.requests.complete();
    this.sa = new IkeSa({
      spiI: this.spiI,
      spiR: this.spiR,
      initiator: true,
      suite,
      keys: this.keys_,
      requests: this.requests,
      fragmentation: this.fragmentation(),
      peerFragments: this.peerFragments,
      fragmentLimit: this.c.fragmentLimit,
      random: this.random,
      log: this.log,
    });
    this.log.info(`IKE_SA_INIT done: ${suite.text}, SPIs ${hex(this.spiI)}_i ${hex(this.spiR)}_r`);
    if (this.log.enabled('debug')) {
      // Secret: what Wireshark's ikev2_decryption_table needs to decrypt this IKE SA's messages (debug and trace only).
      const k = this.keys_;
      this.log.debug(
        `IKE SA keys (secret): SPIi=${hex(this.spiI)} SPIr=${hex(this.spiR)} encr=${suite.encr.name} SK_ei=${hex(k.skEi)} SK_er=${hex(k.skEr)} integ=${suite.integ?.name ?? 'none'} SK_ai=${hex(k.skAi)} SK_ar=${hex(k.skAr)}`,
      );
    }
    this.state_ = 'auth';
    this.out.push({ type: 'float' });
    this.sendAuth(now);
  }

  // ------------------------------------------------------------------ IKE_AUTH

  private usesCerts(): boolean {
    return this.c.remoteAuth?.kind === 'pubkey' || this.c.localAuth?.kind === 'pubkey';
  }

  private psk(): Uint8Array {
    if (!this.c.psk) throw new VpnError('INTERNAL', 'PSK authentication without a pre-shared key');
    return this.c.psk;
  }

  private sendAuth(now: number): void {
    const c = this.c;
    const k = this.keys_!;
    const prfHash = this.suite_!.prf.hash;
    const local = c.localAuth ?? { kind: 'psk' as const };
    this.espSpi = this.randomSpi();
    this.sentEsp = espSaProposals(c.esp, this.espSpi);
    const idi = buildId(c.localId);
    this.idiBody = idi;
    const octets = signedOctets({ message: this.initRequest!, nonce: this.nonceR, prf: prfHash, skP: k.skPi, idPayloadBody: idi });
    const authPayloads: IkePayload[] = [];
    if (local.kind === 'psk') {
      authPayloads.push(payload(PayloadType.AUTH, buildAuth({ method: AuthMethod.SHARED_KEY_MIC, data: pskAuth({ prf: prfHash, psk: this.psk(), signedOctets: octets }) })));
    } else if (local.kind === 'pubkey') {
      const a = signAuth(local.key, octets, this.peerHashes);
      authPayloads.push(payload(PayloadType.AUTH, buildAuth(a)));
    } else {
      // No AUTH: the gateway starts EAP (RFC 7296 §2.16).
      this.eap = new EapMschapv2Client({ identity: local.identity, password: local.password, random: this.random });
    }
    const certs = local.kind === 'pubkey' ? local.certs.map((d) => payload(PayloadType.CERT, buildCert({ encoding: CertEncoding.X509_SIGNATURE, data: d }))) : [];
    const certreq =
      c.remoteAuth?.kind === 'pubkey' ? [payload(PayloadType.CERTREQ, buildCertreq({ encoding: CertEncoding.X509_SIGNATURE, data: Buffer.concat(c.remoteAuth.cas.map(caKeyHash)) }))] : [];
    const inner: IkePayload[] = [
      payload(PayloadType.IDi, idi),
      ...certs,
      notify(NotifyType.INITIAL_CONTACT),
      ...certreq,
      ...(c.remoteId ? [payload(PayloadType.IDr, buildId(c.remoteId))] : []),
      ...authPayloads,
      cpRequest(c.vip, c.vip6),
      payload(PayloadType.SA, buildSa(this.sentEsp)),
      payload(PayloadType.TSi, buildTs(c.tsi)),
      payload(PayloadType.TSr, buildTs(c.tsr)),
    ];
    this.sendRequest(IkeExchange.IKE_AUTH, inner, now);
  }

  private sendRequest(exchange: number, inner: IkePayload[], now: number, what?: string): void {
    for (const message of this.sa!.request(exchange, inner, now, what)) this.out.push({ type: 'send', message });
  }

  private fragmentation(): 'yes' | 'accept' | 'no' {
    return this.c.fragmentation ?? 'yes';
  }

  private onEncryptedResponse(raw: Uint8Array, msg: IkeMessage, now: number): void {
    if (!this.sa?.owns(msg.header)) return;
    const inner = this.sa.open(raw, msg, 'response');
    if (inner) this.onResponse(msg, inner, now);
  }

  private onResponse(msg: IkeMessage, inner: IkePayload[], now: number): void {
    this.log.debug(`received ${describeMessage(msg.header, inner)}`);
    this.requests.complete();
    if (this.state_ === 'auth' && msg.header.exchange === IkeExchange.IKE_AUTH) this.onAuthResponse(inner, now);
    else if (this.state_ === 'deleting') this.end('user');
  }

  private onAuthResponse(p: IkePayload[], now: number): void {
    const c = this.c;
    const errs = errorNotifies(p);
    const credential = c.localAuth?.kind === 'pubkey' ? 'certificate or key' : c.localAuth?.kind === 'eap' ? 'EAP user name or password' : 'pre-shared key';
    const ctx = { offered: describeOffers(c.esp), ts: `TSi ${selectorsText(c.tsi)}, TSr ${selectorsText(c.tsr)}`, localId: identityText(c.localId), remoteId: c.remoteId && identityText(c.remoteId), credential };
    const authFailed = errs.find((n) => n.type === NotifyType.AUTHENTICATION_FAILED);
    const authP = firstOfType(p, PayloadType.AUTH);
    const eapP = firstOfType(p, PayloadType.EAP);
    if (this.eap && !authFailed && this.authRound !== 'first' && !(this.authRound === 'final' && authP)) {
      this.onEapRound(p, eapP, errs, ctx, now);
      return;
    }
    if (authFailed || !authP) {
      const f = errs.length > 0 ? notifyFailure(authFailed ?? errs[0]!, IkeExchange.IKE_AUTH, ctx) : { reason: 'protocol-error' as const, error: new VpnError('PROTOCOL', 'the gateway answered IKE_AUTH without an AUTH payload') };
      this.end(f.reason, f.error);
      return;
    }
    const remoteId = this.verifyResponderAuth(p, authP);
    if (remoteId === undefined) return;
    if (this.eap && this.authRound === 'first') {
      this.authRound = 'eap';
      this.onEapRound(p, eapP, errs, ctx, now);
      return;
    }
    // The IKE SA is up on both sides from here on: a failed CHILD_SA still needs a DELETE.
    if (errs.length > 0) {
      const f = notifyFailure(errs[0]!, IkeExchange.IKE_AUTH, ctx);
      this.deleteAndEnd(now, f.reason, f.error);
      return;
    }
    let established: Established;
    try {
      established = this.childFrom(p, remoteId);
    } catch (e) {
      this.deleteAndEnd(now, 'protocol-error', e instanceof VpnError ? e : new VpnError('PROTOCOL', (e as Error).message));
      return;
    }
    this.established_ = established;
    this.state_ = 'established';
    this.startTasks(established, now);
    this.out.push({ type: 'established', sa: established });
  }

  /** Checks IDr and the responder's AUTH; returns IDr as text, or undefined after ending with AUTH_FAILED. */
  private verifyResponderAuth(p: IkePayload[], authP: IkePayload): string | undefined {
    const c = this.c;
    const prfHash = this.suite_!.prf.hash;
    const auth = parseAuth(authP.body);
    if (this.authRound === 'final') {
      // After EAP: both AUTHs are MACs with the MSK over the first messages' signed octets (RFC 7296 §2.16).
      const expected = pskAuth({ prf: prfHash, psk: this.msk!, signedOctets: signedOctets({ message: this.initResponse!, nonce: this.nonceI, prf: prfHash, skP: this.keys_!.skPr, idPayloadBody: this.idrBody! }) });
      if (auth.method !== AuthMethod.SHARED_KEY_MIC || auth.data.length !== expected.length || !timingSafeEqual(Buffer.from(auth.data), expected)) {
        this.end('auth-failed', new VpnError('AUTH_FAILED', `the gateway '${this.remoteIdText}' sent a final AUTH that does not verify with the EAP key (MSK)`));
        return undefined;
      }
      return this.remoteIdText;
    }
    const idrP = firstOfType(p, PayloadType.IDr);
    if (!idrP) {
      this.end('protocol-error', new VpnError('PROTOCOL', 'the gateway answered IKE_AUTH without an IDr payload'));
      return undefined;
    }
    const idr = parseId(idrP.body);
    const idText = identityText(idr);
    if (c.remoteId && !sameIdentity(idr, c.remoteId)) {
      this.end('auth-failed', new VpnError('AUTH_FAILED', `the gateway identified itself as '${idText}', but remote id '${identityText(c.remoteId)}' is configured`));
      return undefined;
    }
    this.idrBody = Uint8Array.from(idrP.body);
    this.remoteIdText = idText;
    const octets = signedOctets({ message: this.initResponse!, nonce: this.nonceI, prf: prfHash, skP: this.keys_!.skPr, idPayloadBody: idrP.body });
    const remote = c.remoteAuth ?? { kind: 'psk' as const };
    if (remote.kind === 'pubkey') {
      try {
        const sent = p.filter((x) => x.type === PayloadType.CERT).map((x) => parseCert(x.body));
        const x509 = sent.filter((x) => x.encoding === CertEncoding.X509_SIGNATURE).map((x, i) => parseCertificate(x.data, `the gateway's certificate ${i + 1}`));
        if (x509.length === 0) throw new VpnError('CERT_UNTRUSTED', `the gateway '${idText}' sent no X.509 certificate${sent.length ? ` (only encodings ${sent.map((x) => x.encoding).join(', ')})` : ''}`);
        const { endEntity } = verifyChain(x509, remote.cas);
        if (!certMatchesId(endEntity, idr)) {
          const san = endEntity.subjectAltName ? `subjectAltName ${endEntity.subjectAltName}` : 'no subjectAltName';
          throw new VpnError('CERT_IDENTITY', `the gateway identified itself as '${idText}', but its certificate '${oneLine(endEntity.subject)}' (${san}) is not for that identity`);
        }
        verifyAuthSignature(endEntity, auth.method, auth.data, octets, `the gateway '${idText}'`);
        this.log.info(`the gateway's certificate '${oneLine(endEntity.subject)}' is valid for '${idText}' and its AUTH (${authMethodName(auth.method)}) verifies`);
      } catch (e) {
        this.end('auth-failed', e instanceof VpnError ? e : new VpnError('AUTH_FAILED', (e as Error).message));
        return undefined;
      }
      return idText;
    }
    if (auth.method !== AuthMethod.SHARED_KEY_MIC) {
      this.end('auth-failed', new VpnError('AUTH_FAILED', `the gateway authenticated with ${authMethodName(auth.method)}, but remote auth = psk is configured`));
      return undefined;
    }
    const expected = pskAuth({ prf: prfHash, psk: this.psk(), signedOctets: octets });
    if (auth.data.length !== expected.length || !timingSafeEqual(Buffer.from(auth.data), expected)) {
      this.end('auth-failed', new VpnError('AUTH_FAILED', `the gateway '${idText}' did not prove knowledge of our pre-shared key (its AUTH payload does not verify)`));
      return undefined;
    }
    return idText;
  }

  /** An IKE_AUTH response during EAP: the next EAP response, or after EAP-Success the AUTH from the MSK. */
  private onEapRound(p: IkePayload[], eapP: IkePayload | undefined, errs: ReturnType<typeof errorNotifies>, ctx: { offered: string; ts: string; localId: string }, now: number): void {
    if (!eapP) {
      const f = errs.length > 0 ? notifyFailure(errs[0]!, IkeExchange.IKE_AUTH, ctx) : { reason: 'protocol-error' as const, error: new VpnError('PROTOCOL', 'the gateway answered IKE_AUTH without an EAP payload during EAP authentication') };
      this.end(f.reason, f.error);
      return;
    }
    let step;
    try {
      step = this.eap!.step(parseEap(eapP.body));
    } catch (e) {
      const err = e instanceof VpnError ? e : new VpnError('PROTOCOL', (e as Error).message);
      this.end(err.code === 'AUTH_FAILED' ? 'auth-failed' : 'protocol-error', err);
      return;
    }
    if (step.type === 'respond') {
      this.sendRequest(IkeExchange.IKE_AUTH, [payload(PayloadType.EAP, buildEap(step.eap))], now, 'IKE_AUTH (EAP)');
      return;
    }
    this.msk = step.msk;
    this.authRound = 'final';
    const prfHash = this.suite_!.prf.hash;
    const octets = signedOctets({ message: this.initRequest!, nonce: this.nonceR, prf: prfHash, skP: this.keys_!.skPi, idPayloadBody: this.idiBody! });
    const auth = pskAuth({ prf: prfHash, psk: this.msk, signedOctets: octets });
    this.log.info('EAP-MSCHAPv2 succeeded; sending the final IKE_AUTH with the MSK-based AUTH');
    this.sendRequest(IkeExchange.IKE_AUTH, [payload(PayloadType.AUTH, buildAuth({ method: AuthMethod.SHARED_KEY_MIC, data: auth }))], now, 'IKE_AUTH (AUTH)');
  }

  private childFrom(p: IkePayload[], remoteId: string): Established {
    const saP = firstOfType(p, PayloadType.SA);
    const tsiP = firstOfType(p, PayloadType.TSi);
    const tsrP = firstOfType(p, PayloadType.TSr);
    if (!saP || !tsiP || !tsrP) throw new VpnError('PROTOCOL', `the gateway's IKE_AUTH response lacks ${[!saP && 'SA', !tsiP && 'TSi', !tsrP && 'TSr'].filter(Boolean).join(', ')} (no CHILD_SA)`);
    const chosen = chooseEspSuite(this.sentEsp, this.c.esp, parseSa(saP.body));
    const cp = readCpReply(p);
    if (!cp.vip) throw new VpnError('PROTOCOL', 'the gateway assigned no virtual IP (no INTERNAL_IP4_ADDRESS in its CFG_REPLY); configure a pool for this connection on the gateway');
    const tsi = parseTs(tsiP.body).map(copyTs);
    const tsr = parseTs(tsrP.body).map(copyTs);
    if (tsr.length === 0) throw new VpnError('TS_UNACCEPTABLE', 'the gateway narrowed TSr to nothing');
    const s = chosen.suite;
    const keys = deriveChildKeys({ prf: this.suite_!.prf.hash, skD: this.keys_!.skD, nonceI: this.nonceI, nonceR: this.nonceR, encKeyLen: s.encKeyBytes + s.saltBytes, integKeyLen: s.integKeyBytes });
    this.log.info(`IKE_AUTH done: gateway '${remoteId}', virtual IP ${cp.vip}${cp.vip6 ? ` ${cp.vip6}/${cp.prefix6}` : ''}, ESP ${s.name}${chosen.esn ? '-esn' : ''} SPIs ${chosen.spi.toString(16).padStart(8, '0')}_o ${this.espSpi.toString(16).padStart(8, '0')}_i, TSi ${selectorsText(tsi)}, TSr ${selectorsText(tsr)}`);
    return { spiI: hex(this.spiI), spiR: hex(this.spiR), suite: this.suite_!, remoteId, cp, child: { suite: s, esn: chosen.esn, spiOut: chosen.spi, spiIn: this.espSpi, keys, tsi, tsr } };
  }

  // ------------------------------------------------------------------ after IKE_AUTH

  /** Hands the IKE SA to the task manager, which answers and rekeys from now on. */
  private startTasks(established: Established, now: number): void {
    const c = this.c;
    const ch = established.child;
    this.tasks = new TaskManager(
      this.sa!,
      { suite: ch.suite, esn: ch.esn, spiIn: ch.spiIn, spiOut: ch.spiOut, inbound: ch.keys.responder, outbound: ch.keys.initiator, tsi: ch.tsi, tsr: ch.tsr },
      {
        ike: c.ike,
        esp: c.esp,
        ikeRekeySeconds: c.ikeRekeySeconds ?? 0,
        ikeRandSeconds: c.ikeRandSeconds ?? 0,
        dpdDelaySeconds: c.dpdDelaySeconds ?? 0,
        dpdTimeoutSeconds: c.dpdTimeoutSeconds,
        retransmit: c.retransmit ?? DEFAULT_RETRANSMIT,
        peerName: this.requests.peer,
        fragmentation: this.fragmentation(),
        peerFragments: this.peerFragments,
        fragmentLimit: c.fragmentLimit,
        random: this.random,
        uniform: c.uniform,
        keyExchange: c.keyExchange,
        log: this.log,
        inboundCount: c.inboundCount ?? (() => 0),
      },
      now,
    );
  }

  /** Events of the task manager as the initiator's; 'ended' ends the initiator too. */
  private fromTasks(evs: TaskEvent[]): InitiatorEvent[] {
    for (const e of evs) if (e.type === 'ended') this.state_ = 'ended';
    return [...this.flush(), ...evs];
  }

  /** Tells the gateway the IKE SA is gone (one DELETE, not waited for) and ends. */
  private deleteAndEnd(now: number, reason: CloseReason, error: VpnError): void {
    if (!this.requests.busy) this.sendRequest(IkeExchange.INFORMATIONAL, [payload(PayloadType.DELETE, buildDelete({ protocol: ProtocolId.IKE, spiSize: 0, spis: [] }))], now, 'INFORMATIONAL (DELETE)');
    this.end(reason, error);
  }

  private end(reason: CloseReason, error?: VpnError): void {
    if (this.state_ === 'ended') return;
    this.state_ = 'ended';
    this.requests.complete();
    this.out.push(error ? { type: 'ended', reason, error } : { type: 'ended', reason });
  }

  private flush(): InitiatorEvent[] {
    const o = this.out;
    this.out = [];
    return o;
  }

  private randomNonZero(n: number): Uint8Array {
    for (;;) {
      const b = Uint8Array.from(this.random(n));
      if (b.some((x) => x !== 0)) return b;
    }
  }

  private randomSpi(): number {
    for (;;) {
      const b = this.random(4);
      const v = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
      if (v >= 256) return v;
    }
  }
}

const copyTs = (t: TrafficSelector): TrafficSelector => ({ ...t, startAddress: Uint8Array.from(t.startAddress), endAddress: Uint8Array.from(t.endAddress) });
