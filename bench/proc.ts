/**
 * Process plumbing for the benchmark: commands with timeouts whose children are all killed when the bench
 * exits (also on Ctrl-C), and /proc readers for CPU time and memory.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import type { MachineInfo } from './report.js';

const children = new Set<ChildProcess>();
let installed = false;

function killAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  children.clear();
}

/** Kills every tracked child when this process exits, whatever the reason. */
export function installChildCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAll);
}

/** spawn() whose child is killed (SIGKILL) if the bench exits while it runs. */
export function track(cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  installChildCleanup();
  const c = spawn(cmd, args, opts);
  children.add(c);
  c.once('exit', () => children.delete(c));
  c.once('error', () => children.delete(c));
  return c;
}

export interface CmdResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, ms. */
  ms: number;
}

/** Runs a command to completion (SIGKILL after timeoutMs); never throws for a non-zero exit. */
export function runCmd(cmd: string, args: readonly string[], timeoutMs: number, ns?: string): Promise<CmdResult> {
  const [c, a] = ns ? ['ip', ['netns', 'exec', ns, cmd, ...args]] : [cmd, args];
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = track(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 64 * 1024) stderr += d;
    });
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: `${stderr}${e.message}`, ms: performance.now() - t0 });
    });
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code: code ?? (sig ? 128 : -1), stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

const TICK = 100; // USER_HZ: clock ticks per second in /proc (100 on every Linux this runs on)

/** User + system CPU seconds of a process so far (NaN if it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields 14 and 15 (utime, stime), counted from 1 with pid and comm as 1 and 2
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return NaN;
  }
}

/** A field of /proc/PID/status in kB, e.g. 'VmHWM' (peak RSS) or 'VmRSS'; NaN if unavailable. */
export function statusKB(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** The executable name of a process (/proc/PID/comm), '' if gone. */
export function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

export async function machineInfo(): Promise<MachineInfo> {
  const ov = await runCmd('openvpn', ['--version'], 5000);
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGB: totalmem() / 2 ** 30,
    kernel: release(),
    node: process.versions.node,
    openvpn: /OpenVPN \S+/.exec(ov.stdout)?.[0] ?? 'openvpn ?',
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
