/**
 * Deterministic pseudo-random bytes: the AES-256-CTR keystream (zero IV) under key sha256("vpnproxy-lab:" + seed).
 * The web host serves them (`GET /bytes/N?seed=S`); tests recompute them here to check bodies and hashes.
 * Byte i of the stream is the same whatever the chunking, so a prefix of a longer body equals a shorter body.
 */
import { createCipheriv, createHash } from 'node:crypto';

/** Seed used when a request gives none. */
export const DEFAULT_SEED = 'lab';
const ZEROS = Buffer.alloc(64 * 1024);

function keystream(seed: string) {
  const key = createHash('sha256').update(`vpnproxy-lab:${seed}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
}

/** Yields the first `n` bytes of the stream for `seed` in chunks of at most `chunk` bytes (max 64 KiB). */
export function* detChunks(n: number, seed: string = DEFAULT_SEED, chunk = 64 * 1024): Generator<Buffer> {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`bad length ${n}`);
  const size = Math.max(1, Math.min(chunk, ZEROS.length));
  const c = keystream(seed);
  for (let left = n; left > 0; ) {
    const k = Math.min(size, left);
    yield c.update(ZEROS.subarray(0, k));
    left -= k;
  }
}

/** The first `n` bytes of the stream for `seed`, in one buffer. */
export function detBytes(n: number, seed: string = DEFAULT_SEED): Buffer {
  return Buffer.concat([...detChunks(n, seed)], n);
}

/** Hex sha256 of `detBytes(n, seed)`, computed without holding the whole body. */
export function detSha256(n: number, seed: string = DEFAULT_SEED): string {
  const h = createHash('sha256');
  for (const c of detChunks(n, seed)) h.update(c);
  return h.digest('hex');
}
