/**
 * V8 tuning for the CLI process, which moves tens of thousands of packets a second.
 *
 * Each packet still costs a few ArrayBuffer backing stores that node:crypto and node:dgram allocate
 * (cipher output, auth tag, received datagram). After every scavenge V8 sweeps the list of those on a
 * background thread. On a machine with few cores that thread competes with the VPN server, the
 * application and our own main thread; measured on a 2-core machine, upload through the HTTP proxy went
 * from ~430 to ~520 Mbit/s when the sweep ran on the main thread instead (the server's socket overflowed
 * less often). With more cores the background thread is free, so we leave V8 alone there.
 *
 * V8 reads this flag only when it starts a sweep, so setting it at run time is safe. Anything the user
 * passed explicitly (node flags or NODE_OPTIONS) wins.
 */
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';

export const FEW_CORES = 4;

/** Whether the CLI should sweep array buffers on the main thread: few cores and no explicit user choice. */
export function wantsMainThreadSweeping(cores: number, execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  if (cores > FEW_CORES) return false;
  const userSet = (s: string) => /array[-_]buffer[-_]sweeping|single[-_]threaded[-_]gc/.test(s);
  return !execArgv.some(userSet) && !userSet(nodeOptions ?? '');
}

/** Applies the tuning to this process; returns whether it did. */
export function tuneGc(): boolean {
  if (!wantsMainThreadSweeping(availableParallelism(), process.execArgv, process.env.NODE_OPTIONS)) return false;
  setFlagsFromString('--no-concurrent-array-buffer-sweeping');
  return true;
}
