/**
 * The native baseline: Debian's stock `openvpn` client (kernel tun, kernel TCP) in the lab's nat namespace,
 * connected to one of the lab's servers. Tests run commands (curl, iperf3) in that namespace.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, LabError, run, tail, waitFor, type RunOptions, type RunResult } from './exec.js';
import type { ClientProfileOptions, OpenVpnServer } from './openvpn.js';

export interface NativeClientOptions {
  /** Profile overrides (remote defaults to the server's nat-side address). */
  profile?: ClientProfileOptions;
  /** Connect timeout (default 20 s). */
  timeoutMs?: number;
}

/** A running stock OpenVPN client. Create with `lab.startNative()` (or `startLab({ native: true })`). */
export class NativeClient {
  readonly logFile: string;
  private daemon?: Daemon;
  /** Path of the profile it runs. */
  profilePath = '';
  /** Its tunnel address (from "ifconfig" in the push reply), once connected. */
  tunIp = '';

  constructor(
    readonly ns: string,
    readonly server: OpenVpnServer,
    private readonly dir: string,
  ) {
    this.logFile = join(dir, `native-${server.ctx.index}.log`);
  }

  /** Writes the profile, starts openvpn and waits for "Initialization Sequence Completed". */
  async start(opts: NativeClientOptions = {}): Promise<this> {
    const s = this.server;
    this.profilePath = await s.clientProfile({
      name: `native-${s.ctx.index}.ovpn`,
      remote: { host: s.ctx.addr.srvNatSide, port: s.port },
      ...opts.profile,
    });
    const mark = this.log().length;
    this.daemon = new Daemon({ ns: this.ns, cmd: 'openvpn', args: ['--cd', this.dir, '--config', this.profilePath], outFile: this.logFile });
    const d = this.daemon;
    await waitFor(
      'native openvpn client "Initialization Sequence Completed"',
      () => {
        const l = this.log().slice(mark);
        if (l.includes('Initialization Sequence Completed')) return true;
        if (!d.running) throw new LabError(`native openvpn client ${d.status} during start-up:\n${tail(l, 30)}`);
        return false;
      },
      opts.timeoutMs ?? 20_000,
      50,
    ).catch(async (e: unknown) => {
      await d.stop(1000);
      throw new LabError(`${(e as Error).message}\n--- client log tail ---\n${tail(this.log().slice(mark), 20)}\n--- server log tail ---\n${tail(s.log(), 20)}`);
    });
    const m = /ifconfig (\d+\.\d+\.\d+\.\d+) /.exec(this.log().slice(mark).split('\n').find((l) => l.includes('PUSH_REPLY')) ?? '');
    this.tunIp = m?.[1] ?? '';
    return this;
  }

  get running(): boolean {
    return this.daemon?.running ?? false;
  }

  /** Stops the client with SIGTERM (it sends explicit-exit-notify if its profile asks), SIGKILL after graceMs. */
  async stop(graceMs = 5000): Promise<void> {
    await this.daemon?.stop(graceMs);
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** Runs a command in the client's namespace (default timeout 60 s; throws on non-zero exit unless allowFail). */
  exec(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return run('ip', ['netns', 'exec', this.ns, cmd, ...args], { timeoutMs: 60_000, ...opts });
  }

  /**
   * Fetches a URL with curl in the client's namespace; the body is written to `outFile` (default /dev/null).
   * Returns the response headers (lower-cased names) and curl's numbers.
   */
  async curl(url: string, opts: { outFile?: string; args?: string[]; timeoutMs?: number } = {}): Promise<CurlResult> {
    const t = Math.ceil((opts.timeoutMs ?? 60_000) / 1000);
    const r = await this.exec(
      'curl',
      ['-sS', '--fail', '--max-time', String(t), '-D', '-', '-o', opts.outFile ?? '/dev/null',
        '-w', '\n%{json}', ...(opts.args ?? []), url],
      { timeoutMs: (t + 5) * 1000 },
    );
    const cut = r.stdout.lastIndexOf('\n{');
    const info = JSON.parse(r.stdout.slice(cut + 1)) as Record<string, unknown>;
    const headers: Record<string, string> = {};
    for (const line of r.stdout.slice(0, cut).split(/\r?\n/)) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    return {
      status: Number(info.http_code),
      headers,
      sizeDownload: Number(info.size_download),
      timeTotalS: Number(info.time_total),
      speedDownloadBps: Number(info.speed_download),
    };
  }
}

export interface CurlResult {
  status: number;
  headers: Record<string, string>;
  /** Bytes of body received. */
  sizeDownload: number;
  timeTotalS: number;
  /** Average download speed, bytes/s. */
  speedDownloadBps: number;
}
