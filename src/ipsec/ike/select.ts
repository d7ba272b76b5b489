/**
 * The responder's choice in CREATE_CHILD_SA (RFC 7296 §2.7, §3.3.6): when the gateway rekeys a CHILD_SA or the
 * IKE SA, we pick one of its proposals that our configuration allows and answer with exactly one transform of
 * each type, under the gateway's proposal number and with our new SPI.
 *
 * Their proposals are taken in their order (the initiator lists its preference first, as strongSwan does when
 * it answers); within one, the first of their transforms of each type that some offer of ours accepts together
 * with the others. A key exchange group must also be the one of their KE payload; when a proposal would be
 * acceptable but with another group of theirs, the caller answers INVALID_KE_PAYLOAD with `wantGroup`.
 */
import type { EspSuite } from '../../crypto/ipsec-algorithms.js';
import { espSuiteByTransforms } from '../../crypto/ipsec-algorithms.js';
import { isSupportedGroup } from '../../crypto/dh.js';
import { EsnId, IntegId, ProtocolId, TransformType } from '../../wire/ike-constants.js';
import { keyLengthAttribute, transformKeyLength, type Proposal, type Transform } from '../../wire/ike-payloads.js';
import { ssGroupName, type EspOffer, type IkeEncr, type IkeInteg, type IkeOffer, type IkePrf, type IkeSuite } from './proposals.js';

const byType = (p: Proposal, type: number): Transform[] => p.transforms.filter((t) => t.type === type);
const tf = (type: number, id: number, keyBits?: number): Transform => ({ type, id, attributes: keyBits === undefined ? [] : [keyLengthAttribute(keyBits)] });

export interface EspChoice {
  /** The proposal to answer with (their number, our SPI, one transform per type). */
  readonly reply: Proposal;
  readonly suite: EspSuite;
  readonly esn: boolean;
  /** Their SPI (our outbound). */
  readonly peerSpi: number;
  /** The PFS group, when the chosen proposal has one. */
  readonly group?: number;
}

export type Selection<T> = { chosen: T } | { wantGroup: number } | { none: true };

/**
 * An ESP proposal of theirs we accept, with our inbound SPI `spi`. `keGroup` is the group of their KE payload
 * (undefined: no KE, so only proposals without a DH transform or with NONE qualify).
 */
export function selectEspProposal(theirs: readonly Proposal[], ours: readonly EspOffer[], spi: number, keGroup: number | undefined): Selection<EspChoice> {
  let wantGroup: number | undefined;
  for (const p of theirs) {
    if (p.protocol !== ProtocolId.ESP || p.spi.length !== 4) continue;
    const peerSpi = ((p.spi[0]! << 24) | (p.spi[1]! << 16) | (p.spi[2]! << 8) | p.spi[3]!) >>> 0;
    if (peerSpi < 256) continue;
    const dhs = byType(p, TransformType.DH).map((t) => t.id).filter((g) => g !== 0);
    const esns = byType(p, TransformType.ESN).map((t) => t.id);
    const integs = byType(p, TransformType.INTEG);
    for (const e of byType(p, TransformType.ENCR)) {
      for (const it of integs.length > 0 ? integs : [undefined]) {
        let suite: EspSuite;
        try {
          suite = espSuiteByTransforms({ encr: e.id, keyBits: transformKeyLength(e), integ: it?.id });
        } catch {
          continue;
        }
        for (const o of ours) {
          if (!o.suites.includes(suite)) continue;
          const esn = esns.find((x) => o.esn.includes(x));
          if (esn === undefined) continue;
          let group: number | undefined;
          if (dhs.length > 0) {
            const shared = dhs.filter((g) => o.groups.includes(g) && isSupportedGroup(g));
            if (shared.length === 0) continue;
            if (keGroup === undefined || !shared.includes(keGroup)) {
              wantGroup ??= shared[0];
              continue;
            }
            group = keGroup;
          } else if (o.groups.length > 0) {
            continue; // we insist on PFS for this offer
          }
          const spiBytes = Uint8Array.of(spi >>> 24, (spi >>> 16) & 0xff, (spi >>> 8) & 0xff, spi & 0xff);
          const transforms = [tf(TransformType.ENCR, e.id, transformKeyLength(e)), ...(it && it.id !== IntegId.NONE ? [tf(TransformType.INTEG, it.id)] : []), ...(group !== undefined ? [tf(TransformType.DH, group)] : []), tf(TransformType.ESN, esn)];
          return { chosen: { reply: { number: p.number, protocol: ProtocolId.ESP, spi: spiBytes, transforms }, suite, esn: esn === EsnId.ESN, peerSpi, group } };
        }
      }
    }
  }
  return wantGroup !== undefined ? { wantGroup } : { none: true };
}

export interface IkeChoice {
  /** The proposal to answer with (their number, our new 8-byte SPI, one transform per type). */
  readonly reply: Proposal;
  readonly suite: IkeSuite;
  /** Their new IKE SPI. */
  readonly peerSpi: Uint8Array;
}

/** An IKE proposal of theirs (an IKE SA rekey) we accept, with our new SPI; the group must be `keGroup`'s. */
export function selectIkeProposal(theirs: readonly Proposal[], ours: readonly IkeOffer[], spi: Uint8Array, keGroup: number): Selection<IkeChoice> {
  let wantGroup: number | undefined;
  for (const p of theirs) {
    if (p.protocol !== ProtocolId.IKE || p.spi.length !== 8) continue;
    const dhs = byType(p, TransformType.DH).map((t) => t.id);
    for (const o of ours) {
      const encr = firstMatch(byType(p, TransformType.ENCR), o.encrs, (t, x: IkeEncr) => x.id === t.id && x.keyBits === transformKeyLength(t));
      const prf = firstMatch(byType(p, TransformType.PRF), o.prfs, (t, x: IkePrf) => x.id === t.id);
      if (!encr || !prf) continue;
      let integ: { t: Transform; x: IkeInteg } | undefined;
      if (!encr.x.aead) {
        integ = firstMatch(byType(p, TransformType.INTEG), o.integs, (t, x: IkeInteg) => x.id === t.id);
        if (!integ) continue;
      }
      const shared = dhs.filter((g) => o.groups.includes(g) && isSupportedGroup(g));
      if (shared.length === 0) continue;
      if (!shared.includes(keGroup)) {
        wantGroup ??= shared[0];
        continue;
      }
      const transforms = [tf(TransformType.ENCR, encr.t.id, transformKeyLength(encr.t)), tf(TransformType.PRF, prf.t.id), ...(integ ? [tf(TransformType.INTEG, integ.t.id)] : []), tf(TransformType.DH, keGroup)];
      const text = [encr.x.name, integ?.x.name, prf.x.name, ssGroupName(keGroup)].filter(Boolean).join('/');
      return {
        chosen: {
          reply: { number: p.number, protocol: ProtocolId.IKE, spi: Uint8Array.from(spi), transforms },
          suite: { encr: encr.x, integ: integ?.x, prf: prf.x, dhGroup: keGroup, text },
          peerSpi: Uint8Array.from(p.spi),
        },
      };
    }
  }
  return wantGroup !== undefined ? { wantGroup } : { none: true };
}

function firstMatch<X>(ts: readonly Transform[], xs: readonly X[], eq: (t: Transform, x: X) => boolean): { t: Transform; x: X } | undefined {
  for (const t of ts) {
    const x = xs.find((c) => eq(t, c));
    if (x) return { t, x };
  }
  return undefined;
}
