/**
 * Process helpers for the lab: bounded command runs, long-running daemons in their own process group with
 * output to a file, bounded waits, and synchronous variants for exit handlers.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, existsSync } from 'node:fs';

/** Error raised by the lab (a failed command, a timeout, a missing prerequisite). */
export class LabError extends Error {
  override name = 'LabError';
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Kill the command after this long (default 30 s). */
  timeoutMs?: number;
  /** Do not throw on a non-zero exit status; return it. */
  allowFail?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Text written to stdin. */
  input?: string;
  /** Largest stdout accepted (default 64 MiB). */
  maxBuffer?: number;
}

function describe(cmd: string, args: readonly string[]): string {
  const s = [cmd, ...args].join(' ');
  return s.length > 300 ? `${s.slice(0, 300)}...` : s;
}

/** Runs a command to completion with a timeout. Throws LabError on failure unless `allowFail`. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      {
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        maxBuffer: opts.maxBuffer ?? 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { killed?: boolean; code?: number | string }) | null;
        if (e && typeof e.code !== 'number') {
          const why = e.killed ? `timed out after ${timeoutMs} ms` : e.message;
          reject(new LabError(`${describe(cmd, args)}: ${why}${stderr ? `: ${stderr.trim().slice(-500)}` : ''}`));
          return;
        }
        const code = e ? Number(e.code) : 0;
        if (code !== 0 && !opts.allowFail) {
          reject(new LabError(`${describe(cmd, args)} exited ${code}: ${(stderr || stdout).trim().slice(-800)}`));
          return;
        }
        resolve({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Synchronous run for exit handlers and the sweeper. Never throws; returns the status (-1 on spawn error). */
export function runSync(cmd: string, args: readonly string[], timeoutMs = 10_000): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? String(r.error) : '') };
}

/** Blocks the thread for `ms` (used only in synchronous teardown). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` every `intervalMs` until it returns a value other than undefined/false, or throws LabError after
 * `timeoutMs` naming `what`. `check` may throw to abort early.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() >= deadline) throw new LabError(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(Math.min(intervalMs, Math.max(1, deadline - Date.now())));
  }
}

/** True if a process with this pid exists (and is not a zombie). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or undefined. */
export function pidStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function signal(pid: number, sig: NodeJS.Signals, group: boolean): void {
  try {
    process.kill(group ? -pid : pid, sig);
  } catch {
    /* gone already */
  }
}

/**
 * Stops pids synchronously: SIGTERM (to the process group when `group`), waits up to `graceMs`, then SIGKILL.
 * Returns the pids that needed SIGKILL.
 */
export function killSync(pids: readonly number[], graceMs = 2000, group = false): number[] {
  const live = pids.filter(pidAlive);
  for (const p of live) signal(p, 'SIGTERM', group);
  const deadline = Date.now() + graceMs;
  while (live.some(pidAlive) && Date.now() < deadline) sleepSync(20);
  const stubborn = live.filter(pidAlive);
  for (const p of stubborn) signal(p, 'SIGKILL', group);
  const end = Date.now() + 2000;
  while (stubborn.some(pidAlive) && Date.now() < end) sleepSync(10);
  return stubborn;
}

export interface DaemonSpec {
  /** Network namespace to run in (through `ip netns exec`), or undefined for the root namespace. */
  ns?: string;
  cmd: string;
  args: readonly string[];
  /** stdout and stderr go here (appended). */
  outFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * A long-running process started in its own process group, its output in a file. It does not keep the
 * Node event loop alive (unref), so a test that forgets to stop it still exits and the exit handler cleans up.
 */
export class Daemon {
  readonly pid: number;
  private exitCode: number | null | undefined = undefined;
  private exitSignal: NodeJS.Signals | null = null;
  private readonly exitedP: Promise<void>;
  private readonly child: ChildProcess;

  constructor(readonly spec: DaemonSpec) {
    const fd = openSync(spec.outFile, 'a');
    const [cmd, args] = spec.ns ? ['ip', ['netns', 'exec', spec.ns, spec.cmd, ...spec.args]] : [spec.cmd, spec.args];
    try {
      this.child = spawn(cmd, args, {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: spec.env ?? process.env,
        cwd: spec.cwd,
      });
    } finally {
      closeSync(fd);
    }
    if (this.child.pid === undefined) throw new LabError(`could not start ${describe(spec.cmd, spec.args)}`);
    this.pid = this.child.pid;
    this.exitedP = new Promise((resolve) => {
      this.child.once('exit', (code, sig) => {
        this.exitCode = code;
        this.exitSignal = sig;
        resolve();
      });
      this.child.once('error', () => {
        this.exitCode = -1;
        resolve();
      });
    });
    this.child.unref();
  }

  /** True while the process runs. */
  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** How it ended, e.g. "exit 1" or "signal SIGTERM", or "running". */
  get status(): string {
    if (this.exitCode === undefined) return 'running';
    return this.exitSignal ? `signal ${this.exitSignal}` : `exit ${this.exitCode}`;
  }

  /** Resolves when the process has exited, or rejects after `timeoutMs`. */
  async exited(timeoutMs: number): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    await Promise.race([
      this.exitedP,
      new Promise<never>((_, rej) => {
        t = setTimeout(() => rej(new LabError(`${this.spec.cmd} (pid ${this.pid}) did not exit in ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(t));
  }

  /** Sends a signal to the process group. */
  signal(sig: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) signal(this.pid, sig, true);
  }

  /** SIGTERM to the process group, up to `graceMs` to exit, then SIGKILL. Idempotent. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    this.signal('SIGTERM');
    try {
      await this.exited(graceMs);
    } catch {
      this.signal('SIGKILL');
      await this.exited(3000).catch(() => undefined);
    }
  }

  /** The output file's content ('' if missing). */
  output(): string {
    return existsSync(this.spec.outFile) ? readFileSync(this.spec.outFile, 'utf8') : '';
  }
}

/** Last `lines` lines of a text. */
export function tail(text: string, lines = 40): string {
  const all = text.split('\n');
  return all.slice(Math.max(0, all.length - lines - 1)).join('\n');
}
