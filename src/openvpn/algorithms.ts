/**
 * The crypto registry's lookups in OpenVPN's vocabulary: an algorithm the registry does not have is a
 * profile the client cannot run, so ALGORITHM_UNSUPPORTED is rethrown as PROFILE_UNSUPPORTED (same
 * message, exit code 2). The data channel and key derivation import from here, not from the registry.
 */
import { VpnError } from '../errors.js';
import * as registry from '../crypto/registry.js';
import type { DataCipher, Digest } from '../crypto/registry.js';

function inProfileTerms<T>(lookup: () => T): T {
  try {
    return lookup();
  } catch (err) {
    if (err instanceof VpnError && err.code === 'ALGORITHM_UNSUPPORTED') throw new VpnError('PROFILE_UNSUPPORTED', err.message, { cause: err });
    throw err;
  }
}

export const dataCipher = (name: string): DataCipher => inProfileTerms(() => registry.dataCipher(name));
export const digest = (name: string): Digest => inProfileTerms(() => registry.digest(name));
export const digestSize = (name: string): number => inProfileTerms(() => registry.digestSize(name));
export { normalizeAuthName } from '../crypto/registry.js';
