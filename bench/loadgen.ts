/**
 * HTTP load generator (undici): C keep-alive connections, each with one request in flight, for S seconds after
 * a one-second warm-up; prints one JSON line `{requests, errors, seconds, rps, p50Ms, p99Ms, ...}`.
 * Through a proxy (--proxy http://127.0.0.1:PORT: undici's ProxyAgent, one CONNECT tunnel per connection)
 * or direct (run inside the native client's namespace with `ip netns exec`).
 *
 *   node --import tsx bench/loadgen.ts --url http://10.101.2.2/bytes/1000?nohash=1 [--proxy URL] \
 *     [--connections 50] [--seconds 10] [--warmup 1]
 */
import { performance } from 'node:perf_hooks';
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
import { percentileSorted } from './stats.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const url = arg('--url');
if (!url) {
  process.stderr.write('usage: loadgen.ts --url URL [--proxy URL] [--connections N] [--seconds S] [--warmup S]\n');
  process.exit(2);
}
const proxy = arg('--proxy');
const connections = Number(arg('--connections') ?? 50);
const seconds = Number(arg('--seconds') ?? 10);
const warmup = Number(arg('--warmup') ?? 1);
const opts = { connections, pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 };
const dispatcher: Dispatcher = proxy ? new ProxyAgent({ uri: proxy, ...opts }) : new Agent(opts);

let measuring = false;
let stop = false;
const lat: number[] = [];
let errors = 0;
let bytes = 0;
let firstError: string | undefined;

async function worker(): Promise<void> {
  while (!stop) {
    const t0 = performance.now();
    try {
      const r = await request(url!, { dispatcher });
      const body = Buffer.from(await r.body.arrayBuffer());
      if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`);
      if (measuring) {
        lat.push(performance.now() - t0);
        bytes += body.length;
      }
    } catch (e) {
      if (measuring) errors++;
      firstError ??= (e as Error).message;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

const workers = Array.from({ length: connections }, () => worker());
await new Promise((r) => setTimeout(r, warmup * 1000));
measuring = true;
const t0 = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
measuring = false;
const elapsed = (performance.now() - t0) / 1000;
stop = true;
await Promise.all(workers);
await dispatcher.close().catch(() => undefined);
lat.sort((a, b) => a - b);
process.stdout.write(
  `${JSON.stringify({
    requests: lat.length,
    errors,
    firstError,
    seconds: elapsed,
    rps: lat.length / elapsed,
    p50Ms: percentileSorted(lat, 50),
    p90Ms: percentileSorted(lat, 90),
    p99Ms: percentileSorted(lat, 99),
    maxMs: lat.length ? lat[lat.length - 1] : NaN,
    bytes,
  })}\n`,
);
process.exit(0);
