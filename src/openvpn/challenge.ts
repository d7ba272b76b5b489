/**
 * Two-factor answers in OpenVPN's password field: the `static-challenge` response sent with the password
 * (SCRV1:base64(password):base64(response), or the response appended with `concat`), and the answer to a
 * server's CRV1 dynamic challenge (`CRV1::state_id::response`, sent as the password of the next connection).
 */
import { VpnError } from '../errors.js';

/**
 * What the user is asked for: the profile's static challenge, the text of the server's CRV1 challenge, or a
 * challenge sent during pending authentication (INFO_PRE,CR_TEXT, answered with CR_RESPONSE).
 */
export interface ChallengePrompt {
  kind: 'static' | 'crv1' | 'crtext';
  /** The text to show (the profile's TEXT, or the server's challenge text). */
  text: string;
  /** Show what is typed (the profile's ECHO, or CRV1's E flag). */
  echo: boolean;
}

/** Where a response comes from: a terminal prompt, --otp, VPNPROXY_OTP, --otp-command or a library callback. */
export type OtpSource = (prompt: ChallengePrompt) => Promise<string>;

/** The password field for a static challenge: `SCRV1:b64(password):b64(response)`, or password+response (concat). */
export function staticChallengePassword(password: string, response: string, format: 'scrv1' | 'concat'): string {
  if (format === 'concat') return password + response;
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  return `SCRV1:${b64(password)}:${b64(response)}`;
}

/** The control message that answers a CR_TEXT challenge: `CR_RESPONSE,base64(response)`. */
export function crResponseMessage(response: string): string {
  return `CR_RESPONSE,${Buffer.from(response, 'utf8').toString('base64')}`;
}

/** The password field that answers a CRV1 challenge. */
export function crv1Password(stateId: string, response: string): string {
  return `CRV1::${stateId}::${response}`;
}

/** A CRV1 challenge as parsed from `AUTH_FAILED,CRV1:flags:state_id:b64 username:text` (see push.ts). */
export interface Crv1Challenge {
  flags: string[];
  echo: boolean;
  responseRequired: boolean;
  stateId: string;
  username: string;
  text: string;
}

/**
 * Checks a response before it goes into the password field: OpenVPN's password buffer ends at a newline,
 * and the CRV1 form is split on '::', so neither may appear. Surrounding whitespace (a password manager's
 * trailing newline) is removed.
 */
export function cleanResponse(raw: string, from: string): string {
  const r = raw.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
  if (/[\r\n\0]/.test(r)) throw new VpnError('USAGE', `the two-factor response from ${from} has more than one line`);
  return r;
}
