/** Loads test/fixtures/compress/cli-vectors.json (raw blocks made by the lz4 and lzop CLIs). */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

export interface CliVector {
  format: 'lz4' | 'lzo';
  tool: string;
  name: string;
  plain?: string;
  plainLength?: number;
  plainSha256?: string;
  compressed: string;
}

export function cliVectors(format: 'lz4' | 'lzo'): CliVector[] {
  const url = new URL('../../fixtures/compress/cli-vectors.json', import.meta.url);
  const all = (JSON.parse(readFileSync(url, 'utf8')) as { vectors: CliVector[] }).vectors;
  return all.filter((v) => v.format === format);
}

/** Expected length of a vector's plaintext. */
export function plainLength(v: CliVector): number {
  return v.plain !== undefined ? v.plain.length / 2 : v.plainLength!;
}

/** True if `out` is the vector's plaintext. */
export function matchesPlain(v: CliVector, out: Uint8Array): boolean {
  if (v.plain !== undefined) return Buffer.from(out).equals(Buffer.from(v.plain, 'hex'));
  return out.length === v.plainLength && createHash('sha256').update(out).digest('hex') === v.plainSha256;
}
