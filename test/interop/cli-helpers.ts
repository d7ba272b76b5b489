/**
 * Shared pieces of the CLI interop tests: spawn the real CLI (`node --import tsx src/cli/main.ts ...` from the
 * repository root), wait for its ready line and parse the listeners' bound ports from it, run curl, hash.
 */
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detBytes, detSha256 } from '../lab/index.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));

export interface HostPort {
  host: string;
  port: number;
}

export interface Ready {
  http?: HostPort;
  socks?: HostPort;
  status?: HostPort;
  forwards: { local: HostPort; dest: string }[];
  remoteForwards: { remote: HostPort; dest: string }[];
  line: string;
}

const hostPort = (s: string): HostPort => {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
};

/** Parses "vpnproxy: ready: http-proxy 127.0.0.1:41234, socks5 ..., forward A->B, remote-forward A->B, status ...". */
export function parseReady(line: string): Ready {
  const r: Ready = { forwards: [], remoteForwards: [], line };
  const body = line.replace(/^.*vpnproxy: ready: /, '');
  for (const part of body.split(', ')) {
    const [kind, addr = ''] = part.split(' ');
    const [from = '', dest = ''] = addr.split('->');
    if (kind === 'http-proxy') r.http = hostPort(from);
    else if (kind === 'socks5') r.socks = hostPort(from);
    else if (kind === 'status') r.status = hostPort(from);
    else if (kind === 'forward') r.forwards.push({ local: hostPort(from), dest });
    else if (kind === 'remote-forward') r.remoteForwards.push({ remote: hostPort(from), dest });
  }
  return r;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running CLI process. */
export class CliProcess {
  readonly child: ChildProcess;
  private err = '';
  private out = '';
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | undefined;

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.err += d));
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.out += d));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
  }

  get stderr(): string {
    return this.err;
  }
  get stdout(): string {
    return this.out;
  }
  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** Resolves with the parsed ready line; rejects if the process exits first or after timeoutMs. */
  async ready(timeoutMs = 30_000): Promise<Ready> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const line = this.err.split('\n').find((l) => l.startsWith('vpnproxy: ready: '));
      if (line) return parseReady(line);
      if (!this.running) throw new Error(`the CLI exited (${JSON.stringify(this.exitInfo)}) before it was ready:\n${this.err.slice(-3000)}`);
      if (Date.now() > end) throw new Error(`the CLI was not ready within ${timeoutMs} ms:\n${this.err.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Waits until stderr matches `re` (bounded). */
  async waitForLog(re: RegExp, timeoutMs = 10_000, since = 0): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.err.slice(since));
      if (m) return m[0];
      if (Date.now() > end) throw new Error(`no ${re} in the CLI's stderr within ${timeoutMs} ms:\n${this.err.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Waits for the exit (bounded); kills with SIGKILL when it does not come. */
  async waitExit(timeoutMs = 10_000): Promise<ExitInfo & { ms: number }> {
    const t0 = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      this.exited,
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (!r) {
      this.child.kill('SIGKILL');
      throw new Error(`the CLI did not exit within ${timeoutMs} ms:\n${this.err.slice(-3000)}`);
    }
    return { ...r, ms: Date.now() - t0 };
  }

  /** SIGTERM, then waits (SIGKILL after 5 s). */
  async stop(): Promise<ExitInfo & { ms: number }> {
    if (!this.running) return { ...this.exitInfo!, ms: 0 };
    const t0 = Date.now();
    this.child.kill('SIGTERM');
    const r = await this.waitExit(5000);
    return { ...r, ms: Date.now() - t0 };
  }
}

/** `vpnproxy openvpn PROFILE` with every listener on an ephemeral port (unless overridden in `args`). */
export function startCli(profile: string, args: string[] = [], env?: NodeJS.ProcessEnv): CliProcess {
  const has = (f: string) => args.includes(f);
  const defaults = [
    ...(has('--http-proxy') ? [] : ['--http-proxy', '127.0.0.1:0']),
    ...(has('--socks-proxy') ? [] : ['--socks-proxy', '127.0.0.1:0']),
    ...(has('--status') ? [] : ['--status', '127.0.0.1:0']),
  ];
  return new CliProcess(['openvpn', profile, ...defaults, ...args], env);
}

export interface CurlResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs curl (never throws on a curl failure; bounded by --max-time and a kill timer). */
export function curl(args: string[], timeoutMs = 120_000): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', String(Math.ceil(timeoutMs / 1000)), ...args], { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024, timeout: timeoutMs + 5000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout, stderr: stderr.toString() });
    });
  });
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** How a test asserts that a curl run succeeded (with its own context in the message). */
export type CurlCheck = (what: string, r: CurlResult) => void;

/** GET `url` (the web host's /bytes/N) with curl and `via` (e.g. ['-x', proxy]): the body is its N bytes exactly. */
export async function curlGetExact(via: string[], url: string, n: number, check: CurlCheck, what = 'GET'): Promise<void> {
  const get = await curl([...via, url]);
  check(what, get);
  assert.equal(get.stdout.length, n);
  assert.equal(sha256(get.stdout), detSha256(n));
}

/**
 * POST N deterministic bytes (detBytes(n, seed), through a file in `dir`) to the web host's /upload with curl and
 * `via`: the web host received them exactly.
 */
export async function curlPostExact(via: string[], url: string, n: number, seed: string, dir: string, check: CurlCheck, what = 'POST'): Promise<void> {
  const body = detBytes(n, seed);
  const file = join(dir, `${seed}.bin`);
  await writeFile(file, body);
  const post = await curl([...via, '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${file}`, url]);
  check(what, post);
  const json = JSON.parse(post.stdout.toString()) as { bytes: number; sha256: string };
  assert.equal(json.bytes, n);
  assert.equal(json.sha256, sha256(body));
}

/** Lines of a curl -i / -D - header block, lower-cased names. */
export function headerValue(head: string, name: string): string | undefined {
  const re = new RegExp(`^${name}:\\s*(.*)$`, 'im');
  return re.exec(head)?.[1]?.trim();
}
