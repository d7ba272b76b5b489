/**
 * strongSwan's own client as a baseline: a second charon, in the nat namespace, initiating to the lab's responder
 * (ike's nat-side address) with the responder's PSK, a virtual IP and the web host's IPsec network as remote_ts.
 * ESP runs in charon's kernel-libipsec (userspace ESP on a tun device `ipsec0`, kernel TCP on top), since the
 * kernel here has no XFRM ESP; so charon's CPU time is the client's whole ESP cost. The benchmark runs curl and the
 * load generator in nat against the web host's IPsec-side address.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LabError, tail, type Daemon } from './exec.js';
import { charonConf, pskClientConf, startCharon, swanctl, type StrongSwanResponder } from './strongswan.js';

export interface StrongSwanClientOptions {
  /** Our identity (default the responder's remoteId). Give the native client its own when ours is connected at
   * the same time: strongSwan drops an older IKE_SA of the same identity when a new one sends INITIAL_CONTACT. */
  id?: string;
  /** IKE proposals (default the responder's second: aes256gcm16-prfsha256-x25519). */
  proposals?: string;
  /** ESP proposals (default aes256gcm16). */
  espProposals?: string;
  /** The responder's port (default 500); another port (a relay in front of 4500) also sets local_port = 4500, so that charon speaks 4500-style IKE (non-ESP marker) from the first message. */
  remotePort?: number;
  /** The responder's address (default its nat-side address). */
  remoteAddr?: string;
  /** Start-up and initiate timeout (default 20 s). */
  timeoutMs?: number;
}

export class StrongSwanClient {
  readonly uri: string;
  readonly logFile: string;
  private daemon?: Daemon;
  /** performance.now() when start() began, when charon answered on vici, and when the CHILD_SA was up. */
  spawnedAt = 0;
  upAt = 0;

  constructor(
    readonly ns: string,
    readonly dir: string,
    readonly responder: StrongSwanResponder,
    readonly options: StrongSwanClientOptions = {},
  ) {
    this.uri = `unix://${join(dir, 'charon.vici')}`;
    this.logFile = join(dir, 'charon.log');
  }

  /** charon's pid (its CPU time is the client's). */
  get pid(): number {
    if (!this.daemon) throw new LabError('strongSwan client not started');
    return this.daemon.pid;
  }

  get running(): boolean {
    return this.daemon?.running ?? false;
  }

  /** Writes the config, starts charon, loads the connection and initiates it; resolves once the CHILD_SA is up. */
  async start(): Promise<this> {
    const o = this.options;
    const r = this.responder;
    const timeoutMs = o.timeoutMs ?? 20_000;
    await mkdir(this.dir, { recursive: true });
    const confFile = join(this.dir, 'strongswan.conf');
    const swanctlFile = join(this.dir, 'swanctl.conf');
    await writeFile(confFile, charonConf({ uri: this.uri, logFile: this.logFile, logLevel: 1 }));
    const relayed = o.remotePort !== undefined && o.remotePort !== 500;
    await writeFile(
      swanctlFile,
      pskClientConf(r, {
        name: 'bench',
        remoteAddrs: o.remoteAddr ?? r.addr.ikeNatSide,
        remotePort: o.remotePort ?? 500,
        ...(relayed ? { localPort: 4500 } : {}),
        proposals: o.proposals ?? 'aes256gcm16-prfsha256-x25519',
        encap: true,
        espProposals: o.espProposals ?? 'aes256gcm16',
        startAction: 'none',
        id: o.id ?? r.remoteId,
      }),
    );
    this.spawnedAt = performance.now();
    this.daemon = await startCharon(this.ns, this.dir, confFile, this.uri, timeoutMs, this.logFile);
    try {
      const load = await swanctl(this.uri, ['--load-all', '--file', swanctlFile]);
      if (!load.stdout.includes("loaded connection 'bench'")) throw new LabError(`swanctl --load-all did not load the client connection:\n${load.stdout}${load.stderr}`);
      const init = await swanctl(this.uri, ['--initiate', '--child', 'net', '--timeout', String(Math.ceil(timeoutMs / 1000))], true, timeoutMs + 5000);
      if (init.code !== 0) throw new LabError(`swanctl --initiate failed (exit ${init.code}):\n${tail(init.stdout + init.stderr, 20)}\n--- client charon ---\n${tail(this.log(), 30)}`);
      this.upAt = performance.now();
    } catch (e) {
      await this.stop(1000);
      throw e;
    }
    return this;
  }

  async stop(graceMs = 3000): Promise<void> {
    await this.daemon?.stop(graceMs);
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }
}
