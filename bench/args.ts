/** Command line of `npm run bench -- [options]`. Pure. */

export const SCENARIOS = ['download', 'upload', 'parallel', 'loss', 'cold', 'rps', 'hold', 'soak', 'datapath'] as const;
export const BENCH_PROTOCOLS = ['openvpn', 'ipsec'] as const;
export type BenchProtocol = (typeof BENCH_PROTOCOLS)[number];
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchOptions {
  quick: boolean;
  /** Rounds per client and scenario (alternating ours/native). */
  rounds: number;
  /** Bytes of a single bulk transfer (download, upload, loss). */
  bulkBytes: number;
  /** Parallel connections and total bytes across them. */
  parallel: number;
  parallelBytes: number;
  /** Bytes of the download through the lossy relay, and the loss rate (both directions). */
  lossBytes: number;
  lossRate: number;
  /** Load generator: keep-alive connections, seconds, response size. */
  rpsConnections: number;
  rpsSeconds: number;
  rpsBodyBytes: number;
  /** Connections held open at once, trickle bytes per connection and the interval between bytes (ms). */
  holdConnections: number;
  holdBytes: number;
  holdIntervalMs: number;
  /** Bytes the soak moves through one client process (OpenVPN). */
  soakBytes: number;
  /** Packets per round of the data-path microbenchmark. */
  datapathPackets: number;
  /** Scenarios to run. */
  only: Scenario[];
  /** Protocols to measure. */
  protocols: BenchProtocol[];
  /** Where latest.json / latest.md go; undefined = do not write. */
  outDir: string | undefined;
  /** Take a `node --cpu-prof` profile of our client during single-connection downloads and uploads, into this directory. */
  profileDir: string | undefined;
  help: boolean;
}

export const BENCH_HELP = `npm run bench -- [options]

Builds the lab and measures vpnproxy's HTTP proxy (curl -x, root namespace) in alternating rounds against the
native clients (curl in the nat namespace): the stock openvpn client (kernel tun and TCP) on an OpenVPN 2.6
server (AES-256-GCM over UDP), and strongSwan's charon (kernel-libipsec, kernel TCP) on a strongSwan 5.9
responder (ESP AES-256-GCM in UDP).

  --quick                 reduced variant (1 round, small transfers, a 1 GB soak; a few minutes)
  --rounds N              rounds per client and scenario (default 3)
  --size MB               single bulk transfer size (default 200)
  --parallel N            parallel connections (default 8)
  --parallel-size MB      total bytes across the parallel connections (default = --size)
  --loss-size MB          download size through the lossy relay (default = --size)
  --loss RATE             loss probability per datagram, each direction (default 0.01)
  --rps-connections N     keep-alive connections of the load generator (default 50)
  --rps-seconds S         load generator run time (default 10)
  --hold N                connections held open at once (default 1000)
  --soak-size GB          bytes the soak moves through one OpenVPN client process (default 10; quick 1)
  --only a,b,...          scenarios: ${SCENARIOS.join(', ')} (default all)
  --protocols a,b         ${BENCH_PROTOCOLS.join(', ')} (default both)
  --out DIR               results directory (default bench/results)
  --no-write              do not write results
  --profile DIR           also take node --cpu-prof profiles of our client during single downloads and uploads
  -h, --help              this text
`;

const MB = 1_000_000;

function num(name: string, v: string | undefined, min: number, max: number): number {
  if (v === undefined) throw new Error(`${name} needs a value`);
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name} ${v}: expected a number in ${min}..${max}`);
  return n;
}

export function defaultOptions(quick: boolean): BenchOptions {
  return {
    quick,
    rounds: quick ? 1 : 3,
    bulkBytes: (quick ? 20 : 200) * MB,
    parallel: 8,
    parallelBytes: (quick ? 20 : 200) * MB,
    lossBytes: (quick ? 10 : 200) * MB,
    lossRate: 0.01,
    rpsConnections: 50,
    rpsSeconds: quick ? 3 : 10,
    rpsBodyBytes: 1000,
    holdConnections: quick ? 200 : 1000,
    holdBytes: quick ? 6 : 20,
    holdIntervalMs: 500,
    soakBytes: (quick ? 1 : 10) * 1000 * MB,
    datapathPackets: quick ? 20_000 : 100_000,
    only: [...SCENARIOS],
    protocols: [...BENCH_PROTOCOLS],
    outDir: 'bench/results',
    profileDir: undefined,
    help: false,
  };
}

/** Parses the bench's arguments; throws Error with a one-line message on a bad one. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const o = defaultOptions(argv.includes('--quick'));
  let parallelSize: number | undefined;
  let lossSize: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--quick':
        break;
      case '-h':
      case '--help':
        o.help = true;
        break;
      case '--rounds':
        o.rounds = num(flag, value(), 1, 100);
        break;
      case '--size':
        o.bulkBytes = Math.round(num(flag, value(), 0.001, 100_000) * MB);
        break;
      case '--parallel':
        o.parallel = num(flag, value(), 1, 256);
        break;
      case '--parallel-size':
        parallelSize = Math.round(num(flag, value(), 0.001, 100_000) * MB);
        break;
      case '--loss-size':
        lossSize = Math.round(num(flag, value(), 0.001, 100_000) * MB);
        break;
      case '--loss':
        o.lossRate = num(flag, value(), 0, 0.5);
        break;
      case '--rps-connections':
        o.rpsConnections = num(flag, value(), 1, 10_000);
        break;
      case '--rps-seconds':
        o.rpsSeconds = num(flag, value(), 0.5, 3600);
        break;
      case '--hold':
        o.holdConnections = num(flag, value(), 1, 100_000);
        break;
      case '--soak-size':
        o.soakBytes = Math.round(num(flag, value(), 0.001, 1000) * 1000 * MB);
        break;
      case '--protocols': {
        const v = value();
        if (!v) throw new Error('--protocols needs a list');
        const names = v.split(',').map((x) => x.trim()).filter(Boolean);
        if (names.length === 0) throw new Error(`--protocols: none given (known: ${BENCH_PROTOCOLS.join(', ')})`);
        for (const n of names) {
          if (!(BENCH_PROTOCOLS as readonly string[]).includes(n)) throw new Error(`--protocols: unknown protocol ${n} (known: ${BENCH_PROTOCOLS.join(', ')})`);
        }
        o.protocols = names as BenchProtocol[];
        break;
      }
      case '--only': {
        const v = value();
        if (!v) throw new Error('--only needs a list');
        const names = v.split(',').map((s) => s.trim()).filter(Boolean);
        for (const n of names) {
          if (!(SCENARIOS as readonly string[]).includes(n)) throw new Error(`--only: unknown scenario ${n} (known: ${SCENARIOS.join(', ')})`);
        }
        o.only = names as Scenario[];
        break;
      }
      case '--out': {
        const v = value();
        if (!v) throw new Error('--out needs a directory');
        o.outDir = v;
        break;
      }
      case '--no-write':
        o.outDir = undefined;
        break;
      case '--profile': {
        const v = value();
        if (!v) throw new Error('--profile needs a directory');
        o.profileDir = v;
        break;
      }
      default:
        throw new Error(`unknown option ${a} (see --help)`);
    }
    if (inline !== undefined && ['--quick', '--help', '--no-write'].includes(flag)) throw new Error(`${flag} takes no value`);
  }
  if (parallelSize !== undefined) o.parallelBytes = parallelSize;
  else if (argv.some((x) => x === '--size' || x.startsWith('--size='))) o.parallelBytes = o.bulkBytes;
  if (lossSize !== undefined) o.lossBytes = lossSize;
  else if (argv.some((x) => x === '--size' || x.startsWith('--size='))) o.lossBytes = o.bulkBytes;
  return o;
}
