/**
 * IKEv2 proposals (RFC 7296 §3.3): strongSwan's proposal keywords (`aes128-sha256-modp2048`,
 * `aes128gcm16-prfsha256-ecp256`, `aes128gcm16`, `aes256-sha256`, `default`) turned into the SA payload we
 * offer, and the responder's choice checked against it and turned into the algorithms we key.
 *
 * IKE SA: ENCR (AES-CBC 128/192/256, AES-GCM-8/12/16, ChaCha20-Poly1305), PRF (HMAC-SHA1/SHA2), INTEG
 * (HMAC-SHA1-96, HMAC-SHA2-256-128/384-192/512-256; none with AEAD) and a key exchange group of dh.ts. As in
 * strongSwan, several algorithms of one kind in one keyword are alternatives, an integrity algorithm without a
 * PRF brings the PRF of the same hash, and a keyword mixing AEAD and classic ciphers becomes two proposals.
 *
 * ESP (the CHILD_SA of IKE_AUTH): the suites of src/crypto/ipsec-algorithms.ts, with the mandatory ESN
 * transform (`esn` / `noesn`, default no ESN). Key exchange groups in an ESP keyword only matter for
 * CREATE_CHILD_SA (strongSwan documents the same) and are left out of IKE_AUTH.
 */
import { espSuite, espSuiteByTransforms, transformsOf, type EspSuite } from '../../crypto/ipsec-algorithms.js';
import { AEADS, CBC_CIPHERS, DIGESTS } from '../../crypto/registry.js';
import type { AeadAlgorithm } from '../../crypto/aead.js';
import type { CbcCipher, Digest } from '../../crypto/cbc-hmac.js';
import { groupName, isSupportedGroup } from '../../crypto/dh.js';
import type { PrfHash } from '../../crypto/prf-plus.js';
import { VpnError } from '../../errors.js';
import { EncrId, EsnId, IntegId, PrfId, ProtocolId, TransformType, transformIdName, transformTypeName } from '../../wire/ike-constants.js';
import { keyLengthAttribute, transformKeyLength, type Proposal, type Transform } from '../../wire/ike-payloads.js';

/** An IKE SA encryption algorithm. */
export interface IkeEncr {
  readonly id: number;
  readonly keyBits?: number;
  readonly name: string;
  readonly aead?: AeadAlgorithm;
  readonly cbc?: CbcCipher;
  /** SK_e* bytes: the cipher key, plus the 4-byte salt for AEAD (RFC 5282, RFC 7634). */
  readonly keyBytes: number;
  /** AEAD tag bytes (0 for CBC, whose ICV is the integrity algorithm's). */
  readonly tagBytes: number;
}

/** An IKE SA integrity algorithm (HMAC, truncated). */
export interface IkeInteg {
  readonly id: number;
  readonly name: string;
  readonly digest: Digest;
  /** SK_a* bytes. */
  readonly keyBytes: number;
  /** ICV bytes. */
  readonly icvBytes: number;
}

export interface IkePrf {
  readonly id: number;
  readonly name: string;
  readonly hash: PrfHash;
}

/** What the responder chose for the IKE SA. */
export interface IkeSuite {
  readonly encr: IkeEncr;
  readonly integ?: IkeInteg;
  readonly prf: IkePrf;
  readonly dhGroup: number;
  /** strongSwan-style text, e.g. 'AES_GCM_16_128/PRF_HMAC_SHA2_256/ECP_256'. */
  readonly text: string;
}

/** One IKE proposal we offer: the alternatives of each transform type. */
export interface IkeOffer {
  readonly keyword: string;
  readonly encrs: readonly IkeEncr[];
  readonly integs: readonly IkeInteg[];
  readonly prfs: readonly IkePrf[];
  readonly groups: readonly number[];
}

/** One ESP proposal we offer. */
export interface EspOffer {
  readonly keyword: string;
  readonly suites: readonly EspSuite[];
  /** ESN transform IDs offered (0 = no ESN, 1 = ESN). */
  readonly esn: readonly number[];
  /** Key exchange groups for PFS in CREATE_CHILD_SA (empty: none); never sent in IKE_AUTH. */
  readonly groups: readonly number[];
}

// ---------------------------------------------------------------- the algorithm tables

const gcmEncr = (bits: 128 | 192 | 256, icv: 8 | 12 | 16): IkeEncr => {
  const aead = AEADS[`AES-${bits}-GCM`];
  const id = icv === 16 ? EncrId.AES_GCM_16 : icv === 12 ? EncrId.AES_GCM_12 : EncrId.AES_GCM_8;
  return { id, keyBits: bits, name: `AES_GCM_${icv}_${bits}`, aead, keyBytes: aead.keyLength + 4, tagBytes: icv };
};
const cbcEncr = (bits: 128 | 192 | 256): IkeEncr => {
  const cbc = CBC_CIPHERS[`AES-${bits}-CBC`];
  return { id: EncrId.AES_CBC, keyBits: bits, name: `AES_CBC_${bits}`, cbc, keyBytes: cbc.keyLength, tagBytes: 0 };
};
const CHACHA: IkeEncr = { id: EncrId.CHACHA20_POLY1305, name: 'CHACHA20_POLY1305', aead: AEADS['CHACHA20-POLY1305'], keyBytes: 36, tagBytes: 16 };

const ENCR_TOKENS: Readonly<Record<string, IkeEncr>> = {
  aes: cbcEncr(128),
  aes128: cbcEncr(128),
  aes192: cbcEncr(192),
  aes256: cbcEncr(256),
  chacha20poly1305: CHACHA,
};
for (const bits of [128, 192, 256] as const) {
  for (const [icv, aliases] of [[16, ['16', '128', '']], [12, ['12', '96']], [8, ['8', '64']]] as const) {
    for (const a of aliases) (ENCR_TOKENS as Record<string, IkeEncr>)[`aes${bits}gcm${a}`] = gcmEncr(bits, icv);
  }
}

const integ = (id: number, name: string, digest: Digest, icv: number): IkeInteg => ({ id, name, digest, keyBytes: digest.size, icvBytes: icv });
const INTEG_TOKENS: Readonly<Record<string, IkeInteg>> = {
  sha1: integ(IntegId.HMAC_SHA1_96, 'HMAC_SHA1_96', DIGESTS.SHA1, 12),
  sha: integ(IntegId.HMAC_SHA1_96, 'HMAC_SHA1_96', DIGESTS.SHA1, 12),
  sha256: integ(IntegId.HMAC_SHA2_256_128, 'HMAC_SHA2_256_128', DIGESTS.SHA256, 16),
  sha2_256: integ(IntegId.HMAC_SHA2_256_128, 'HMAC_SHA2_256_128', DIGESTS.SHA256, 16),
  sha384: integ(IntegId.HMAC_SHA2_384_192, 'HMAC_SHA2_384_192', DIGESTS.SHA384, 24),
  sha2_384: integ(IntegId.HMAC_SHA2_384_192, 'HMAC_SHA2_384_192', DIGESTS.SHA384, 24),
  sha512: integ(IntegId.HMAC_SHA2_512_256, 'HMAC_SHA2_512_256', DIGESTS.SHA512, 32),
  sha2_512: integ(IntegId.HMAC_SHA2_512_256, 'HMAC_SHA2_512_256', DIGESTS.SHA512, 32),
};

const prf = (id: number, name: string, hash: PrfHash): IkePrf => ({ id, name, hash });
const PRF_BY_HASH: Readonly<Record<PrfHash, IkePrf>> = {
  sha1: prf(PrfId.HMAC_SHA1, 'PRF_HMAC_SHA1', 'sha1'),
  sha256: prf(PrfId.HMAC_SHA2_256, 'PRF_HMAC_SHA2_256', 'sha256'),
  sha384: prf(PrfId.HMAC_SHA2_384, 'PRF_HMAC_SHA2_384', 'sha384'),
  sha512: prf(PrfId.HMAC_SHA2_512, 'PRF_HMAC_SHA2_512', 'sha512'),
};
const PRF_TOKENS: Readonly<Record<string, IkePrf>> = {
  prfsha1: PRF_BY_HASH.sha1,
  prfsha256: PRF_BY_HASH.sha256,
  prfsha2_256: PRF_BY_HASH.sha256,
  prfsha384: PRF_BY_HASH.sha384,
  prfsha2_384: PRF_BY_HASH.sha384,
  prfsha512: PRF_BY_HASH.sha512,
  prfsha2_512: PRF_BY_HASH.sha512,
};

const GROUP_TOKENS: Readonly<Record<string, number>> = {
  modp2048: 14,
  modp3072: 15,
  modp4096: 16,
  ecp256: 19,
  ecp384: 20,
  ecp521: 21,
  x25519: 31,
  curve25519: 31,
};
/** Known to strongSwan but not implemented here: named in the error instead of "unknown". */
const KNOWN_UNSUPPORTED = new Set([
  '3des', 'des', 'blowfish', 'cast128', 'camellia', 'camellia128', 'camellia192', 'camellia256', 'aes128ctr', 'aes192ctr', 'aes256ctr',
  'aes128ccm16', 'aes192ccm16', 'aes256ccm16', 'aes128ccm12', 'aes128ccm8', 'aes128gmac', 'aes256gmac', 'null', 'md5', 'md5_128',
  'aesxcbc', 'aescmac', 'sha256_96', 'prfmd5', 'prfaesxcbc', 'prfaescmac', 'modp768', 'modp1024', 'modp1536', 'modp6144', 'modp8192',
  'modp1024s160', 'modp2048s224', 'modp2048s256', 'ecp192', 'ecp224', 'ecp224bp', 'ecp256bp', 'ecp384bp', 'ecp512bp', 'x448', 'curve448',
  'ntru112', 'ntru128', 'ntru192', 'ntru256', 'newhope128', 'ke1_mlkem768',
]);

/** strongSwan's `default` for IKE, within what we implement (AEAD first). */
export const DEFAULT_IKE_PROPOSALS: readonly string[] = [
  'aes128gcm16-aes256gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-modp3072-modp2048',
  'aes128-aes192-aes256-sha256-sha384-sha512-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-modp3072-modp2048',
];
/** strongSwan's `default` for ESP (AEAD first). */
export const DEFAULT_ESP_PROPOSALS: readonly string[] = ['aes128gcm16-aes256gcm16-chacha20poly1305', 'aes128-aes256-sha256-sha384-sha512'];

function unsupportedToken(kind: 'IKE' | 'ESP', keyword: string, token: string, where: string | undefined): VpnError {
  const w = where ? `${where}: ` : '';
  const known = KNOWN_UNSUPPORTED.has(token);
  const supported =
    kind === 'IKE'
      ? 'aes128/192/256, aes128/192/256gcm8/12/16, chacha20poly1305; sha1, sha256, sha384, sha512; prfsha1/256/384/512; modp2048/3072/4096, ecp256/384/521, x25519'
      : 'aes128/192/256gcm8/12/16, chacha20poly1305, aes128/192/256 or null with sha1/sha256/sha384/sha512; esn, noesn';
  return new VpnError('ALGORITHM_UNSUPPORTED', `${w}${kind} proposal '${keyword}': ${known ? 'algorithm' : 'unknown algorithm'} '${token}' is not supported (supported: ${supported})`);
}

const uniq = <T>(xs: readonly T[], key: (x: T) => string): T[] => {
  const seen = new Set<string>();
  return xs.filter((x) => (seen.has(key(x)) ? false : (seen.add(key(x)), true)));
};

/**
 * The IKE proposals of a connection (`proposals = …`): one or two offers per keyword (AEAD and classic
 * ciphers are split). Throws VpnError ALGORITHM_UNSUPPORTED for algorithms we do not implement and
 * PROFILE_SYNTAX for incomplete keywords; `where` (file:line) starts the message.
 */
export function parseIkeProposals(keywords: readonly string[], where?: string): IkeOffer[] {
  const list = keywords.flatMap((k) => (k.toLowerCase() === 'default' ? DEFAULT_IKE_PROPOSALS : [k]));
  const out: IkeOffer[] = [];
  const w = where ? `${where}: ` : '';
  for (const keyword of list) {
    const encrs: IkeEncr[] = [];
    const integs: IkeInteg[] = [];
    const prfs: IkePrf[] = [];
    const groups: number[] = [];
    for (const t of keyword.toLowerCase().split('-')) {
      if (ENCR_TOKENS[t]) encrs.push(ENCR_TOKENS[t]);
      else if (INTEG_TOKENS[t]) integs.push(INTEG_TOKENS[t]);
      else if (PRF_TOKENS[t]) prfs.push(PRF_TOKENS[t]);
      else if (GROUP_TOKENS[t] !== undefined) groups.push(GROUP_TOKENS[t]);
      else throw unsupportedToken('IKE', keyword, t, where);
    }
    if (encrs.length === 0) throw new VpnError('PROFILE_SYNTAX', `${w}IKE proposal '${keyword}' has no encryption algorithm`);
    if (groups.length === 0) throw new VpnError('PROFILE_SYNTAX', `${w}IKE proposal '${keyword}' has no key exchange group (e.g. ecp256, modp2048, x25519)`);
    const aead = encrs.filter((e) => e.aead);
    const classic = encrs.filter((e) => !e.aead);
    const g = uniq(groups, String);
    if (classic.length > 0) {
      if (integs.length === 0) throw new VpnError('PROFILE_SYNTAX', `${w}IKE proposal '${keyword}': ${classic[0]!.name} needs an integrity algorithm (e.g. sha256)`);
      const p = prfs.length > 0 ? prfs : integs.map((i) => PRF_BY_HASH[i.digest.nodeName]);
      out.push({ keyword, encrs: uniq(classic, (e) => e.name), integs: uniq(integs, (i) => i.name), prfs: uniq(p, (x) => x.name), groups: g });
    }
    if (aead.length > 0) {
      const p = prfs.length > 0 ? prfs : integs.map((i) => PRF_BY_HASH[i.digest.nodeName]);
      if (p.length === 0) throw new VpnError('PROFILE_SYNTAX', `${w}IKE proposal '${keyword}': an AEAD cipher needs a PRF (e.g. ${aead[0]!.name.toLowerCase().startsWith('aes') ? 'aes128gcm16-prfsha256-ecp256' : 'chacha20poly1305-prfsha256-x25519'})`);
      out.push({ keyword, encrs: uniq(aead, (e) => e.name), integs: [], prfs: uniq(p, (x) => x.name), groups: g });
    }
  }
  return out;
}

/** The ESP proposals of a child (`esp_proposals = …`). */
export function parseEspProposals(keywords: readonly string[], where?: string): EspOffer[] {
  const list = keywords.flatMap((k) => (k.toLowerCase() === 'default' ? DEFAULT_ESP_PROPOSALS : [k]));
  const out: EspOffer[] = [];
  for (const keyword of list) {
    const encrs: string[] = [];
    const integs: string[] = [];
    const esn: number[] = [];
    const groups: number[] = [];
    for (const t of keyword.toLowerCase().split('-')) {
      if (t === 'esn') esn.push(EsnId.ESN);
      else if (t === 'noesn') esn.push(EsnId.NO_ESN);
      else if (GROUP_TOKENS[t] !== undefined) groups.push(GROUP_TOKENS[t]); // CREATE_CHILD_SA only
      else if (t === 'none') continue;
      else if (ENCR_TOKENS[t] || t === 'null') encrs.push(t === 'null' ? 'null' : t);
      else if (INTEG_TOKENS[t]) integs.push(t);
      else throw unsupportedToken('ESP', keyword, t, where);
    }
    const w = where ? `${where}: ` : '';
    if (encrs.length === 0) throw new VpnError('PROFILE_SYNTAX', `${w}ESP proposal '${keyword}' has no encryption algorithm`);
    const aead: EspSuite[] = [];
    const classic: EspSuite[] = [];
    for (const e of encrs) {
      const isAead = e !== 'null' && ENCR_TOKENS[e]!.aead !== undefined;
      if (isAead) aead.push(suiteOrThrow(e, keyword, where));
      else {
        if (integs.length === 0) throw new VpnError('PROFILE_SYNTAX', `${w}ESP proposal '${keyword}': ${e} needs an integrity algorithm (e.g. sha256)`);
        for (const i of integs) classic.push(suiteOrThrow(`${e}-${i}`, keyword, where));
      }
    }
    const esnIds = esn.length > 0 ? uniq(esn, String) : [EsnId.NO_ESN];
    for (const suites of [aead, classic]) if (suites.length > 0) out.push({ keyword, suites: uniq(suites, (s) => s.name), esn: esnIds, groups: uniq(groups, String) });
  }
  return out;
}

function suiteOrThrow(kw: string, keyword: string, where: string | undefined): EspSuite {
  try {
    return espSuite(kw).suite;
  } catch {
    throw unsupportedToken('ESP', keyword, kw, where);
  }
}

/** The group of the KE payload of the first IKE_SA_INIT: the first proposal's first group. */
export function firstGroup(offers: readonly IkeOffer[]): number {
  return offers[0]!.groups[0]!;
}

/** Every group offered (for checking an INVALID_KE_PAYLOAD request). */
export function offeredGroups(offers: readonly IkeOffer[]): number[] {
  return uniq(offers.flatMap((o) => o.groups), String);
}

const tf = (type: number, id: number, keyBits?: number): Transform => ({ type, id, attributes: keyBits === undefined ? [] : [keyLengthAttribute(keyBits)] });

/** What we sent in an IKE_SA_INIT: the proposals and, in the same order, the offers they came from. */
export interface SentIkeProposals {
  readonly proposals: Proposal[];
  readonly offers: readonly IkeOffer[];
}

/**
 * The SA payload's proposals for IKE_SA_INIT. With `group` (an INVALID_KE_PAYLOAD retry) that group is moved
 * to the front of every proposal that has it, and proposals without it are left out (the KE must match).
 */
export function ikeSaProposals(offers: readonly IkeOffer[], group?: number): SentIkeProposals {
  const used = group === undefined ? offers : offers.filter((o) => o.groups.includes(group));
  const proposals = used.map((o, i) => ({
    number: i + 1,
    protocol: ProtocolId.IKE,
    spi: new Uint8Array(0),
    transforms: [
      ...o.encrs.map((e) => tf(TransformType.ENCR, e.id, e.keyBits)),
      ...o.prfs.map((p) => tf(TransformType.PRF, p.id)),
      ...o.integs.map((x) => tf(TransformType.INTEG, x.id)),
      ...(group === undefined ? o.groups : [group, ...o.groups.filter((g) => g !== group)]).map((g) => tf(TransformType.DH, g)),
    ],
  }));
  return { proposals, offers: used };
}

/** The offers espSaProposals() turns into proposals for `group` (all of them without one), in the same order. */
export function espOffersWith(offers: readonly EspOffer[], group?: number): readonly EspOffer[] {
  return group === undefined ? offers : offers.filter((o) => o.groups.includes(group));
}

/**
 * The SA payload's proposals for a CHILD_SA with our inbound SPI: in IKE_AUTH without key exchange groups; in
 * CREATE_CHILD_SA with `group` (PFS) only the offers that have it, that group first.
 */
export function espSaProposals(offers: readonly EspOffer[], spi: number, group?: number): Proposal[] {
  offers = espOffersWith(offers, group);
  const spiBytes = Uint8Array.of(spi >>> 24, (spi >>> 16) & 0xff, (spi >>> 8) & 0xff, spi & 0xff);
  return offers.map((o, i) => {
    const t = o.suites.map(transformsOf);
    const encr = uniq(t, (x) => `${x.encr}/${x.keyBits}`).map((x) => tf(TransformType.ENCR, x.encr, x.keyBits));
    const integ = uniq(t.filter((x) => x.integ !== undefined), (x) => String(x.integ)).map((x) => tf(TransformType.INTEG, x.integ!));
    const dh = group === undefined ? [] : [group, ...o.groups.filter((g) => g !== group)].map((g) => tf(TransformType.DH, g));
    return { number: i + 1, protocol: ProtocolId.ESP, spi: spiBytes, transforms: [...encr, ...integ, ...dh, ...o.esn.map((e) => tf(TransformType.ESN, e))] };
  });
}

/** A group as strongSwan's logs name it: MODP_2048, ECP_256, CURVE_25519. */
export const ssGroupName = (id: number): string => (id === 31 ? 'CURVE_25519' : groupName(id).replace('-', '_'));

/** Our offer as text for error messages: the keywords as configured (after `default` expansion). */
export function describeOffers(offers: readonly { keyword: string }[]): string {
  return uniq(offers.map((o) => o.keyword), (s) => s).join(', ');
}

/** The transforms of a chosen proposal by type; the responder must return exactly one of each. */
function onePerType(p: Proposal, required: readonly number[], optional: readonly number[]): Map<number, Transform> {
  const m = new Map<number, Transform>();
  for (const t of p.transforms) {
    if (m.has(t.type)) throw new VpnError('PROTOCOL', `the gateway chose a proposal with two ${transformTypeName(t.type)} transforms`);
    if (!required.includes(t.type) && !optional.includes(t.type)) throw new VpnError('PROTOCOL', `the gateway chose a proposal with an unexpected ${transformTypeName(t.type)} transform`);
    m.set(t.type, t);
  }
  for (const r of required) if (!m.has(r)) throw new VpnError('PROTOCOL', `the gateway chose a proposal without a ${transformTypeName(r)} transform`);
  return m;
}

function notOffered(t: Transform): VpnError {
  const bits = transformKeyLength(t);
  return new VpnError('PROTOCOL', `the gateway chose ${transformTypeName(t.type)} ${transformIdName(t.type, t.id)}${bits ? `/${bits}` : ''}, which we did not offer`);
}

/** Checks the responder's SA payload of IKE_SA_INIT against what we sent and returns the suite. */
export function chooseIkeSuite(sent: SentIkeProposals, reply: readonly Proposal[], rekey = false): IkeSuite {
  if (reply.length !== 1) throw new VpnError('PROTOCOL', `the gateway's SA payload has ${reply.length} proposals, expected exactly one`);
  const p = reply[0]!;
  const idx = sent.proposals.findIndex((s) => s.number === p.number);
  if (idx < 0 || p.protocol !== ProtocolId.IKE) throw new VpnError('PROTOCOL', `the gateway chose proposal #${p.number} (protocol ${p.protocol}), which we did not send`);
  if (rekey ? p.spi.length !== 8 : p.spi.length !== 0) throw new VpnError('PROTOCOL', rekey ? `the gateway's IKE rekey proposal has an SPI of ${p.spi.length} bytes, not 8` : 'the gateway sent an SPI in its IKE_SA_INIT proposal');
  const offer = sent.offers[idx]!;
  const aead = offer.encrs[0]!.aead !== undefined;
  const m = onePerType(p, aead ? [TransformType.ENCR, TransformType.PRF, TransformType.DH] : [TransformType.ENCR, TransformType.PRF, TransformType.INTEG, TransformType.DH], aead ? [TransformType.INTEG] : []);
  const et = m.get(TransformType.ENCR)!;
  const encr = offer.encrs.find((e) => e.id === et.id && e.keyBits === transformKeyLength(et));
  if (!encr) throw notOffered(et);
  const pt = m.get(TransformType.PRF)!;
  const prfAlg = offer.prfs.find((x) => x.id === pt.id);
  if (!prfAlg) throw notOffered(pt);
  let integAlg: IkeInteg | undefined;
  const it = m.get(TransformType.INTEG);
  if (it && !(aead && it.id === IntegId.NONE)) {
    integAlg = offer.integs.find((x) => x.id === it.id);
    if (!integAlg) throw notOffered(it);
  }
  const dt = m.get(TransformType.DH)!;
  if (!offer.groups.includes(dt.id) || !isSupportedGroup(dt.id)) throw notOffered(dt);
  const text = [encr.name, integAlg?.name, prfAlg.name, ssGroupName(dt.id)].filter(Boolean).join('/');
  return { encr, integ: integAlg, prf: prfAlg, dhGroup: dt.id, text };
}

/** The CHILD_SA the responder chose in IKE_AUTH: the ESP suite, ESN and its inbound SPI (our outbound). */
export function chooseEspSuite(sent: readonly Proposal[], offers: readonly EspOffer[], reply: readonly Proposal[]): { suite: EspSuite; esn: boolean; spi: number; group?: number } {
  if (reply.length !== 1) throw new VpnError('PROTOCOL', `the gateway's CHILD_SA SA payload has ${reply.length} proposals, expected exactly one`);
  const p = reply[0]!;
  const idx = sent.findIndex((s) => s.number === p.number);
  if (idx < 0 || p.protocol !== ProtocolId.ESP) throw new VpnError('PROTOCOL', `the gateway chose ESP proposal #${p.number} (protocol ${p.protocol}), which we did not send`);
  if (p.spi.length !== 4) throw new VpnError('PROTOCOL', `the gateway's ESP proposal has an SPI of ${p.spi.length} bytes`);
  const sentDh = sent[idx]!.transforms.filter((t) => t.type === TransformType.DH).map((t) => t.id);
  const offer = offers[idx]!;
  const m = onePerType(p, sentDh.length > 0 ? [TransformType.ENCR, TransformType.ESN, TransformType.DH] : [TransformType.ENCR, TransformType.ESN], [TransformType.INTEG]);
  const dhT = m.get(TransformType.DH);
  if (dhT && !sentDh.includes(dhT.id)) throw notOffered(dhT);
  const et = m.get(TransformType.ENCR)!;
  const it = m.get(TransformType.INTEG);
  let suite: EspSuite;
  try {
    suite = espSuiteByTransforms({ encr: et.id, keyBits: transformKeyLength(et), integ: it?.id });
  } catch {
    throw notOffered(it ?? et);
  }
  if (!offer.suites.includes(suite)) throw new VpnError('PROTOCOL', `the gateway chose ESP ${suite.name}, which proposal '${offer.keyword}' did not offer`);
  const esnT = m.get(TransformType.ESN)!;
  if (!offer.esn.includes(esnT.id)) throw notOffered(esnT);
  const spi = ((p.spi[0]! << 24) | (p.spi[1]! << 16) | (p.spi[2]! << 8) | p.spi[3]!) >>> 0;
  if (spi < 256) throw new VpnError('PROTOCOL', `the gateway chose the reserved ESP SPI ${spi}`);
  return { suite, esn: esnT.id === EsnId.ESN, spi, group: dhT?.id };
}
