/**
 * IKE_AUTH with certificates and EAP-MSCHAPv2: the gateway's chain (with an intermediate) verified to a CA,
 * expiry, untrusted issuers, identities against subjectAltName and the subject DN, AUTH signatures (RSA
 * PKCS#1 v1.5 method 1, ECDSA method 9, RFC 7427 method 14 with PKCS#1, RSA-PSS and ECDSA), and the whole
 * initiator against a scripted responder: server certificate + our certificate, server certificate + EAP-MSCHAPv2
 * (right and wrong password), untrusted CA and identity mismatch. Certificates come from the openssl CLI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants, createPrivateKey, randomBytes, sign as cryptoSign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeyExchange } from '../../../src/crypto/dh.js';
import { generateAuthenticatorResponse, generateNtResponse, eapMschapv2Msk, ntPasswordHash } from '../../../src/crypto/mschapv2.js';
import { VpnError } from '../../../src/errors.js';
import { prepareIpsec } from '../../../src/ipsec/backend.js';
import { parseIpsecConfig } from '../../../src/ipsec/config.js';
import { caKeyHash, certMatchesId, certsFromBytes, signAuth, subjectDer, verifyAuthSignature, verifyChain } from '../../../src/ipsec/ike/certs.js';
import { ANY_IPV4_TS, dnToText, identityText, parseIdentity, sameIdentity } from '../../../src/ipsec/ike/identity.js';
import { IkeInitiator, type InitiatorConfig, type InitiatorEvent } from '../../../src/ipsec/ike/initiator.js';
import { parseEspProposals, parseIkeProposals } from '../../../src/ipsec/ike/proposals.js';
import { openMessage, sealMessage, type SkAlgorithms } from '../../../src/ipsec/ike/sk.js';
import { deriveIkeKeys, pskAuth, signedOctets, type IkeKeys } from '../../../src/ipsec/ike-keys.js';
import { ManualClock } from '../../../src/util/clock.js';
import { buildEap as buildEapPacket, buildEapMschapv2, EapCode, EapType, parseEap as parseEapPacket, parseEapMschapv2 } from '../../../src/wire/eap.js';
import { AuthMethod, CertEncoding, CpAttr, CpType, HashAlgorithm, IdType, IkeExchange, IkeFlags, NotifyType, PayloadType, ProtocolId, TransformType, TsType } from '../../../src/wire/ike-constants.js';
import { buildIkeMessage, parseIkeMessage, type IkeHeaderFields, type IkeMessage, type IkePayload } from '../../../src/wire/ike.js';
import {
  buildAuth, buildCert, buildCp, buildEap, buildId, buildKe, buildNonce, buildNotify, buildSa, buildTs, certreqAuthorities, parseAuth, parseCert, parseEap, parseHashAlgorithms, parseKe, parseNonce,
  parseNotify, parseSa, type Proposal, type TrafficSelector,
} from '../../../src/wire/ike-payloads.js';

// ------------------------------------------------------------------ a throwaway PKI

const ossl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });

/** ca, other-ca, inter (by ca), server-ec (by inter), server-rsa (by ca), client-ec (by ca), rogue (by other-ca). */
function makeTestPki() {
  const dir = mkdtempSync(join(tmpdir(), 'ike-auth-pki-'));
  writeFileSync(join(dir, 'ext.cnf'), '[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n[srv]\nsubjectAltName=DNS:server.lab,IP:192.0.2.1\n[cli]\nsubjectAltName=email:client@lab\n');
  const key = (n: string, rsa = false) => ossl(['genpkey', ...(rsa ? ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'] : ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']), '-out', `${n}.key`], dir);
  const ca = (n: string, cn: string) => {
    key(n);
    ossl(['req', '-x509', '-new', '-key', `${n}.key`, '-subj', `/CN=${cn}`, '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-out', `${n}.crt`], dir);
  };
  const leaf = (n: string, subj: string, issuer: string, ext: string, rsa = false) => {
    key(n, rsa);
    ossl(['req', '-new', '-key', `${n}.key`, '-subj', subj, '-out', `${n}.csr`], dir);
    ossl(['x509', '-req', '-in', `${n}.csr`, '-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-days', '10', '-extfile', 'ext.cnf', '-extensions', ext, '-out', `${n}.crt`], dir);
  };
  ca('ca', 'Test CA');
  ca('other-ca', 'Other CA');
  leaf('inter', '/CN=Test Intermediate', 'ca', 'ca');
  leaf('server-ec', '/O=lab/CN=server.lab', 'inter', 'srv');
  leaf('server-rsa', '/CN=server.lab', 'ca', 'srv', true);
  leaf('client-ec', '/O=lab/CN=client', 'ca', 'cli');
  leaf('rogue', '/CN=server.lab', 'other-ca', 'srv');
  const cert = (n: string) => new X509Certificate(readFileSync(join(dir, `${n}.crt`)));
  const priv = (n: string) => createPrivateKey(readFileSync(join(dir, `${n}.key`)));
  return { dir, cert, priv };
}
const pki = makeTestPki();
const CA = pki.cert('ca');
const INTER = pki.cert('inter');
const SERVER_EC = pki.cert('server-ec');
const SERVER_RSA = pki.cert('server-rsa');
const code = (c: string, re?: RegExp) => (e: unknown) => e instanceof VpnError && e.code === c && (!re || re.test(e.message));

// ------------------------------------------------------------------ unit checks

test('chain: end-entity + intermediate to the CA; missing intermediate, foreign CA and expiry are refused', () => {
  assert.equal(verifyChain([SERVER_EC, INTER], [CA]).ca.fingerprint256, CA.fingerprint256);
  assert.equal(verifyChain([SERVER_RSA], [pki.cert('other-ca'), CA]).endEntity, SERVER_RSA);
  assert.throws(() => verifyChain([SERVER_EC], [CA]), code('CERT_UNTRUSTED', /not signed by a trusted CA/));
  assert.throws(() => verifyChain([pki.cert('rogue')], [CA]), code('CERT_UNTRUSTED', /issuer 'CN=Other CA'/));
  assert.throws(() => verifyChain([SERVER_EC, INTER], [CA], Date.now() + 20 * 86400_000), code('CERT_EXPIRED', /expired on/));
  assert.throws(() => verifyChain([SERVER_EC, INTER], [CA], Date.now() - 86400_000), code('CERT_EXPIRED', /not valid before/));
  assert.throws(() => verifyChain([], [CA]), code('CERT_UNTRUSTED'));
  assert.equal(caKeyHash(CA).length, 20);
  assert.equal(certsFromBytes(Buffer.concat([readFileSync(join(pki.dir, 'ca.crt')), readFileSync(join(pki.dir, 'inter.crt'))])).length, 2);
});

test('identity: subjectAltName DNS, IP and email, the subject DN; DN text round trip', () => {
  assert.ok(certMatchesId(SERVER_EC, parseIdentity('server.lab')!));
  assert.ok(certMatchesId(SERVER_EC, parseIdentity('192.0.2.1')!));
  assert.ok(!certMatchesId(SERVER_EC, parseIdentity('other.lab')!));
  assert.ok(certMatchesId(pki.cert('client-ec'), parseIdentity('client@lab')!));
  const dn = { type: IdType.DER_ASN1_DN, data: new Uint8Array(subjectDer(SERVER_EC)) };
  assert.ok(certMatchesId(SERVER_EC, dn));
  assert.equal(dnToText(dn.data), 'O=lab, CN=server.lab');
  assert.equal(identityText(dn), 'O=lab, CN=server.lab');
  const configured = parseIdentity('O=lab, CN=server.lab')!;
  assert.equal(configured.type, IdType.DER_ASN1_DN);
  assert.ok(sameIdentity(configured, dn), 'a configured DN matches the certificate subject (string types aside)');
  assert.ok(!sameIdentity(parseIdentity('CN=server.lab')!, dn));
});

test('AUTH signatures: RSA method 1 and 14 (PKCS#1, PSS), ECDSA method 9 and 14; a wrong key or octets fail', () => {
  const octets = randomBytes(200);
  const ec = pki.priv('server-ec');
  const rsa = pki.priv('server-rsa');
  const classic = signAuth(ec, octets, undefined);
  assert.equal(classic.method, AuthMethod.ECDSA_SHA256_P256);
  assert.equal(classic.data.length, 64);
  verifyAuthSignature(SERVER_EC, classic.method, classic.data, octets, 'gw');
  const ds = signAuth(ec, octets, [HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384]);
  assert.equal(ds.method, AuthMethod.DIGITAL_SIGNATURE);
  verifyAuthSignature(SERVER_EC, ds.method, ds.data, octets, 'gw');
  const r1 = signAuth(rsa, octets, undefined);
  assert.equal(r1.method, AuthMethod.RSA_SIG);
  verifyAuthSignature(SERVER_RSA, r1.method, r1.data, octets, 'gw');
  const r14 = signAuth(rsa, octets, [HashAlgorithm.SHA2_384]);
  assert.equal(r14.method, AuthMethod.DIGITAL_SIGNATURE);
  verifyAuthSignature(SERVER_RSA, r14.method, r14.data, octets, 'gw');
  // RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32 (RFC 7427 appendix A.4.3)
  const pssAlg = Buffer.from('3041' + '06092a864886f70d01010a' + '3034' + 'a00f300d06096086480165030402010500' + 'a11c301a06092a864886f70d010108300d06096086480165030402010500' + 'a203020120', 'hex');
  const pssSig = cryptoSign('sha256', octets, { key: rsa, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
  verifyAuthSignature(SERVER_RSA, AuthMethod.DIGITAL_SIGNATURE, Buffer.concat([Buffer.of(pssAlg.length), pssAlg, pssSig]), octets, 'gw');
  assert.throws(() => verifyAuthSignature(SERVER_RSA, AuthMethod.DIGITAL_SIGNATURE, Buffer.concat([Buffer.of(pssAlg.length), pssAlg, pssSig]), randomBytes(200), 'gw'), code('AUTH_FAILED', /RSA-PSS sha256/));
  assert.throws(() => verifyAuthSignature(SERVER_RSA, classic.method, classic.data, octets, 'gw'), code('AUTH_FAILED'));
  assert.throws(() => verifyAuthSignature(SERVER_EC, ds.method, ds.data, randomBytes(200), 'gw'), code('AUTH_FAILED', /does not verify/));
});

// ------------------------------------------------------------------ a scripted responder

const ip4 = (s: string) => Uint8Array.from(s.split('.').map(Number));
const ts = (from: string, to: string): TrafficSelector => ({ type: TsType.IPV4_ADDR_RANGE, ipProtocol: 0, startPort: 0, endPort: 0xffff, startAddress: ip4(from), endAddress: ip4(to) });
const pl = (type: number, body: Uint8Array): IkePayload => ({ type, critical: false, body });
const note = (type: number, data: Uint8Array = new Uint8Array(0)) => pl(PayloadType.NOTIFY, buildNotify({ protocol: 0, spi: new Uint8Array(0), type, data }));
const [IKE] = parseIkeProposals(['aes128gcm16-prfsha256-ecp256']);

interface RespOpts {
  serverCert: X509Certificate[];
  serverKey: KeyObject;
  idr?: string;
  /** 'cert': the client must send a certificate chaining to clientCa; 'eap': EAP-MSCHAPv2 with password. */
  client: { kind: 'cert'; ca: X509Certificate } | { kind: 'eap'; password: string };
}

class Responder {
  spiI = new Uint8Array(8);
  spiR = randomBytes(8);
  nonceR = randomBytes(32);
  nonceI = new Uint8Array(0);
  keys!: IkeKeys;
  sk!: SkAlgorithms;
  initReq!: Uint8Array;
  initResp!: Uint8Array;
  idi!: Uint8Array;
  idr!: Uint8Array;
  firstAuth!: IkePayload[];
  peerHashes: number[] = [];
  challenge = randomBytes(16);
  msk: Uint8Array | undefined;
  eapStage = 0;
  log: string[] = [];
  constructor(readonly o: RespOpts) {}

  handle(raw: Uint8Array): Uint8Array[] {
    const m = parseIkeMessage(raw);
    if (m.header.exchange === IkeExchange.IKE_SA_INIT) return [this.init(raw, m)];
    const inner = openMessage(raw, m, this.sk, { encKey: this.keys.skEi, integKey: this.keys.skAi })!;
    if (m.header.exchange !== IkeExchange.IKE_AUTH) return [this.seal(m.header.exchange, m.header.messageId, [])];
    return [this.seal(IkeExchange.IKE_AUTH, m.header.messageId, this.auth(inner))];
  }

  seal(exchange: number, mid: number, inner: IkePayload[]): Uint8Array {
    const header: IkeHeaderFields = { spiI: this.spiI, spiR: this.spiR, exchange, flags: IkeFlags.RESPONSE, messageId: mid };
    return sealMessage(header, inner, this.sk, { encKey: this.keys.skEr, integKey: this.keys.skAr });
  }

  private init(raw: Uint8Array, m: IkeMessage): Uint8Array {
    this.spiI = Uint8Array.from(m.header.spiI);
    const p = m.payloads;
    const ke = parseKe(p.find((x) => x.type === PayloadType.KE)!.body);
    const sha = p.filter((x) => x.type === PayloadType.NOTIFY).map((x) => parseNotify(x.body)).find((n) => n.type === NotifyType.SIGNATURE_HASH_ALGORITHMS);
    this.peerHashes = sha ? parseHashAlgorithms(sha.data) : [];
    const prop = parseSa(p.find((x) => x.type === PayloadType.SA)!.body)[0]!;
    const first = (type: number) => prop.transforms.find((t) => t.type === type)!;
    const chosen: Proposal = { number: prop.number, protocol: ProtocolId.IKE, spi: new Uint8Array(0), transforms: [first(TransformType.ENCR), first(TransformType.PRF), first(TransformType.DH)] };
    const myKe = createKeyExchange(ke.group);
    this.nonceI = Uint8Array.from(parseNonce(p.find((x) => x.type === PayloadType.NONCE)!.body));
    const encr = IKE!.encrs[0]!;
    this.sk = { encr, integ: undefined };
    this.keys = deriveIkeKeys({ prf: IKE!.prfs[0]!.hash, nonceI: this.nonceI, nonceR: this.nonceR, sharedSecret: myKe.computeSecret(ke.data), spiI: this.spiI, spiR: this.spiR, lengths: { encKey: encr.keyBytes, integKey: 0 } });
    this.initReq = Uint8Array.from(raw);
    this.initResp = buildIkeMessage({
      header: { spiI: this.spiI, spiR: this.spiR, exchange: IkeExchange.IKE_SA_INIT, flags: IkeFlags.RESPONSE, messageId: 0 },
      payloads: [pl(PayloadType.SA, buildSa([chosen])), pl(PayloadType.KE, buildKe({ group: ke.group, data: myKe.publicValue })), pl(PayloadType.NONCE, buildNonce(this.nonceR)), pl(PayloadType.CERTREQ, buildCert({ encoding: CertEncoding.X509_SIGNATURE, data: caKeyHash(CA) })), note(NotifyType.SIGNATURE_HASH_ALGORITHMS, Uint8Array.of(0, 2, 0, 3, 0, 4))],
    });
    return this.initResp;
  }

  private serverAuthPayloads(): IkePayload[] {
    const prf = IKE!.prfs[0]!.hash;
    this.idr = buildId(parseIdentity(this.o.idr ?? 'server.lab')!);
    const octets = signedOctets({ message: this.initResp, nonce: this.nonceI, prf, skP: this.keys.skPr, idPayloadBody: this.idr });
    const a = signAuth(this.o.serverKey, octets, this.peerHashes);
    return [pl(PayloadType.IDr, this.idr), ...this.o.serverCert.map((c) => pl(PayloadType.CERT, buildCert({ encoding: CertEncoding.X509_SIGNATURE, data: c.raw }))), pl(PayloadType.AUTH, buildAuth(a))];
  }

  private child(): IkePayload[] {
    const prop = parseSa(this.firstAuth.find((x) => x.type === PayloadType.SA)!.body)[0]!;
    const chosen: Proposal = { number: prop.number, protocol: ProtocolId.ESP, spi: Buffer.from('c0ffee01', 'hex'), transforms: [prop.transforms.find((t) => t.type === TransformType.ENCR)!, { type: TransformType.ESN, id: 0, attributes: [] }] };
    const cp = buildCp({ type: CpType.REPLY, attributes: [{ type: CpAttr.INTERNAL_IP4_ADDRESS, value: ip4('10.201.0.9') }] });
    return [pl(PayloadType.CP, cp), pl(PayloadType.SA, buildSa([chosen])), pl(PayloadType.TSi, buildTs([ts('10.201.0.9', '10.201.0.9')])), pl(PayloadType.TSr, buildTs([ts('10.200.0.0', '10.200.0.255')]))];
  }

  private auth(inner: IkePayload[]): IkePayload[] {
    const prf = IKE!.prfs[0]!.hash;
    const o = this.o;
    if (!this.firstAuth) {
      this.firstAuth = inner;
      this.idi = inner.find((x) => x.type === PayloadType.IDi)!.body;
      const certreq = inner.find((x) => x.type === PayloadType.CERTREQ);
      if (certreq) this.log.push(`certreq ${certreqAuthorities(parseCert(certreq.body).data).length}`);
      const authP = inner.find((x) => x.type === PayloadType.AUTH);
      if (o.client.kind === 'cert') {
        const certs = inner.filter((x) => x.type === PayloadType.CERT).map((x) => new X509Certificate(Buffer.from(parseCert(x.body).data)));
        const a = parseAuth(authP!.body);
        this.log.push(`client auth method ${a.method}`);
        verifyChain(certs, [o.client.ca]);
        verifyAuthSignature(certs[0]!, a.method, a.data, signedOctets({ message: this.initReq, nonce: this.nonceR, prf, skP: this.keys.skPi, idPayloadBody: this.idi }), 'client');
        return [...this.serverAuthPayloads(), ...this.child()];
      }
      assert.equal(authP, undefined, 'no AUTH in the first IKE_AUTH of EAP');
      this.eapStage = 1;
      return [...this.serverAuthPayloads(), pl(PayloadType.EAP, buildEap(buildEapPacket({ code: EapCode.Request, identifier: 1, type: EapType.Identity, data: new Uint8Array(0) })))];
    }
    const eapP = inner.find((x) => x.type === PayloadType.EAP);
    if (o.client.kind === 'eap' && eapP) {
      const e = parseEap(eapP.body);
      const pkt = parseEapPacket(e);
      if (this.eapStage === 1) {
        assert.equal(pkt.code, EapCode.Response);
        this.log.push(`identity ${Buffer.from((pkt as { data: Uint8Array }).data).toString()}`);
        this.eapStage = 2;
        return [pl(PayloadType.EAP, buildEap(buildEapMschapv2(2, { kind: 'challenge', mschapId: 2, challenge: this.challenge, name: 'strongSwan' })))];
      }
      if (this.eapStage === 2) {
        const r = parseEapMschapv2(e).message;
        assert.equal(r.kind, 'response');
        if (r.kind !== 'response') return [];
        const user = Buffer.from(r.name).toString();
        const expect = generateNtResponse(this.challenge, r.peerChallenge, user, ntPasswordHash(o.client.password));
        if (!Buffer.from(expect).equals(Buffer.from(r.ntResponse))) {
          this.eapStage = 9;
          return [pl(PayloadType.EAP, buildEap(buildEapMschapv2(3, { kind: 'failure-request', mschapId: 2, message: `E=691 R=1 C=${randomBytes(16).toString('hex').toUpperCase()} V=3 M=wrong password` })))];
        }
        this.msk = eapMschapv2Msk(o.client.password, r.ntResponse);
        this.eapStage = 3;
        const s = generateAuthenticatorResponse(o.client.password, r.ntResponse, r.peerChallenge, this.challenge, user);
        return [pl(PayloadType.EAP, buildEap(buildEapMschapv2(3, { kind: 'success-request', mschapId: 2, message: `${s} M=welcome` })))];
      }
      if (this.eapStage === 3) {
        this.eapStage = 4;
        return [pl(PayloadType.EAP, buildEap(buildEapPacket({ code: EapCode.Success, identifier: 3 })))];
      }
    }
    // the final AUTH, made with the MSK
    const a = parseAuth(inner.find((x) => x.type === PayloadType.AUTH)!.body);
    const expect = pskAuth({ prf, psk: this.msk!, signedOctets: signedOctets({ message: this.initReq, nonce: this.nonceR, prf, skP: this.keys.skPi, idPayloadBody: this.idi }) });
    if (!expect.equals(Buffer.from(a.data))) return [note(NotifyType.AUTHENTICATION_FAILED)];
    this.log.push('msk auth ok');
    const mine = pskAuth({ prf, psk: this.msk!, signedOctets: signedOctets({ message: this.initResp, nonce: this.nonceI, prf, skP: this.keys.skPr, idPayloadBody: this.idr }) });
    return [pl(PayloadType.AUTH, buildAuth({ method: AuthMethod.SHARED_KEY_MIC, data: mine })), ...this.child()];
  }
}

function pump(i: IkeInitiator, r: Responder): InitiatorEvent[] {
  const all: InitiatorEvent[] = [];
  let queue = i.start(0);
  for (let guard = 0; queue.length > 0 && guard < 50; guard++) {
    all.push(...queue);
    const next: InitiatorEvent[] = [];
    for (const ev of queue) if (ev.type === 'send') for (const resp of r.handle(ev.message)) next.push(...i.receive(resp, 0));
    queue = next;
  }
  return all;
}

function cfg(extra: Partial<InitiatorConfig>): InitiatorConfig {
  return {
    ike: parseIkeProposals(['aes128gcm16-prfsha256-ecp256']),
    esp: parseEspProposals(['aes128gcm16']),
    localId: parseIdentity('client@lab')!,
    remoteId: parseIdentity('server.lab'),
    remoteAddress: '192.0.2.1',
    remotePort: 500,
    tsi: [ANY_IPV4_TS],
    tsr: [ts('10.200.0.0', '10.200.0.255')],
    remoteAuth: { kind: 'pubkey', cas: [CA] },
    ...extra,
  };
}
const endOf = (evs: InitiatorEvent[]) => evs.find((e) => e.type === 'ended') as Extract<InitiatorEvent, { type: 'ended' }> | undefined;
const upOf = (evs: InitiatorEvent[]) => evs.find((e) => e.type === 'established') as Extract<InitiatorEvent, { type: 'established' }> | undefined;

test('initiator: gateway ECDSA certificate with an intermediate, our ECDSA certificate, RFC 7427 both ways', () => {
  const r = new Responder({ serverCert: [SERVER_EC, INTER], serverKey: pki.priv('server-ec'), client: { kind: 'cert', ca: CA } });
  const client = pki.cert('client-ec');
  const i = new IkeInitiator(cfg({ localAuth: { kind: 'pubkey', certs: [client.raw], key: pki.priv('client-ec') } }));
  const evs = pump(i, r);
  assert.equal(endOf(evs), undefined, endOf(evs)?.error?.message);
  assert.equal(upOf(evs)?.sa.remoteId, 'server.lab');
  assert.deepEqual(r.log, ['certreq 1', `client auth method ${AuthMethod.DIGITAL_SIGNATURE}`]);
});

test('initiator: gateway RSA certificate, EAP-MSCHAPv2 with identity, MSK-based AUTH both ways', () => {
  const r = new Responder({ serverCert: [SERVER_RSA], serverKey: pki.priv('server-rsa'), client: { kind: 'eap', password: 'alice-password' } });
  const i = new IkeInitiator(cfg({ localId: parseIdentity('alice')!, localAuth: { kind: 'eap', identity: 'alice', password: 'alice-password' } }));
  const evs = pump(i, r);
  assert.equal(endOf(evs), undefined, endOf(evs)?.error?.message);
  assert.equal(upOf(evs)?.sa.cp.vip, '10.201.0.9');
  assert.deepEqual(r.log, ['certreq 1', 'identity alice', 'msk auth ok']);
});

test('initiator: a wrong EAP password is AUTH_FAILED; an untrusted CA, a missing intermediate, an identity the certificate lacks and a bad signature each their error', () => {
  const wrong = pump(new IkeInitiator(cfg({ localId: parseIdentity('alice')!, localAuth: { kind: 'eap', identity: 'alice', password: 'nope' } })), new Responder({ serverCert: [SERVER_RSA], serverKey: pki.priv('server-rsa'), client: { kind: 'eap', password: 'alice-password' } }));
  assert.equal(endOf(wrong)?.reason, 'auth-failed');
  assert.match(endOf(wrong)!.error!.message, /EAP-MSCHAPv2 authentication as 'alice' failed \(wrong user name or password: wrong password\)/);
  const eap = { localId: parseIdentity('alice')!, localAuth: { kind: 'eap' as const, identity: 'alice', password: 'alice-password' } };
  const rogue = pump(new IkeInitiator(cfg(eap)), new Responder({ serverCert: [pki.cert('rogue')], serverKey: pki.priv('rogue'), client: { kind: 'eap', password: 'alice-password' } }));
  assert.equal(endOf(rogue)?.error?.code, 'CERT_UNTRUSTED');
  const noInter = pump(new IkeInitiator(cfg(eap)), new Responder({ serverCert: [SERVER_EC], serverKey: pki.priv('server-ec'), client: { kind: 'eap', password: 'alice-password' } }));
  assert.equal(endOf(noInter)?.error?.code, 'CERT_UNTRUSTED');
  const otherId = pump(new IkeInitiator(cfg({ ...eap, remoteId: undefined })), new Responder({ serverCert: [SERVER_RSA], serverKey: pki.priv('server-rsa'), idr: 'vpn.example', client: { kind: 'eap', password: 'alice-password' } }));
  assert.equal(endOf(otherId)?.error?.code, 'CERT_IDENTITY');
  assert.match(endOf(otherId)!.error!.message, /identified itself as 'vpn\.example', but its certificate 'CN=server\.lab' \(subjectAltName DNS:server\.lab, IP Address:192\.0\.2\.1\) is not for that identity/);
  const wrongKey = pump(new IkeInitiator(cfg(eap)), new Responder({ serverCert: [SERVER_RSA], serverKey: pki.priv('server-ec'), client: { kind: 'eap', password: 'alice-password' } }));
  assert.equal(endOf(wrongKey)?.error?.code, 'AUTH_FAILED');
});

test('prepareIpsec: certificates from x509/ and x509ca/, the key found in private/, EAP password from secrets', async () => {
  const base = mkdtempSync(join(tmpdir(), 'ike-auth-conf-'));
  for (const d of ['x509', 'x509ca', 'private']) execFileSync('mkdir', ['-p', join(base, d)]);
  writeFileSync(join(base, 'x509', 'client.crt'), readFileSync(join(pki.dir, 'client-ec.crt')));
  writeFileSync(join(base, 'x509ca', 'ca.crt'), readFileSync(join(pki.dir, 'ca.crt')));
  writeFileSync(join(base, 'private', 'other.key'), readFileSync(join(pki.dir, 'server-rsa.key')));
  writeFileSync(join(base, 'private', 'client.key'), readFileSync(join(pki.dir, 'client-ec.key')));
  const conf = (local: string) => `connections {\n  c {\n    remote_addrs = 192.0.2.1\n    vips = 0.0.0.0\n    local {\n${local}\n    }\n    remote {\n      auth = pubkey\n      id = server.lab\n    }\n    children {\n      net {\n        remote_ts = 10.200.0.0/24\n      }\n    }\n  }\n}\nsecrets {\n  eap-alice {\n    id = alice\n    secret = alice-password\n  }\n}\n`;
  const a = await prepareIpsec({ config: parseIpsecConfig(conf('      auth = pubkey\n      certs = client.crt'), join(base, 'swanctl.conf')) });
  assert.ok(a.backend);
  const b = await prepareIpsec({ config: parseIpsecConfig(conf('      auth = eap-mschapv2\n      eap_id = alice'), join(base, 'swanctl.conf')) });
  assert.ok(b.backend);
  await assert.rejects(prepareIpsec({ config: parseIpsecConfig(conf('      auth = eap-mschapv2\n      eap_id = bob'), join(base, 'swanctl.conf')) }), code('PROFILE_SYNTAX', /no EAP password for 'bob'/));
});
