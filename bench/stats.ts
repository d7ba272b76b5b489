/** Statistics for the benchmark: medians, extremes and percentiles of small samples. Pure. */

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
}

/** Numbers sorted ascending (a copy; NaN dropped). */
export function sorted(xs: readonly number[]): number[] {
  return xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
}

/**
 * The p-th percentile (0..100) of an ascending array, interpolating linearly between the closest ranks
 * (Hyndman-Fan type 7, what numpy and most spreadsheets use). NaN for an empty array.
 */
export function percentileSorted(asc: readonly number[], p: number): number {
  if (asc.length === 0) return NaN;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is not within 0..100`);
  const h = (asc.length - 1) * (p / 100);
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  const a = asc[lo]!;
  const b = asc[hi]!;
  return a + (b - a) * (h - lo);
}

export function percentile(xs: readonly number[], p: number): number {
  return percentileSorted(sorted(xs), p);
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

/** Median, min and max of a sample (NaN fields when it is empty). */
export function summarize(xs: readonly number[]): Summary {
  const s = sorted(xs);
  return {
    n: s.length,
    median: percentileSorted(s, 50),
    min: s.length ? s[0]! : NaN,
    max: s.length ? s[s.length - 1]! : NaN,
  };
}

/** ours/native of two medians; NaN when either is missing or native is 0. */
export function ratio(ours: number, native: number): number {
  if (!Number.isFinite(ours) || !Number.isFinite(native) || native === 0) return NaN;
  return ours / native;
}

/** Bytes over seconds in Mbit/s (decimal: 1 Mbit = 10^6 bits). */
export function mbitPerSec(bytes: number, seconds: number): number {
  return seconds > 0 ? (bytes * 8) / seconds / 1e6 : NaN;
}

/** CPU seconds per decimal gigabyte moved. */
export function cpuSecPerGB(cpuSeconds: number, bytes: number): number {
  return bytes > 0 ? cpuSeconds / (bytes / 1e9) : NaN;
}
