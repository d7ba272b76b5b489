/**
 * A real strongSwan 5.9 charon as IKEv2 responder in the lab's ike namespace (facts in
 * /work/shared/reference/lab.md): kernel-libipsec (userspace ESP on `ipsec0`; the kernel has no XFRM ESP here),
 * an explicit plugin list with kdf, its own /run (unshare -m + tmpfs, since charon insists on /run/charon.pid),
 * STRONGSWAN_CONF pointing at our file and a vici socket in the lab directory that swanctl reaches with --uri.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, LabError, run, tail, waitFor, type RunResult } from './exec.js';
import type { LabAddresses } from './topology.js';

export interface StrongSwanOptions {
  /** Also an IPv6 pool (ipsecPool6, dns webIpsec6) and the web host's IPv6 network in local_ts (default no). */
  ipv6?: boolean;
  /** Also accept IKE and ESP-in-UDP on its IPv6 address (lab.addr.ike6) besides the IPv4 one (default no). */
  listen6?: boolean;
  /** Connection name (default 'rw-psk'). */
  connName?: string;
  /** Pre-shared key (default 'lab-psk-not-secret'). */
  psk?: string;
  /** Responder identity (default 'server.lab'). */
  localId?: string;
  /** Initiator identity expected (default 'client.lab'). */
  remoteId?: string;
  /** IKE proposals (default 'aes128-sha256-modp2048, aes256gcm16-prfsha256-x25519, aes128-sha256-ecp256'). */
  proposals?: string;
  /** ESP proposals (default 'aes256gcm16, aes128gcm16, aes128-sha256'). */
  espProposals?: string;
  /** Force UDP encapsulation, ESP-in-UDP/4500 (default true). */
  encap?: boolean;
  /** Log level of the ike/chd/cfg groups (default 2; 4 dumps keys). */
  ikeLogLevel?: number;
  /** Raw swanctl.conf text added inside `connections { }` (one setting per line!). */
  extraConnections?: string;
  /**
   * How the connection authenticates (default 'psk'): 'cert' = both sides X.509 (the client's chain must lead
   * to `clientCa`), 'eap' = server certificate, client EAP-MSCHAPv2 (`eapUsers`). Both need serverCert/serverKey.
   */
  auth?: 'psk' | 'cert' | 'eap';
  /** Absolute paths of the server's certificate and key (PEM), for auth 'cert' and 'eap'. */
  serverCert?: string;
  serverKey?: string;
  /**
   * CA certificates (absolute paths) copied into x509ca/ beside swanctl.conf: intermediates there let charon
   * build its own chain and send them as CERT payloads after the server certificate.
   */
  caCerts?: readonly string[];
  /** Absolute path of the CA certificate that client certificates must chain to (auth 'cert'). */
  clientCa?: string;
  /** EAP users and passwords (auth 'eap'). */
  eapUsers?: Record<string, string>;
  /** Start timeout (default 15 s). */
  timeoutMs?: number;
  /** The connection's dpd_delay (default '30s'). */
  dpdDelay?: string;
  /** The IKE SA's rekey_time (default: strongSwan's, 4h). */
  ikeRekeyTime?: string;
  /** The CHILD_SA's rekey_time (default '1h'). */
  childRekeyTime?: string;
  /** Raw swanctl.conf text added inside `secrets { }` (one setting per line). */
  extraSecrets?: string;
  /** Raw strongswan.conf settings added inside `charon { }`, e.g. `cookie_threshold = 1` (one per line). */
  charon?: string;
}

const PLUGINS =
  'random nonce openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey curve25519 hmac gcm aes sha1 sha2 md5 kdf attr ' +
  'kernel-libipsec kernel-netlink socket-default vici eap-identity eap-mschapv2 eap-md5 eap-tls';

/** A running charon. Create with `lab.startStrongSwan()` (or `startLab({ strongswan: {...} })`). */
export class StrongSwanResponder {
  readonly connName: string;
  readonly psk: string;
  readonly localId: string;
  readonly remoteId: string;
  /** `unix:///.../charon.vici`, for `swanctl --uri`. */
  readonly uri: string;
  readonly logFile: string;
  readonly confFile: string;
  readonly swanctlFile: string;
  private daemon?: Daemon;

  constructor(
    readonly ns: string,
    readonly dir: string,
    readonly addr: LabAddresses,
    readonly options: StrongSwanOptions = {},
  ) {
    this.connName = options.connName ?? 'rw-psk';
    this.psk = options.psk ?? 'lab-psk-not-secret';
    this.localId = options.localId ?? 'server.lab';
    this.remoteId = options.remoteId ?? 'client.lab';
    this.uri = `unix://${join(dir, 'charon.vici')}`;
    this.logFile = join(dir, 'charon.log');
    this.confFile = join(dir, 'strongswan.conf');
    this.swanctlFile = join(dir, 'swanctl.conf');
  }

  /** The responder's address as the test process reaches it (UDP 500 and 4500). */
  get address(): string {
    return this.addr.ike;
  }

  /** Its IPv6 address from the root namespace (needs `listen6`). */
  get address6(): string {
    if (!this.options.listen6) throw new LabError('this strongSwan responder accepts IPv4 only: start it with listen6: true');
    return this.addr.ike6;
  }

  private async writeConfig(): Promise<void> {
    const o = this.options;
    const lvl = o.ikeLogLevel ?? 2;
    await mkdir(join(this.dir, 'private'), { recursive: true });
    // swanctl loads private keys from private/ beside the --file (secrets.private… only hold their passphrases).
    if (o.serverKey) await copyFile(o.serverKey, join(this.dir, 'private', 'server.key'));
    if (o.caCerts?.length) {
      await mkdir(join(this.dir, 'x509ca'), { recursive: true });
      for (const [i, c] of o.caCerts.entries()) await copyFile(c, join(this.dir, 'x509ca', `ca-${i + 1}.crt`));
    }
    await writeFile(this.confFile, charonConf({ uri: this.uri, logFile: this.logFile, logLevel: lvl, extra: o.charon }));
    const [pool] = this.addr.ipsecPool.split('/');
    await writeFile(
      this.swanctlFile,
      `connections {
  ${this.connName} {
    version = 2
    local_addrs = ${this.addr.ike}, ${this.addr.ikeNatSide}${o.listen6 ? `, ${this.addr.ike6}` : ''}
    proposals = ${o.proposals ?? 'aes128-sha256-modp2048, aes256gcm16-prfsha256-x25519, aes128-sha256-ecp256'}
    encap = ${o.encap === false ? 'no' : 'yes'}
    pools = labpool${o.ipv6 ? ', labpool6' : ''}
    dpd_delay = ${o.dpdDelay ?? '30s'}${o.ikeRekeyTime ? `\n    rekey_time = ${o.ikeRekeyTime}` : ''}
${this.authBlocks()}
    children {
      net {
        local_ts = ${this.addr.webIpsecNet}${o.ipv6 ? `, ${this.addr.webIpsecNet6}` : ''}
        esp_proposals = ${o.espProposals ?? 'aes256gcm16, aes128gcm16, aes128-sha256'}
        rekey_time = ${o.childRekeyTime ?? '1h'}
      }
    }
  }
${o.extraConnections ?? ''}
}
pools {
  labpool {
    addrs = ${pool}/24
    dns = ${this.addr.webIpsec}
  }${o.ipv6 ? `\n  labpool6 {\n    addrs = ${this.addr.ipsecPool6}\n    dns = ${this.addr.webIpsec6}\n  }` : ''}
}
secrets {
  ike-lab {
    id-1 = ${this.localId}
    id-2 = ${this.remoteId}
    secret = "${this.psk.replaceAll('"', '\\"')}"
  }
${this.extraSecrets()}
${o.extraSecrets ?? ''}
}
`,
    );
  }

  private authBlocks(): string {
    const o = this.options;
    const mode = o.auth ?? 'psk';
    if (mode === 'psk') return `    local {\n      auth = psk\n      id = ${this.localId}\n    }\n    remote {\n      auth = psk\n      id = ${this.remoteId}\n    }`;
    if (!o.serverCert || !o.serverKey) throw new LabError(`strongSwan auth = ${mode} needs serverCert and serverKey`);
    const local = `    local {\n      auth = pubkey\n      certs = ${o.serverCert}\n      id = ${this.localId}\n    }`;
    if (mode === 'cert') {
      if (!o.clientCa) throw new LabError('strongSwan auth = cert needs clientCa');
      return `${local}\n    remote {\n      auth = pubkey\n      cacerts = ${o.clientCa}\n      id = ${this.remoteId}\n    }`;
    }
    return `${local}\n    send_certreq = no\n    remote {\n      auth = eap-mschapv2\n      eap_id = %any\n    }`;
  }

  private extraSecrets(): string {
    const o = this.options;
    const out: string[] = [];
    let i = 0;
    for (const [user, pw] of Object.entries(o.eapUsers ?? {})) out.push(`  eap-u${++i} {\n    id = ${user}\n    secret = "${pw.replaceAll('"', '\\"')}"\n  }`);
    return out.join('\n');
  }

  /** Starts charon, waits for its vici socket, loads the config. */
  async start(): Promise<this> {
    await this.writeConfig();
    this.daemon = await startCharon(this.ns, this.dir, this.confFile, this.uri, this.options.timeoutMs ?? 15_000, this.logFile);
    const r = await this.swanctl(['--load-all', '--file', this.swanctlFile]);
    if (!r.stdout.includes(`loaded connection '${this.connName}'`)) {
      throw new LabError(`swanctl --load-all did not load ${this.connName}:\n${r.stdout}${r.stderr}`);
    }
    if (this.options.serverKey && !/loaded \w+ key from/.test(r.stdout)) throw new LabError(`swanctl --load-all did not load the server's private key:\n${r.stdout}${r.stderr}`);
    return this;
  }

  /** Runs `swanctl ARGS --uri <ours>` (throws on failure unless allowFail). */
  swanctl(args: readonly string[], allowFail = false): Promise<RunResult> {
    return swanctl(this.uri, args, allowFail);
  }

  /** `swanctl --list-conns` output. */
  async listConns(): Promise<string> {
    return (await this.swanctl(['--list-conns'])).stdout;
  }

  /** `swanctl --list-sas` output. */
  async listSas(): Promise<string> {
    return (await this.swanctl(['--list-sas'])).stdout;
  }

  get running(): boolean {
    return this.daemon?.running ?? false;
  }

  /** charon's pid (its CPU time includes kernel-libipsec's ESP work). */
  get pid(): number | undefined {
    return this.daemon?.pid;
  }

  /** `swanctl --rekey --child NAME` (default the connection's child `net`) from the gateway's side. */
  async rekeyChild(child = 'net'): Promise<RunResult> {
    return this.swanctl(['--rekey', '--child', child]);
  }

  /** `swanctl --rekey --ike NAME` (default the connection) from the gateway's side. */
  async rekeyIke(ike = this.connName): Promise<RunResult> {
    return this.swanctl(['--rekey', '--ike', ike]);
  }

  /** `swanctl --terminate --ike NAME`: the gateway deletes the IKE SA (and tells the client). */
  async terminateIke(ike = this.connName): Promise<RunResult> {
    return this.swanctl(['--terminate', '--ike', ike, '--timeout', '5'], true);
  }

  /** Kills charon at once (SIGKILL): no DELETE reaches the client, as when a gateway dies. */
  async kill(): Promise<void> {
    const d = this.daemon;
    if (!d?.running) return;
    d.signal('SIGKILL');
    await d.exited(5000).catch(() => undefined);
  }

  async stop(graceMs = 3000): Promise<void> {
    await this.daemon?.stop(graceMs);
  }

  /** charon's file log. */
  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }
}

/** strongswan.conf for one charon of the lab: the plugin list, a vici socket at `uri`, a file log. */
export function charonConf(o: { uri: string; logFile: string; logLevel: number; extra?: string }): string {
  const lvl = o.logLevel;
  return `charon {
  load = ${PLUGINS}
${o.extra ?? ''}
  plugins {
    vici {
      socket = ${o.uri}
    }
    openssl {
      load_legacy = yes
    }
  }
  filelog {
    lab {
      path = ${o.logFile}
      time_format = %T
      default = 1
      ike = ${lvl}
      chd = ${lvl}
      cfg = ${lvl}
      net = 1
      esp = 1
      knl = 1
      enc = 1
      flush_line = yes
      append = yes
    }
  }
  syslog {
    daemon {
      default = -1
    }
  }
}
`;
}

/** Runs `swanctl ARGS --uri URI` (throws on failure unless allowFail). */
export function swanctl(uri: string, args: readonly string[], allowFail = false, timeoutMs = 10_000): Promise<RunResult> {
  return run('swanctl', [...args, '--uri', uri], { timeoutMs, allowFail });
}

/**
 * Starts charon in namespace `ns` with STRONGSWAN_CONF = confFile and waits until swanctl answers on `uri`.
 * Own mount namespace: a tmpfs on /run for /run/charon.pid, with `dir` moved back on top of it so that the vici
 * socket and the log stay visible from the root namespace. `unshare`, `sh` and `ip netns exec` all exec, so the
 * daemon's pid is charon's.
 */
export async function startCharon(ns: string, dir: string, confFile: string, uri: string, timeoutMs: number, logFile?: string): Promise<Daemon> {
  const script =
    'set -e; d="$1"; mount --bind "$d" /mnt; mount -t tmpfs -o mode=0755 none /run; mkdir -p "$d"; ' +
    'mount --move /mnt "$d"; exec /usr/lib/ipsec/charon';
  const d = new Daemon({
    ns,
    cmd: 'unshare',
    args: ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', dir],
    outFile: join(dir, 'charon.out'),
    env: { ...process.env, STRONGSWAN_CONF: confFile },
  });
  const vici = uri.replace(/^unix:\/\//, '');
  await waitFor(
    'charon vici socket',
    async () => {
      if (!d.running) throw new LabError(`charon ${d.status} during start-up:\n${tail(d.output() + (logFile && existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''), 30)}`);
      if (!existsSync(vici)) return false;
      return (await swanctl(uri, ['--stats'], true)).code === 0;
    },
    timeoutMs,
    20,
  ).catch(async (e: unknown) => {
    await d.stop(1000);
    throw e;
  });
  return d;
}

/** A PSK initiator's swanctl.conf for the lab's responder (ours, or strongSwan's own client). */
export interface PskClientConf {
  /** Connection name (default 'lab'). */
  name?: string;
  /** The responder's address (default its root-side address). */
  remoteAddrs?: string;
  remotePort?: number;
  localPort?: number;
  /** Write `encap = yes` (force ESP in UDP from our side too). */
  encap?: boolean;
  /** Default '0.0.0.0'. */
  vips?: string;
  /** IKE and ESP proposals (default: none written, i.e. the initiator's defaults). */
  proposals?: string;
  espProposals?: string;
  /** Default the web host's IPsec network. */
  remoteTs?: string;
  startAction?: 'start' | 'none' | 'trap';
  /** Our identity (default the responder's remoteId) and the one we expect (default its localId). */
  id?: string;
  remoteId?: string;
  /** Default the responder's PSK. */
  psk?: string;
  /** A first comment line. */
  comment?: string;
}

export function pskClientConf(ss: StrongSwanResponder, o: PskClientConf = {}): string {
  const id = o.id ?? ss.remoteId;
  const remoteId = o.remoteId ?? ss.localId;
  const opt = (key: string, v: string | number | undefined, indent = '    '): string => (v === undefined ? '' : `\n${indent}${key} = ${v}`);
  return `${o.comment ? `# ${o.comment}\n` : ''}connections {
  ${o.name ?? 'lab'} {
    version = 2
    remote_addrs = ${o.remoteAddrs ?? ss.address}${opt('remote_port', o.remotePort)}${opt('local_port', o.localPort)}
    vips = ${o.vips ?? '0.0.0.0'}${opt('proposals', o.proposals)}${opt('encap', o.encap ? 'yes' : undefined)}
    local {
      auth = psk
      id = ${id}
    }
    remote {
      auth = psk
      id = ${remoteId}
    }
    children {
      net {
        remote_ts = ${o.remoteTs ?? ss.addr.webIpsecNet}${opt('esp_proposals', o.espProposals, '        ')}${opt('start_action', o.startAction, '        ')}
      }
    }
  }
}
secrets {
  ike-lab {
    id-1 = ${remoteId}
    id-2 = ${id}
    secret = "${(o.psk ?? ss.psk).replaceAll('"', '\\"')}"
  }
}
`;
}
