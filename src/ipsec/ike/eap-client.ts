/**
 * The EAP peer inside IKE_AUTH (RFC 7296 §2.16): EAP-Identity and EAP-MSCHAPv2 (RFC 2759, draft-kamath-pppext-
 * eap-mschapv2), sans-I/O. Each EAP request from the gateway gives the response to send; an EAP-Success after a
 * verified MSCHAPv2 Success leaves the 64-byte MSK for the AUTH payloads.
 */
import { randomBytes } from 'node:crypto';
import { mschapv2Client } from '../../crypto/mschapv2.js';
import { VpnError } from '../../errors.js';
import { buildEap, buildEapIdentityResponse, buildEapMschapv2, buildEapNak, EapCode, EapType, parseEap, parseEapMschapv2, parseFailureMessage, parseSuccessMessage } from '../../wire/eap.js';

export interface EapClientConfig {
  /** EAP identity (eap_id, or the IKE identity). */
  identity: string;
  /** The password, or its 16-byte NT hash. */
  password: string | Uint8Array;
  random?: (n: number) => Uint8Array;
}

export type EapStep = { type: 'respond'; eap: Uint8Array } | { type: 'success'; msk: Uint8Array };

export class EapMschapv2Client {
  private expected: string | undefined;
  private msk: Uint8Array | undefined;
  private verified = false;
  constructor(private readonly c: EapClientConfig) {}

  /** One EAP packet from the gateway; throws AUTH_FAILED or PROTOCOL. */
  step(raw: Uint8Array): EapStep {
    const p = parseEap(raw);
    if (p.code === EapCode.Success) {
      if (!this.verified || !this.msk) throw new VpnError('AUTH_FAILED', 'the gateway sent EAP-Success before MSCHAPv2 authenticated it');
      return { type: 'success', msk: this.msk };
    }
    if (p.code === EapCode.Failure) throw new VpnError('AUTH_FAILED', `EAP authentication as '${this.c.identity}' failed (EAP-Failure from the gateway)`);
    if (p.code !== EapCode.Request) throw new VpnError('PROTOCOL', `the gateway sent an EAP packet with code ${p.code}`);
    if (p.type === EapType.Identity) return { type: 'respond', eap: buildEapIdentityResponse(p.identifier, this.c.identity) };
    if (p.type === EapType.Notification) return { type: 'respond', eap: buildEap({ code: EapCode.Response, identifier: p.identifier, type: EapType.Notification, data: new Uint8Array(0) }) };
    if (p.type !== EapType.Mschapv2) return { type: 'respond', eap: buildEapNak(p.identifier, [EapType.Mschapv2]) };
    const m = parseEapMschapv2(raw).message;
    switch (m.kind) {
      case 'challenge': {
        const peerChallenge = Uint8Array.from((this.c.random ?? randomBytes)(16));
        const r = mschapv2Client({ authenticatorChallenge: m.challenge, peerChallenge, username: this.c.identity, password: this.c.password });
        this.expected = r.authenticatorResponse;
        this.msk = r.msk;
        return { type: 'respond', eap: buildEapMschapv2(p.identifier, { kind: 'response', mschapId: m.mschapId, peerChallenge, ntResponse: r.ntResponse, flags: 0, name: this.c.identity }) };
      }
      case 'success-request': {
        if (!this.expected) throw new VpnError('PROTOCOL', 'the gateway sent an MSCHAPv2 Success before any Challenge');
        const s = parseSuccessMessage(m.message.replace(/\0+$/, ''));
        if (s.authenticatorResponse.toUpperCase() !== this.expected.toUpperCase()) throw new VpnError('AUTH_FAILED', "the gateway's MSCHAPv2 authenticator response is wrong: it does not know the password (a rogue gateway?)");
        this.verified = true;
        return { type: 'respond', eap: buildEapMschapv2(p.identifier, { kind: 'success-response' }) };
      }
      case 'failure-request': {
        let why = '';
        try {
          const f = parseFailureMessage(m.message.replace(/\0+$/, ''));
          why = f.message ? `: ${f.message}` : '';
        } catch {
          // keep the plain message
        }
        throw new VpnError('AUTH_FAILED', `EAP-MSCHAPv2 authentication as '${this.c.identity}' failed (wrong user name or password${why})`);
      }
      default:
        throw new VpnError('PROTOCOL', `unexpected MSCHAPv2 ${m.kind} from the gateway`);
    }
  }
}
