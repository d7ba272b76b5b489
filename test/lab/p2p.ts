/**
 * A point-to-point OpenVPN peer in the srv namespace: static-key mode (`--secret`) or plaintext, with a
 * kernel tun device whose address answers pings. The server side of the static-key and p2p interop tests.
 */
import { readFileSync, existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lab } from './lab.js';
import { run, waitFor, type Daemon } from './exec.js';

export interface P2pPeerOptions {
  /** `--secret` with this key direction on the peer (null: no direction); undefined: plaintext p2p. */
  secret?: { direction: 0 | 1 | null };
  cipher?: string;
  auth?: string;
  /** Extra openvpn arguments, e.g. ['--comp-lzo', 'no']. */
  extra?: string[];
}

let peers = 0;

export class P2pPeer {
  readonly index: number;
  readonly port: number;
  /** The peer's tunnel address (answers pings) and ours. */
  readonly peerIp: string;
  readonly clientIp: string;
  readonly dir: string;
  keyFile?: string;
  private daemon?: Daemon;
  private readonly logFile: string;

  constructor(
    private readonly lab: Lab,
    readonly options: P2pPeerOptions,
  ) {
    this.index = peers++ % 200;
    this.port = 1400 + this.index;
    this.peerIp = `10.7.${this.index}.1`;
    this.clientIp = `10.7.${this.index}.2`;
    this.dir = lab.dir;
    this.logFile = join(lab.dir, `p2p-${this.index}.log`);
  }

  async start(): Promise<this> {
    const o = this.options;
    const args = [
      '--dev', `tunp${this.index}`, '--dev-type', 'tun',
      '--proto', 'udp', '--lport', String(this.port),
      '--ifconfig', this.peerIp, this.clientIp,
      '--ping', '1', '--verb', '4',
    ];
    if (o.secret) {
      this.keyFile = join(this.dir, `p2p-${this.index}.key`);
      await run('openvpn', ['--genkey', 'secret', this.keyFile]);
      args.push('--secret', this.keyFile, ...(o.secret.direction === null ? [] : [String(o.secret.direction)]));
      args.push('--cipher', o.cipher ?? 'AES-256-CBC', '--auth', o.auth ?? 'SHA256');
    }
    args.push(...(o.extra ?? []));
    this.daemon = this.lab.spawn('srv', `p2p-${this.index}`, 'openvpn', args);
    const d = this.daemon;
    // Without --remote the peer waits for the first packet; it is ready once its socket is bound.
    await waitFor(
      `p2p peer ${this.index} listening`,
      () => {
        if (/UDPv4 link remote: \[AF_UNSPEC\]/.test(this.log())) return true;
        if (!d.running) throw new Error(`p2p openvpn exited:\n${this.log().slice(-2000)}`);
        return false;
      },
      15_000,
    );
    return this;
  }

  log(): string {
    const f = join(this.lab.dir, `p2p-${this.index}.log`);
    return existsSync(f) ? readFileSync(f, 'utf8') : existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** A client profile for our side; `direction` is the client's key-direction (the opposite of the peer's). */
  async clientProfile(opts: { inline?: boolean; extra?: string[] } = {}): Promise<string> {
    const o = this.options;
    const lines = ['dev tun', 'proto udp', `remote ${this.lab.addr.srv} ${this.port}`, `ifconfig ${this.clientIp} ${this.peerIp}`, 'ping 1', 'ping-restart 10'];
    if (o.secret) {
      const dir = o.secret.direction === null ? null : 1 - o.secret.direction;
      if (opts.inline) {
        if (dir !== null) lines.push(`key-direction ${dir}`);
        lines.push('<secret>', readFileSync(this.keyFile!, 'utf8').trim(), '</secret>');
      } else lines.push(`secret ${this.keyFile}${dir === null ? '' : ` ${dir}`}`);
      lines.push(`cipher ${o.cipher ?? 'AES-256-CBC'}`, `auth ${o.auth ?? 'SHA256'}`);
    }
    lines.push(...(opts.extra ?? []));
    const path = join(this.dir, `p2p-client-${this.index}.ovpn`);
    await writeFile(path, `${lines.join('\n')}\n`, { mode: 0o600 });
    return path;
  }

  async stop(): Promise<void> {
    await this.daemon?.stop(2000);
  }
}

/** Starts a p2p peer in the lab's srv namespace. */
export async function startP2pPeer(lab: Lab, options: P2pPeerOptions): Promise<P2pPeer> {
  return new P2pPeer(lab, options).start();
}
