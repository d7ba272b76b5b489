/**
 * `npm run bench [-- --quick | --help ...]`: vpnproxy's HTTP proxy next to the native clients, in alternating
 * rounds: the stock OpenVPN client against the lab's OpenVPN 2.6 server (AES-256-GCM, UDP), and strongSwan's own
 * client against the lab's strongSwan 5.9 responder (ESP AES-256-GCM in UDP). Prints a table and writes
 * bench/results/latest.json and latest.md. See bench/README.md for what each number means.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { labPrereqs, startLab, type Lab, type RelayProcess } from '../test/lab/index.js';
import { BENCH_HELP, parseBenchArgs, type BenchOptions, type Scenario } from './args.js';
import { checkCli, firstByteThroughProxy, kernelTcpCounters, oursTcpCounters, type NativeProc, type OursClient } from './clients.js';
import { measureDataPath } from './datapath.js';
import { ipsecProtocol, openvpnProtocol, startIpsecResponder, type Protocol } from './protocols.js';
import { cpuSeconds, installChildCleanup, machineInfo, runCmd, sleep, statusKB } from './proc.js';
import { formatProfileSummary, summarizeProfile, type CpuProfile, type ProfileSummary } from './profile-summary.js';
import { formatTable, toMarkdown, type BenchResult, type Metric, type Target } from './report.js';
import { cpuSecPerGB, mbitPerSec } from './stats.js';

type Who = 'ours' | 'native';

/** Where a client's traffic comes from: our proxy (root namespace) or the native tunnel (nat namespace). */
interface Side {
  who: Who;
  /** CPU seconds of the client process so far. */
  cpu(): number;
  /** Extra curl arguments (ours: -x PROXY). */
  curlArgs: string[];
  /** Namespace to run commands in (native: nat). */
  ns: string | undefined;
  /** --proxy for the load generator. */
  proxyUrl: string | undefined;
  /** The client's TCP segments sent and retransmitted so far (ours: our stack; native: the kernel's in its namespace). */
  tcp(): Promise<{ out: number; retrans: number }>;
}

const MB = 1e6;

function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

class Metrics {
  readonly list: Metric[] = [];
  private byId = new Map<string, Metric>();
  constructor(readonly group: string) {}
  def(id: string, label: string, unit: string, better: Metric['better'], nativeToo = true, target?: Target): void {
    const m: Metric = { id, label, unit, better, ours: [], native: nativeToo ? [] : null, group: this.group, ...(target ? { target } : {}) };
    this.list.push(m);
    this.byId.set(id, m);
  }
  add(id: string, who: Who, v: number): void {
    const m = this.byId.get(id);
    if (!m) throw new Error(`no metric ${id}`);
    const arr = who === 'ours' ? m.ours : m.native;
    if (arr && Number.isFinite(v)) arr.push(v);
  }
  /** Only metrics with at least one value. */
  used(): Metric[] {
    return this.list.filter((m) => m.ours.length || m.native?.length);
  }
}

interface CurlJson {
  http_code: number;
  size_download: number;
  size_upload: number;
  time_total: number;
  time_starttransfer: number;
  exitcode?: number;
  errormsg?: string | null;
}

function parseCurl(stdout: string): CurlJson {
  return JSON.parse(stdout.slice(stdout.lastIndexOf('{"'))) as CurlJson;
}

function makeFile(path: string, bytes: number): void {
  const fd = openSync(path, 'w');
  try {
    const chunk = randomBytes(1 << 20);
    for (let left = bytes; left > 0; left -= chunk.length) writeSync(fd, chunk, 0, Math.min(left, chunk.length));
  } finally {
    closeSync(fd);
  }
}

/** Issue 15's targets. */
const AT_LEAST = (min: number): Target => ({ on: 'ratio', min });
const AT_MOST = (max: number): Target => ({ on: 'ratio', max });
const VALUE_AT_MOST = (max: number): Target => ({ on: 'value', max });

class Bench {
  readonly m: Metrics;
  readonly notes: string[] = [];
  readonly failures: string[] = [];
  private tmp = join(tmpdir(), `vpnproxy-bench-${process.pid}`);
  private profileSummaries: { download?: ProfileSummary; upload?: ProfileSummary } = {};

  constructor(
    readonly o: BenchOptions,
    readonly lab: Lab,
    readonly proto: Protocol,
  ) {
    mkdirSync(this.tmp, { recursive: true });
    process.on('exit', () => rmSync(this.tmp, { recursive: true, force: true }));
    this.m = new Metrics(proto.title);
    const sz = (b: number): string => `${+(b / MB).toFixed(1)} MB`;
    const p = o.parallel;
    // Throughput: OpenVPN at least the native client; IPsec at least 1.5x strongSwan's libipsec client.
    const fast = AT_LEAST(proto.key === 'ipsec' ? 1.5 : 1.0);
    this.m.def('download', `download, 1 connection, ${sz(o.bulkBytes)}`, 'Mbit/s', 'higher', true, fast);
    this.m.def('upload', `upload, 1 connection, ${sz(o.bulkBytes)}`, 'Mbit/s', 'higher', true, fast);
    this.m.def('pdownload', `download, ${p} connections, ${sz(o.parallelBytes)} total`, 'Mbit/s', 'higher', true, fast);
    this.m.def('pupload', `upload, ${p} connections, ${sz(o.parallelBytes)} total`, 'Mbit/s', 'higher', true, fast);
    this.m.def('loss', `download at ${+(o.lossRate * 100).toFixed(2)}% loss, ${sz(o.lossBytes)}`, 'Mbit/s', 'higher', true, fast);
    this.m.def('cold', 'cold start: process start to first proxied byte', 'ms', 'lower', true, AT_MOST(3));
    this.m.def('libstart', 'library connect() in a running process to first fetch byte (native: its cold start)', 'ms', 'lower', true, AT_MOST(1));
    this.m.def('rps', `${o.rpsBodyBytes} B responses, ${o.rpsConnections} keep-alive conns, rate`, 'req/s', 'higher', true, AT_LEAST(1));
    this.m.def('p50', `${o.rpsBodyBytes} B responses, latency p50`, 'ms', 'lower');
    this.m.def('p99', `${o.rpsBodyBytes} B responses, latency p99`, 'ms', 'lower', true, AT_MOST(1));
    this.m.def('rpsErrors', 'load generator errors', 'count', 'zero', true, VALUE_AT_MOST(0));
    this.m.def('holdErrors', `${o.holdConnections} held trickling connections: errors`, 'count', 'zero', false, VALUE_AT_MOST(0));
    this.m.def('holdPeak', `${o.holdConnections} held trickling connections: open at once`, 'count', 'higher', false);
    this.m.def('holdRss', `${o.holdConnections} held trickling connections: our peak RSS`, 'MB', 'lower', false, VALUE_AT_MOST(150));
    this.m.def('bulkRss', 'our peak RSS after the bulk transfers', 'MB', 'lower', false);
    this.m.def('cpuDown', 'CPU per GB, download 1 conn (client process)', 's/GB', 'lower', true, AT_MOST(1));
    this.m.def('cpuUp', 'CPU per GB, upload 1 conn (client process)', 's/GB', 'lower', true, AT_MOST(1));
    this.m.def('cpuPDown', `CPU per GB, download ${p} conns (client process)`, 's/GB', 'lower', true, AT_MOST(1));
    this.m.def('cpuPUp', `CPU per GB, upload ${p} conns (client process)`, 's/GB', 'lower', true, AT_MOST(1));
    const gw = proto.key === 'ipsec' ? 'responder charon' : 'openvpn server';
    this.m.def('gwCpuDown', `the gateway's CPU per GB, download 1 conn (${gw}), with each client`, 's/GB', 'lower');
    this.m.def('gwCpuUp', `the gateway's CPU per GB, upload 1 conn (${gw}), with each client`, 's/GB', 'lower');
    this.m.def('retransUp', 'TCP segments retransmitted by the client, upload 1 conn', '%', 'lower');
    this.m.def('retransPUp', `TCP segments retransmitted by the client, upload ${p} conns`, '%', 'lower');
    this.m.def('soakErrors', `soak, ${sz(o.soakBytes)} mixed in one process: errors`, 'count', 'zero', false, VALUE_AT_MOST(0));
    this.m.def('soakRss1', 'soak: our RSS after the first GB', 'MB', 'lower', false);
    this.m.def('soakRssN', 'soak: our RSS after the last GB', 'MB', 'lower', false);
    this.m.def('soakGrowth', 'soak: RSS growth, first GB to last', '%', 'lower', false, VALUE_AT_MOST(10));
  }

  has(s: Scenario): boolean {
    return this.o.only.includes(s);
  }

  fail(what: string): undefined {
    this.failures.push(`${this.proto.key}: ${what}`);
    log(`${this.proto.key}: FAILED: ${what}`);
    return undefined;
  }

  oursSide(c: OursClient): Side {
    const nan = { out: NaN, retrans: NaN };
    return {
      who: 'ours', cpu: () => cpuSeconds(c.pid), curlArgs: ['-x', c.proxyUrl], ns: undefined, proxyUrl: c.proxyUrl,
      tcp: async () => (c.statusUrl ? oursTcpCounters(c.statusUrl).catch(() => nan) : nan),
    };
  }

  nativeSide(n: NativeProc): Side {
    return { who: 'native', cpu: () => cpuSeconds(n.pid), curlArgs: [], ns: n.ns, proxyUrl: undefined, tcp: () => kernelTcpCounters(n.ns).catch(() => ({ out: NaN, retrans: NaN })) };
  }

  profileName(tag: string): string {
    return `${tag}-${Math.random().toString(16).slice(2, 8)}`;
  }

  ours(tag: string, port?: number, nodeArgs?: string[], status = false): Promise<OursClient> {
    return this.proto.ours(this.profileName(tag), port, nodeArgs, status);
  }

  native(tag: string, port?: number): Promise<NativeProc> {
    return this.proto.native(this.profileName(tag), port);
  }

  log(msg: string): void {
    log(`${this.proto.key}: ${msg}`);
  }

  /** Timeout for moving `bytes` at no less than 4 Mbit/s, at least 60 s. */
  private curlTimeout(bytes: number): number {
    return Math.max(60_000, ((bytes * 8) / 4e6) * 1000);
  }

  /**
   * One curl process moving `totalBytes` over `conns` parallel connections (--parallel --parallel-immediate:
   * every connection opens at once), downloading from /bytes or uploading to /upload. Returns Mbit/s = total
   * bytes / the longest transfer's time_total (curl's own clocks, so process start-up is not counted) and the
   * client process's CPU seconds per GB over the batch; undefined on any failure (recorded).
   */
  async bulk(side: Side, dir: 'down' | 'up', conns: number, totalBytes: number, label: string): Promise<{ mbps: number; cpuS: number; gatewayCpuS: number; retransPct: number } | undefined> {
    const each = Math.floor(totalBytes / conns);
    const timeout = this.curlTimeout(totalBytes);
    const args = ['-sS', '--max-time', String(Math.ceil(timeout / 1000)), '-w', '%{json}\n', ...side.curlArgs];
    if (conns > 1) args.push('--parallel', '--parallel-immediate', '--parallel-max', String(conns));
    const respFiles: string[] = [];
    if (dir === 'up') args.push('-X', 'POST', '-H', 'Expect:', '-H', 'content-type: application/octet-stream');
    for (let i = 0; i < conns; i++) {
      if (dir === 'down') args.push('-o', '/dev/null', this.proto.url(`/bytes/${each}?nohash=1&seed=${i}`));
      else {
        const f = join(this.tmp, `resp-${label.replace(/\W+/g, '-')}-${i}.json`);
        rmSync(f, { force: true });
        respFiles.push(f);
        args.push('-o', f, '-T', this.uploadFile(each), this.proto.url(`/upload?i=${i}`));
      }
    }
    const tcp0 = await side.tcp();
    const gwPid = this.proto.gatewayPid();
    const gw0 = gwPid ? cpuSeconds(gwPid) : NaN;
    const cpu0 = side.cpu();
    const r = await runCmd('curl', args, timeout + 10_000, side.ns);
    const cpuS = side.cpu() - cpu0;
    const gwS = gwPid ? cpuSeconds(gwPid) - gw0 : NaN;
    const tcp1 = await side.tcp();
    const retransPct = (100 * (tcp1.retrans - tcp0.retrans)) / Math.max(1, tcp1.out - tcp0.out);
    let infos: CurlJson[];
    try {
      infos = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as CurlJson);
    } catch {
      infos = [];
    }
    if (infos.length !== conns) {
      this.fail(`${label} ${side.who}: curl exit ${r.code}, ${infos.length}/${conns} transfers reported: ${r.stderr.trim().slice(-300)}`);
      return undefined;
    }
    let total = 0;
    let longest = 0;
    for (const info of infos) {
      const moved = dir === 'down' ? info.size_download : info.size_upload;
      if (info.http_code !== 200 || moved !== each || (info.exitcode ?? 0) !== 0) {
        this.fail(`${label} ${side.who}: curl exit ${r.code}, HTTP ${info.http_code}, ${moved}/${each} bytes, ${info.errormsg ?? ''} ${r.stderr.trim().slice(-200)}`);
        return undefined;
      }
      total += moved;
      longest = Math.max(longest, info.time_total);
    }
    for (const f of respFiles) {
      let got = -1;
      try {
        got = (JSON.parse(readFileSync(f, 'utf8')) as { bytes: number }).bytes;
      } catch {
        /* reported below */
      }
      if (got !== each) {
        this.fail(`${label} ${side.who}: the web host received ${got} of ${each} bytes`);
        return undefined;
      }
    }
    const mbps = mbitPerSec(total, longest);
    this.log(`${label} ${side.who}: ${mbps.toFixed(1)} Mbit/s, client CPU ${cpuS.toFixed(2)} s (${cpuSecPerGB(cpuS, total).toFixed(2)} s/GB), ` +
      `gateway CPU ${cpuSecPerGB(gwS, total).toFixed(2)} s/GB, TCP retransmitted ${retransPct.toFixed(2)}%`);
    return { mbps, cpuS: cpuSecPerGB(cpuS, total), gatewayCpuS: cpuSecPerGB(gwS, total), retransPct };
  }

  private files = new Map<number, string>();
  uploadFile(bytes: number): string {
    let f = this.files.get(bytes);
    if (!f) {
      f = join(this.tmp, `up-${bytes}.bin`);
      makeFile(f, bytes);
      this.files.set(bytes, f);
    }
    return f;
  }

  /** Rounds alternate which client goes first. */
  order<T>(round: number, ours: T, native: T): T[] {
    return round % 2 === 0 ? [ours, native] : [native, ours];
  }

  // ---- phase 1: bulk transfers and request rate, one long-lived client of each kind ----
  async phaseMain(): Promise<void> {
    const want = (['download', 'upload', 'parallel', 'rps'] as const).filter((s) => this.has(s));
    if (!want.length) return;
    this.log('starting our client and the native client');
    const ours = await this.ours('ours-main', undefined, undefined, true);
    let native: NativeProc | undefined;
    try {
      native = await this.native('native-main');
      const sides = { ours: this.oursSide(ours), native: this.nativeSide(native) };
      if (this.has('upload')) this.uploadFile(this.o.bulkBytes);
      if (this.has('parallel')) this.uploadFile(Math.floor(this.o.parallelBytes / this.o.parallel));
      // Warm-up: one small download each (ARP, first keys, JIT).
      for (const s of [sides.ours, sides.native]) await this.bulk(s, 'down', 1, 5 * MB, 'warm-up');
      const n = this.o.parallel;
      for (let r = 0; r < this.o.rounds; r++) {
        this.log(`round ${r + 1}/${this.o.rounds}`);
        for (const s of this.order(r, sides.ours, sides.native)) {
          if (this.has('download')) {
            const x = await this.bulk(s, 'down', 1, this.o.bulkBytes, 'download');
            if (x) {
              this.m.add('download', s.who, x.mbps);
              this.m.add('cpuDown', s.who, x.cpuS);
              this.m.add('gwCpuDown', s.who, x.gatewayCpuS);
            }
          }
        }
        for (const s of this.order(r, sides.ours, sides.native)) {
          if (this.has('upload')) {
            const x = await this.bulk(s, 'up', 1, this.o.bulkBytes, 'upload');
            if (x) {
              this.m.add('upload', s.who, x.mbps);
              this.m.add('cpuUp', s.who, x.cpuS);
              this.m.add('gwCpuUp', s.who, x.gatewayCpuS);
              this.m.add('retransUp', s.who, x.retransPct);
            }
          }
        }
        for (const s of this.order(r, sides.ours, sides.native)) {
          if (this.has('parallel')) {
            const x = await this.bulk(s, 'down', n, this.o.parallelBytes, `download x${n}`);
            if (x) {
              this.m.add('pdownload', s.who, x.mbps);
              this.m.add('cpuPDown', s.who, x.cpuS);
            }
          }
        }
        for (const s of this.order(r, sides.ours, sides.native)) {
          if (this.has('parallel')) {
            const x = await this.bulk(s, 'up', n, this.o.parallelBytes, `upload x${n}`);
            if (x) {
              this.m.add('pupload', s.who, x.mbps);
              this.m.add('retransPUp', s.who, x.retransPct);
              this.m.add('cpuPUp', s.who, x.cpuS);
            }
          }
        }
        for (const s of this.order(r, sides.ours, sides.native)) {
          if (this.has('rps')) await this.rps(s);
        }
      }
      this.m.add('bulkRss', 'ours', statusKB(ours.pid, 'VmHWM') / 1024);
    } finally {
      await ours.stop();
      await native?.stop();
    }
  }

  /** Runs the load generator through `side` for `seconds`; undefined (recorded) if it gave no result. */
  async loadgen(side: Side, seconds: number): Promise<{ requests: number; errors: number; rps: number; p50Ms: number; p99Ms: number; firstError?: string } | undefined> {
    const o = this.o;
    const args = ['--import', 'tsx', join(import.meta.dirname, 'loadgen.ts'), '--url', this.proto.url(`/bytes/${o.rpsBodyBytes}?nohash=1`),
      '--connections', String(o.rpsConnections), '--seconds', String(seconds), ...(side.proxyUrl ? ['--proxy', side.proxyUrl] : [])];
    const r = await runCmd(process.execPath, args, (seconds + 60) * 1000, side.ns);
    try {
      return JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
    } catch {
      this.fail(`load generator ${side.who}: exit ${r.code}: ${r.stderr.trim().slice(-400)}`);
      return undefined;
    }
  }

  async rps(side: Side): Promise<void> {
    const j = await this.loadgen(side, this.o.rpsSeconds);
    if (!j) return;
    this.m.add('rps', side.who, j.rps);
    this.m.add('p50', side.who, j.p50Ms);
    this.m.add('p99', side.who, j.p99Ms);
    this.m.add('rpsErrors', side.who, j.errors);
    this.log(`rps ${side.who}: ${j.rps.toFixed(0)} req/s, p50 ${j.p50Ms.toFixed(2)} ms, p99 ${j.p99Ms.toFixed(2)} ms, ${j.errors} errors${j.firstError ? ` (first: ${j.firstError})` : ''}`);
  }

  // ---- phase 2: 1,000 held connections, a fresh client per round (so that its peak RSS is this test's) ----
  async phaseHold(): Promise<void> {
    if (!this.has('hold')) return;
    const o = this.o;
    for (let r = 0; r < this.o.rounds; r++) {
      const ours = await this.ours('ours-hold');
      try {
        const baseKB = statusKB(ours.pid, 'VmRSS');
        const proxy = new URL(ours.proxyUrl);
        const args = ['--import', 'tsx', join(import.meta.dirname, 'hold.ts'), '--proxy', `${proxy.hostname}:${proxy.port}`, '--target', this.proto.webHost,
          '--connections', String(o.holdConnections), '--bytes', String(o.holdBytes), '--interval', String(o.holdIntervalMs), '--ramp-ms', '1000'];
        const res = await runCmd(process.execPath, args, (o.holdBytes * o.holdIntervalMs) + 120_000);
        const hwmKB = statusKB(ours.pid, 'VmHWM');
        let j: { completed: number; errors: number; peakOpen: number; firstErrors: string[]; seconds: number };
        try {
          j = JSON.parse(res.stdout.trim().split('\n').pop() ?? '');
        } catch {
          this.fail(`hold: exit ${res.code}: ${res.stderr.trim().slice(-400)}`);
          continue;
        }
        this.m.add('holdErrors', 'ours', j.errors);
        this.m.add('holdPeak', 'ours', j.peakOpen);
        this.m.add('holdRss', 'ours', hwmKB / 1024);
        this.log(`hold: ${j.completed}/${o.holdConnections} completed, ${j.errors} errors, ${j.peakOpen} open at once, RSS ${(baseKB / 1024).toFixed(0)} MB idle -> ${(hwmKB / 1024).toFixed(0)} MB peak, ${j.seconds.toFixed(1)} s` +
          (j.firstErrors.length ? `; first errors: ${j.firstErrors.join(' | ')}` : ''));
        if (r === 0) this.notes.push(`Held connections: our client's RSS when idle after start-up was ${(baseKB / 1024).toFixed(0)} MB.`);
      } finally {
        await ours.stop();
      }
    }
  }

  // ---- phase 3: cold start, a fresh process of each kind per round; and the library's connect() ----
  async phaseCold(): Promise<void> {
    if (!this.has('cold')) return;
    const url = this.proto.url('/healthz');
    for (let r = 0; r < this.o.rounds; r++) {
      for (const who of this.order<Who | 'library'>(r, 'ours', 'native').flatMap((w) => (w === 'ours' ? ['ours', 'library'] as const : [w]))) {
        if (who === 'ours') {
          const c = await this.ours('ours-cold').catch((e: unknown) => this.fail(`cold start ours: ${(e as Error).message}`));
          if (!c) continue;
          try {
            const at = await firstByteThroughProxy(c.proxyUrl, url);
            const ms = at - c.spawnedAt;
            this.m.add('cold', 'ours', ms);
            this.log(`cold start ours: ready after ${(c.readyAt - c.spawnedAt).toFixed(0)} ms, first byte after ${ms.toFixed(0)} ms`);
          } catch (e) {
            this.fail(`cold start ours: ${(e as Error).message}`);
          } finally {
            await c.stop();
          }
        } else if (who === 'library') {
          await this.libraryStart();
        } else {
          const n = await this.native('native-cold').catch((e: unknown) => this.fail(`cold start native: ${(e as Error).message}`));
          if (!n) continue;
          try {
            const launched = performance.now();
            const res = await runCmd('curl', ['-sS', '--max-time', '30', '-o', '/dev/null', '-w', '%{json}', url], 40_000, n.ns);
            const info = parseCurl(res.stdout);
            if (res.code !== 0 || info.http_code !== 200) throw new Error(`curl exit ${res.code}, HTTP ${info.http_code}`);
            // curl's own clock starts after `ip netns exec` and curl have loaded; count only its time to first byte.
            const ms = launched - n.spawnedAt + info.time_starttransfer * 1000;
            this.m.add('cold', 'native', ms);
            this.m.add('libstart', 'native', ms);
            this.log(`cold start native: up after ${(n.upAt - n.spawnedAt).toFixed(0)} ms, first byte after ${ms.toFixed(0)} ms`);
          } catch (e) {
            this.fail(`cold start native: ${(e as Error).message}`);
          } finally {
            await n.stop();
          }
        }
      }
    }
  }

  /**
   * The library inside a running process (bench/library-start.ts, a fresh Node process that has already loaded
   * vpnproxy): connect() to the first byte of a fetch through vpn.dispatcher.
   */
  async libraryStart(): Promise<void> {
    const args = await this.proto.oursArgs(this.profileName('ours-lib'));
    const r = await runCmd(process.execPath, [join(import.meta.dirname, 'library-start.mjs'), '--url', this.proto.url('/healthz'), ...args], 60_000);
    let j: { ms: number; status: number };
    try {
      j = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
    } catch {
      this.fail(`library start: exit ${r.code}: ${r.stderr.trim().slice(-400)}`);
      return;
    }
    if (j.status !== 200) {
      this.fail(`library start: HTTP ${j.status}`);
      return;
    }
    this.m.add('libstart', 'ours', j.ms);
    this.log(`library connect() to first byte: ${j.ms.toFixed(0)} ms`);
  }

  // ---- phase 4: single download through the impairment relay (one relay per client, both on the gateway's host) ----
  async phaseLoss(): Promise<void> {
    if (!this.has('loss')) return;
    const o = this.o;
    const relayArgs = ['--target', this.proto.relayTarget, '--drop', String(o.lossRate), '--seed', '1'];
    const relays: RelayProcess[] = [];
    let ours: OursClient | undefined;
    let native: NativeProc | undefined;
    try {
      relays.push(await this.lab.startRelayIn(this.proto.relayHost, 2194, relayArgs));
      relays.push(await this.lab.startRelayIn(this.proto.relayHost, 2195, relayArgs));
      ours = await this.ours('ours-loss', 2194);
      native = await this.native('native-loss', 2195);
      const sides = { ours: this.oursSide(ours), native: this.nativeSide(native) };
      for (let r = 0; r < o.rounds; r++) {
        for (const s of this.order(r, sides.ours, sides.native)) {
          const x = await this.bulk(s, 'down', 1, o.lossBytes, 'lossy download');
          if (x) this.m.add('loss', s.who, x.mbps);
        }
      }
      const [a, b] = await Promise.all(relays.map((x) => x.stats()));
      const pct = (d: { received: number; dropped: number }): string => `${((100 * d.dropped) / Math.max(1, d.received)).toFixed(2)}%`;
      const per = (d: { up: { received: number }; down: { received: number } }): string => (d.up.received / Math.max(1, d.down.received)).toFixed(2);
      this.notes.push(`${this.proto.key} loss relays dropped: ours down ${pct(a!.down)} up ${pct(a!.up)} of ${a!.down.received}/${a!.up.received} datagrams; ` +
        `native down ${pct(b!.down)} up ${pct(b!.up)} of ${b!.down.received}/${b!.up.received}. Upstream datagrams (mostly ACKs) per downstream datagram during the downloads: ours ${per(a!)}, native ${per(b!)}.`);
    } finally {
      await ours?.stop();
      await native?.stop();
      for (const x of relays) await x.stop().catch(() => undefined);
    }
  }

  // ---- phase 5: the soak, one process moving soakBytes of bulk both ways with 1 KB requests alongside ----
  async phaseSoak(): Promise<void> {
    if (!this.has('soak')) return;
    const o = this.o;
    const GB = 1e9;
    const ours = await this.ours('ours-soak');
    try {
      const side = this.oursSide(ours);
      const half = Math.min(GB / 2, o.soakBytes / 2);
      let moved = 0;
      let errors = 0;
      let nextGb = GB;
      const rss: number[] = [];
      while (moved < o.soakBytes) {
        // A download and an upload at once, with the load generator's 1 KB requests running alongside.
        const before = this.failures.length;
        const [d, u, g] = await Promise.all([
          this.bulk(side, 'down', 1, half, 'soak download'),
          this.bulk(side, 'up', 1, half, 'soak upload'),
          this.loadgen(side, 4),
        ]);
        errors += (d ? 0 : 1) + (u ? 0 : 1) + (g ? g.errors : 1);
        if (this.failures.length > before && errors > 20) break;
        moved += 2 * half + (g ? g.requests * o.rpsBodyBytes : 0);
        while (moved >= nextGb && nextGb <= o.soakBytes) {
          rss.push(statusKB(ours.pid, 'VmRSS') / 1024);
          nextGb += GB;
        }
      }
      if (rss.length === 0) rss.push(statusKB(ours.pid, 'VmRSS') / 1024);
      const first = rss[0]!;
      const last = rss[rss.length - 1]!;
      this.m.add('soakErrors', 'ours', errors);
      this.m.add('soakRss1', 'ours', first);
      this.m.add('soakRssN', 'ours', last);
      this.m.add('soakGrowth', 'ours', (100 * (last - first)) / first);
      this.notes.push(`Soak (${this.proto.key}): ${(moved / GB).toFixed(1)} GB in one client process; RSS after each GB (MB): ${rss.map((x) => x.toFixed(0)).join(', ')}.`);
      this.log(`soak: ${(moved / GB).toFixed(1)} GB, ${errors} errors, RSS ${first.toFixed(0)} -> ${last.toFixed(0)} MB`);
    } finally {
      await ours.stop();
    }
  }

  // ---- optional: CPU profiles of our client during single downloads and single uploads (a process each) ----
  async phaseProfile(): Promise<void> {
    const dir = this.o.profileDir;
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    for (const dirn of ['down', 'up'] as const) {
      const before = new Set(readdirSync(dir));
      const ours = await this.ours(`ours-prof-${dirn}`, undefined, ['--cpu-prof', '--cpu-prof-dir', dir]);
      try {
        const side = this.oursSide(ours);
        await this.bulk(side, dirn, 1, 5 * MB, 'profile warm-up');
        for (let r = 0; r < Math.max(1, Math.min(2, this.o.rounds)); r++) await this.bulk(side, dirn, 1, this.o.bulkBytes, `profiled ${dirn}load`);
      } finally {
        await ours.stop(15_000);
      }
      const fresh = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && !before.has(f));
      const newest = fresh.map((f) => join(dir, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
      if (!newest) {
        this.fail(`profile: no .cpuprofile appeared in ${dir} (did our client exit cleanly on SIGTERM?)`);
        return;
      }
      const summary = summarizeProfile(JSON.parse(readFileSync(newest, 'utf8')) as CpuProfile, 20);
      this.profileSummaries[dirn === 'down' ? 'download' : 'upload'] = summary;
      log(`${dirn}load profile written to ${newest}\n${formatProfileSummary(summary)}`);
    }
  }

  result(startedAt: Date, t0: number, machine: BenchResult['machine']): BenchResult & { profile?: { download?: ProfileSummary; upload?: ProfileSummary }; failures: string[] } {
    const o = this.o;
    return {
      schema: 1,
      startedAt: startedAt.toISOString(),
      durationS: (performance.now() - t0) / 1000,
      quick: o.quick,
      oursMode: 'node dist/cli/main.js openvpn PROFILE --http-proxy 127.0.0.1:0 --socks-proxy off --log-level warn',
      machine,
      settings: {
        rounds: o.rounds, bulkBytes: o.bulkBytes, parallel: o.parallel, parallelBytes: o.parallelBytes, lossBytes: o.lossBytes,
        lossRate: o.lossRate, rpsConnections: o.rpsConnections, rpsSeconds: o.rpsSeconds, rpsBodyBytes: o.rpsBodyBytes,
        holdConnections: o.holdConnections, holdBytes: o.holdBytes, holdIntervalMs: o.holdIntervalMs, only: o.only,
      },
      metrics: this.m.used(),
      notes: this.notes,
      failures: this.failures,
      ...(this.profileSummaries.download || this.profileSummaries.upload ? { profile: this.profileSummaries } : {}),
    };
  }
}

const METHOD_NOTES = [
  'Gateways: the lab\'s OpenVPN 2.6 (Debian) in its own namespace, UDP, AES-256-GCM, `duplicate-cn` so both clients can be connected at once; and the lab\'s strongSwan 5.9 responder (kernel-libipsec), PSK, IKE aes256gcm16-prfsha256-x25519, ESP aes256gcm16 in UDP, each client with an identity and connection of its own. Web host: Node HTTP server behind both (bodies from an AES-CTR keystream).',
  'Ours: our client as a child process in the root namespace, curl -x http://127.0.0.1:PORT (absolute-form requests through the HTTP proxy, so the proxy parses HTTP both ways). Native: the stock `openvpn` client (kernel tun, kernel TCP), or strongSwan\'s charon as initiator (kernel-libipsec: userspace ESP on a tun device, kernel TCP), in the nat namespace, curl there straight at the web host.',
  'Mbit/s = bytes / curl\'s time_total (for N connections: one curl with --parallel --parallel-immediate, total bytes / the longest transfer). Each round moves the stated total; uploads POST a random file with `-T` and the byte count the web host received is checked.',
  'Loss: two identical relay processes (test/lab/impair.ts, 1% drop each direction, seed 1) on the gateway\'s host in front of the same gateway (for IPsec in front of UDP 4500); ours reaches its relay from the root namespace, native from nat. Same relay code, same hop count, same seed.',
  'Cold start: ours = spawn of the client process to the first response byte of a GET through its proxy (sent the moment the ready line appears). Native = spawn of openvpn to "Initialization Sequence Completed" (log polled every 5 ms), or of charon to `swanctl --initiate` returning, plus curl\'s time to first byte in the namespace. Library: bench/library-start.mjs, connect() to the response head of a fetch through vpn.dispatcher, in a process that has loaded vpnproxy already; compared with the native cold start.',
  'Request rate: bench/loadgen.ts (undici; ours through ProxyAgent = one CONNECT tunnel per connection, so the proxy only relays; native run in the nat namespace with ip netns exec), 1 s warm-up excluded.',
  'CPU per GB: utime+stime of the client process only (/proc/PID/stat) over each transfer. The native clients\' kernel work (tun, TCP, the encrypted UDP socket) is partly charged elsewhere (softirq, curl), so their figure is a lower bound; ours includes our whole TCP/IP stack. The gateway\'s CPU per GB is its process (openvpn server, responder charon) over the same transfers.',
  'TCP retransmissions (uploads): ours from our stack\'s /metrics, native from nstat in the nat namespace, as a share of segments sent.',
  'Held connections: a fresh client per round; bench/hold.ts opens them over 1 s (absolute-form GET /trickle, 1 byte per 500 ms); RSS peak = VmHWM of our client process.',
  'Soak: one client process; rounds of a 500 MB download and a 500 MB upload at once with 4 s of 1 KB requests (50 connections) alongside until the stated total has moved; RSS = VmRSS after each GB.',
  'Data path: bench/datapath.ts in the bench process before the lab starts, 1400-byte packets, alternating ESP and OpenVPN rounds; no I/O, one core.',
];

/** The data path's cost per packet, ESP next to OpenVPN (bench/datapath.ts), measured before the lab starts. */
function dataPathMetrics(o: BenchOptions): Metrics {
  const m = new Metrics('Data path: cost per 1400 B packet on one core, no I/O (AES-256-GCM)');
  m.def('espSeal', 'ESP: seal (OutboundSa)', 'µs', 'lower', false);
  m.def('espOpen', 'ESP: open with anti-replay (InboundSa)', 'µs', 'lower', false);
  m.def('ovpnSeal', 'OpenVPN: encrypt (DataChannelKey, P_DATA_V2)', 'µs', 'lower', false);
  m.def('ovpnOpen', 'OpenVPN: decrypt with replay check', 'µs', 'lower', false);
  log(`data path: ${o.datapathPackets} packets per round, ${Math.max(3, o.rounds)} rounds`);
  for (const r of measureDataPath(o.datapathPackets, Math.max(3, o.rounds))) {
    m.add('espSeal', 'ours', r.espSealUs);
    m.add('espOpen', 'ours', r.espOpenUs);
    m.add('ovpnSeal', 'ours', r.ovpnSealUs);
    m.add('ovpnOpen', 'ours', r.ovpnOpenUs);
  }
  return m;
}

async function main(): Promise<number> {
  let o: BenchOptions;
  try {
    o = parseBenchArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(BENCH_HELP);
    return 0;
  }
  const pre = labPrereqs(['openvpn', 'curl', ...(o.protocols.includes('ipsec') ? ['strongswan' as const] : [])]);
  if (!pre.ok) {
    process.stderr.write(`bench: cannot run: ${pre.reason}\n`);
    return 2;
  }
  installChildCleanup();
  // Node reads and parses every certificate of NODE_EXTRA_CA_CERTS at start-up (about 100 ms per process with the
  // system bundle here): a cost of that environment, not of vpnproxy, and one the native clients do not pay.
  const extraCa = process.env.NODE_EXTRA_CA_CERTS;
  delete process.env.NODE_EXTRA_CA_CERTS;
  const startedAt = new Date();
  const t0 = performance.now();
  try {
    await checkCli();
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    return 2;
  }
  log(`${o.quick ? 'quick' : 'full'} run, ${o.rounds} round(s), ${o.protocols.join(' and ')}`);
  const machine = await machineInfo();
  const load = loadavg();
  const dataPath = o.only.includes('datapath') ? dataPathMetrics(o) : undefined;
  log('starting the lab');
  const wantIpsec = o.protocols.includes('ipsec');
  const lab = await startLab({ openvpn: { proto: 'udp', dataCiphers: 'AES-256-GCM', extra: ['duplicate-cn'] }, iperf: false });
  const benches: Bench[] = [];
  if (extraCa) log(`NODE_EXTRA_CA_CERTS (${extraCa}) is unset for the processes measured: Node would spend about 100 ms of every start reading it`);
  const notes = [`Load average when the run started: ${load.map((x) => x.toFixed(2)).join(' ')} (other work on this ${machine.cores}-core machine skews both clients alike, not necessarily equally).`];
  try {
    if (wantIpsec) await startIpsecResponder(lab);
    for (const key of o.protocols) {
      const b = new Bench(o, lab, key === 'openvpn' ? openvpnProtocol(lab) : ipsecProtocol(lab));
      benches.push(b);
      try {
        await b.phaseMain();
        await b.phaseHold();
        await b.phaseCold();
        await b.phaseLoss();
        // One soak (the issue's 10 GB) is enough: it watches our process, whichever protocol carries it.
        if (key === o.protocols[0]) await b.phaseSoak();
        if (key === 'openvpn') await b.phaseProfile();
      } catch (e) {
        b.fail(`aborted: ${(e as Error).stack ?? e}`);
      }
    }
  } finally {
    await lab.stop().catch((e: unknown) => log(`lab teardown: ${(e as Error).message}`));
  }
  notes.push(`Load average when the run ended: ${loadavg().map((x) => x.toFixed(2)).join(' ')}.`);
  const failures = benches.flatMap((b) => b.failures);
  const res = benches[0]!.result(startedAt, t0, machine);
  res.oursMode = benches.map((b) => b.proto.oursMode).join('; ');
  res.metrics = [...benches.flatMap((b) => b.m.used()), ...(dataPath ? dataPath.used() : [])];
  res.notes = [...METHOD_NOTES, ...benches.flatMap((b) => b.notes), ...notes, ...failures.map((f) => `FAILURE: ${f.split('\n')[0]}`)];
  res.failures = failures;
  process.stdout.write(`\n${formatTable(res.metrics)}\n\n`);
  for (const [k, v] of Object.entries(res.profile ?? {})) process.stdout.write(`single ${k}:\n${formatProfileSummary(v)}\n\n`);
  if (o.outDir) {
    mkdirSync(o.outDir, { recursive: true });
    writeFileSync(join(o.outDir, 'latest.json'), `${JSON.stringify(res, null, 2)}\n`);
    let md = toMarkdown(res);
    for (const [k, v] of Object.entries(res.profile ?? {})) md += `\n## Where our client's time goes (single ${k}, node --cpu-prof)\n\n\`\`\`\n${formatProfileSummary(v)}\n\`\`\`\n`;
    writeFileSync(join(o.outDir, 'latest.md'), md);
    log(`wrote ${join(o.outDir, 'latest.json')} and latest.md`);
  }
  log(`done in ${res.durationS.toFixed(0)} s${failures.length ? `, ${failures.length} failure(s)` : ''}`);
  await sleep(0);
  return failures.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
