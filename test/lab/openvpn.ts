/**
 * A real OpenVPN 2.6 server (Debian's unmodified `openvpn`) in the lab's srv namespace, built from an options
 * object, plus the client profiles (.ovpn) that match it.
 */
import { writeFile, mkdir, readFile, chmod, access } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { Daemon, LabError, run, tail, waitFor } from './exec.js';
import type { LabPki, CertKey } from './pki.js';
import type { LabAddresses } from './topology.js';

/** Username/password pair accepted by the server's auth-user-pass-verify script. */
export interface UserPass {
  username: string;
  password: string;
}

/** How the lab's OpenVPN server is configured. Every field is optional; the defaults make a plain TLS server. */
export interface OpenVpnServerOptions {
  /** Transport (default 'udp'). The server binds IPv4 only (`udp4`/`tcp4`) unless `listen6`. */
  proto?: 'udp' | 'tcp';
  /**
   * Listen on IPv6 as well (`proto udp6` / `proto tcp6-server`: one dual-stack socket on [::]:port), so that a
   * client can use `remote <lab.addr.srv6> PORT udp6` (the outer transport over IPv6); `remote6` gives the address.
   */
  listen6?: boolean;
  /** Port (default 1194 for the first server, 1195 for the second, ...). */
  port?: number;
  /** `data-ciphers` list, e.g. 'AES-128-GCM' or 'AES-256-CBC' (default: OpenVPN's default list). */
  dataCiphers?: string;
  /** `data-ciphers none` + `cipher none`: plaintext data channel with a TLS control channel (roadmap phases 1-3). */
  cipherNone?: boolean;
  /** `auth DIGEST`: HMAC of CBC/none data packets and of tls-auth, e.g. 'SHA256' or 'none'. */
  auth?: string;
  /**
   * tls-auth on the control channel. `keyDirection` is the SERVER's direction (default 0; the profile gets the
   * other one); null = no direction (bidirectional key use). `digest` sets `auth` (tls-auth uses it).
   */
  tlsAuth?: boolean | { digest?: string; keyDirection?: 0 | 1 | null };
  /** tls-crypt on the control channel. */
  tlsCrypt?: boolean;
  /** tls-crypt-v2; `forceCookie` adds `tls-crypt-v2 ... force-cookie`. */
  tlsCryptV2?: boolean | { forceCookie?: boolean };
  /** `tls-version-min`, e.g. '1.2' or '1.3'. */
  tlsVersionMin?: string;
  /** `tls-version-max`, e.g. '1.2'. */
  tlsVersionMax?: string;
  /**
   * Accept these username/password pairs (auth-user-pass-verify with a script, via-file). With
   * `verifyClientCert: 'none'` the client needs no certificate (and `username-as-common-name` is set).
   */
  userPass?: UserPass | UserPass[];
  /** `verify-client-cert` (default 'require'). */
  verifyClientCert?: 'none' | 'optional' | 'require';
  /** Which server certificate to present (default 'ec'). */
  serverCert?: 'ec' | 'rsa' | 'expired' | 'foreign';
  /** `keepalive PING RESTART` (default [10, 60]); null leaves it out. */
  keepalive?: [number, number] | null;
  /** `explicit-exit-notify N` on a UDP server (tells clients when the server restarts). */
  explicitExitNotify?: number;
  /** `reneg-sec` (renegotiation tests). */
  renegSec?: number;
  /**
   * IPv6 in the tunnel: `server-ipv6 fd00:8:<index>::/64` and `push "route-ipv6 <web IPv6 net>"` (the web host's
   * IPv6 address is lab.addr.web6). Add `push: ['redirect-gateway ipv6 !ipv4']` for the whole of IPv6.
   */
  ipv6?: boolean;
  /** Push `route <web subnet>` (default true). */
  pushRoute?: boolean;
  /** Extra `push "..."` option strings, e.g. ['compress stub-v2']. */
  push?: string[];
  /** `verb` (default 4: logs the client's peer info). */
  verb?: number;
  /** Raw config lines appended at the end. */
  extra?: string[];
  /**
   * OpenVPN 2.6's CA-less mode: no `ca` line, and `<peer-fingerprint>` with these SHA-256 fingerprints of the
   * client certificates it accepts (colon hex).
   */
  peerFingerprints?: string[];
}

/** Options for a client profile; the defaults match the server it is made for. */
export interface ClientProfileOptions {
  /** File name (default `client-<n>.ovpn`) in the server's directory. */
  name?: string;
  /** `remote` (default: the server's address as seen from the root namespace, and its port). */
  remote?: { host: string; port: number };
  /** A third word on the `remote` line, e.g. 'udp6' (`remote HOST PORT udp6`); default none. */
  remoteProto?: string;
  /** Default: the server's proto. Also the family-specific forms, e.g. 'udp6' or 'tcp6-client'. */
  proto?: 'udp' | 'tcp' | 'udp4' | 'tcp4' | 'udp6' | 'tcp6' | 'tcp-client' | 'tcp4-client' | 'tcp6-client';
  /** Inline `<ca>`/`<cert>`/... blocks (default true) or file references. */
  inline?: boolean;
  /** CA to trust (default: the CA of the server's certificate; 'foreign' server cert → the EC CA). A path is used as is. */
  ca?: 'ec' | 'rsa' | 'bundle' | 'foreign' | string;
  /** Client certificate (default 'ec'; 'none' when the server has `verifyClientCert: 'none'`). */
  cert?: 'ec' | 'rsa' | 'ec-encrypted' | 'rsa-encrypted-legacy' | 'foreign' | 'none';
  /** For encrypted keys, write the passphrase to a file and add `askpass FILE` (default true). */
  askpass?: boolean;
  /** `auth-user-pass FILE` (default: the server's first user if it has userPass). false leaves it out. */
  authUserPass?: boolean | UserPass;
  /** `remote-cert-tls server` (default true). */
  remoteCertTls?: boolean;
  /** `verify-x509-name NAME name` (default 'server.lab'); false leaves it out. */
  verifyX509Name?: string | false;
  /** Default: the server's `dataCiphers` (or 'none' with cipherNone). */
  dataCiphers?: string;
  /** `explicit-exit-notify N` (default: left out). */
  explicitExitNotify?: number;
  /** `verb` (default 3). */
  verb?: number;
  /** Drop lines whose directive (or inline tag) is one of these, e.g. ['tls-crypt', 'remote-cert-tls']. */
  omit?: string[];
  /** Raw lines appended at the end. */
  extra?: string[];
}

/** What a server needs from its lab. */
export interface ServerContext {
  ns: string;
  /** Directory of this server (config, keys, log). */
  dir: string;
  /** Index of the server in its lab (0, 1, ...): picks tunN, 10.8.N.0/24 and the default port. */
  index: number;
  addr: LabAddresses;
  pki: LabPki;
}

/**
 * Server log lines (OpenVPN 2.6.14, verb 4) worth waiting for with `server.waitForLog(SERVER_LOG.x, { since })`.
 * Seen in this lab unless marked otherwise.
 */
export const SERVER_LOG = {
  ready: 'Initialization Sequence Completed',
  /** TLS handshake and key exchange with a client done. */
  peerConnected: /Peer Connection Initiated with/,
  /** The server sent the push reply. */
  pushReplySent: /SENT CONTROL \[[^\]]*\]: 'PUSH_REPLY/,
  /**
   * A client's exit notification arrived: over the control channel when the client announced cc-exit
   * ("CC-EEN exit message received by peer", then "Delayed exit in 5 seconds" and later
   * "SIGTERM[soft,delayed-exit] received, client-instance exiting"), or as the OCC exit message on the data
   * channel (2.6: "OCC exit message received by peer" then "SIGUSR1[soft,remote-exit] ... restarting"; not
   * produced by the stock 2.6 client, which uses CC-EEN).
   */
  clientExitNotified: /CC-EEN exit message received by peer|OCC exit message received by peer|\[soft,remote-exit\]/,
  /** A client instance ended (UDP after exit notify or ping-restart; TCP: "Connection reset, restarting"). */
  clientGone: /client-instance exiting|client-instance restarting|Connection reset, restarting/,
  /** auth-user-pass-verify rejected a client. */
  authFailed: /AUTH_FAILED|verification failed for peer|TLS Auth Error/,
} as const;

const DEFAULT_USERNAME = 'labuser';

async function fileExists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

function q(s: string): string {
  return /[\s"'\\#;]/.test(s) ? `"${s.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"` : s;
}

/** A running OpenVPN server. Create with `lab.startOpenVpn()` (or `startLab({ openvpn })`). */
export class OpenVpnServer {
  /** The options it was started with. */
  readonly options: Readonly<OpenVpnServerOptions>;
  readonly proto: 'udp' | 'tcp';
  readonly port: number;
  /** Tunnel device in the srv namespace. */
  readonly dev: string;
  /** Client address pool `10.8.N.0/24`; the server itself is 10.8.N.1. */
  readonly subnet: string;
  readonly serverTunIp: string;
  /** Users the verify script accepts. */
  readonly users: UserPass[];
  /** Key files made for this server (present only for the enabled features). */
  readonly keys: { tlsAuth?: string; tlsCrypt?: string; tlsCryptV2Server?: string; tlsCryptV2Client?: string };
  readonly logFile: string;
  readonly configFile: string;
  /** Unix socket of the management interface (reachable from the root namespace). */
  readonly managementSocket: string;
  private daemon?: Daemon;
  private profiles = 0;
  private creds = 0;

  constructor(readonly ctx: ServerContext, options: OpenVpnServerOptions = {}) {
    this.options = options;
    this.proto = options.proto ?? 'udp';
    this.port = options.port ?? 1194 + ctx.index;
    this.dev = `tun${ctx.index}`;
    this.subnet = `10.8.${ctx.index}.0/24`;
    this.serverTunIp = `10.8.${ctx.index}.1`;
    const up = options.userPass;
    this.users = up === undefined ? [] : Array.isArray(up) ? up : [up];
    this.keys = {};
    this.logFile = join(ctx.dir, 'server.log');
    this.configFile = join(ctx.dir, 'server.conf');
    this.managementSocket = join(ctx.dir, 'mgmt.sock');
  }

  /** The server's address and port as the test process (root namespace) reaches them. */
  get remote(): { host: string; port: number } {
    return { host: this.ctx.addr.srv, port: this.port };
  }

  /** The server's IPv6 address and port from the root namespace (needs `listen6`). */
  get remote6(): { host: string; port: number } {
    if (!this.options.listen6) throw new LabError('this OpenVPN server listens on IPv4 only: start it with listen6: true');
    return { host: this.ctx.addr.srv6, port: this.port };
  }

  private serverCert(): CertKey {
    return this.ctx.pki.server[this.options.serverCert ?? 'ec'];
  }

  private tlsAuthDirection(): 0 | 1 | null {
    const t = this.options.tlsAuth;
    if (typeof t === 'object' && t.keyDirection !== undefined) return t.keyDirection;
    return 0;
  }

  private digest(): string | undefined {
    const t = this.options.tlsAuth;
    return (typeof t === 'object' ? t.digest : undefined) ?? this.options.auth;
  }

  private async genKey(kind: string, file: string, extra: string[] = []): Promise<string> {
    const path = join(this.ctx.dir, file);
    if (!(await fileExists(path))) await run('openvpn', [...extra, '--genkey', kind, path]);
    return path;
  }

  /** Writes keys, scripts and server.conf; returns the config text. */
  async writeConfig(): Promise<string> {
    const o = this.options;
    const { dir, addr, pki } = this.ctx;
    await mkdir(dir, { recursive: true });
    const cert = this.serverCert();
    const [netAddr] = this.subnet.split('/');
    const [webNet] = addr.webNet.split('/');
    const lines: string[] = [
      `# vpnproxy lab server ${this.ctx.index}`,
      `port ${this.port}`,
      `proto ${o.listen6 ? (this.proto === 'udp' ? 'udp6' : 'tcp6-server') : `${this.proto}4`}`,
      `dev ${this.dev}`,
      'dev-type tun',
      'topology subnet',
      `server ${netAddr} 255.255.255.0`,
      ...(o.peerFingerprints ? ['<peer-fingerprint>', ...o.peerFingerprints, '</peer-fingerprint>'] : [`ca ${pki.ca.bundle}`]),
      `cert ${cert.cert}`,
      `key ${cert.key}`,
      'dh none',
      `management ${this.managementSocket} unix`,
      `verb ${o.verb ?? 4}`,
    ];
    if (o.keepalive !== null) lines.push(`keepalive ${(o.keepalive ?? [10, 60]).join(' ')}`);
    if (o.pushRoute !== false) lines.push(`push "route ${webNet} 255.255.255.0"`);
    if (o.ipv6) lines.push(`server-ipv6 fd00:8:${this.ctx.index}::/64`, `push "route-ipv6 ${addr.webNet6}"`);
    lines.push(`push "dhcp-option DNS ${addr.web}"`, `push "dhcp-option DOMAIN lab.test"`);
    for (const p of o.push ?? []) lines.push(`push ${q(p)}`);
    if (o.cipherNone) lines.push('data-ciphers none', 'cipher none');
    else if (o.dataCiphers) lines.push(`data-ciphers ${o.dataCiphers}`);
    const digest = this.digest();
    if (digest) lines.push(`auth ${digest}`);
    if (o.tlsAuth) {
      this.keys.tlsAuth = await this.genKey('tls-auth', 'ta.key');
      const d = this.tlsAuthDirection();
      lines.push(`tls-auth ${this.keys.tlsAuth}${d === null ? '' : ` ${d}`}`);
    }
    if (o.tlsCrypt) {
      this.keys.tlsCrypt = await this.genKey('tls-crypt', 'tc.key');
      lines.push(`tls-crypt ${this.keys.tlsCrypt}`);
    }
    if (o.tlsCryptV2) {
      this.keys.tlsCryptV2Server = await this.genKey('tls-crypt-v2-server', 'v2s.key');
      this.keys.tlsCryptV2Client = await this.genKey('tls-crypt-v2-client', 'v2c.key', ['--tls-crypt-v2', this.keys.tlsCryptV2Server]);
      const force = typeof o.tlsCryptV2 === 'object' && o.tlsCryptV2.forceCookie ? ' force-cookie' : '';
      lines.push(`tls-crypt-v2 ${this.keys.tlsCryptV2Server}${force}`);
    }
    if (o.tlsVersionMin) lines.push(`tls-version-min ${o.tlsVersionMin}`);
    if (o.tlsVersionMax) lines.push(`tls-version-max ${o.tlsVersionMax}`);
    if (o.verifyClientCert) lines.push(`verify-client-cert ${o.verifyClientCert}`);
    if (this.users.length) {
      const usersDir = join(dir, 'users');
      await mkdir(usersDir, { recursive: true });
      await Promise.all(this.users.map((u, i) => writeFile(join(usersDir, String(i)), `${u.username}\n${u.password}\n`, { mode: 0o600 })));
      const script = join(dir, 'verify-user.sh');
      // via-file: $1 names a file holding "username\npassword\n". Accept if it equals one of users/*.
      await writeFile(
        script,
        `#!/bin/sh\nfor f in ${usersDir}/*; do cmp -s "$1" "$f" && exit 0; done\necho "lab verify-user: rejected" >&2\nexit 1\n`,
      );
      await chmod(script, 0o755);
      lines.push('script-security 2', `auth-user-pass-verify ${script} via-file`);
      if (o.verifyClientCert === 'none') lines.push('username-as-common-name');
    }
    if (o.explicitExitNotify !== undefined && this.proto === 'udp') lines.push(`explicit-exit-notify ${o.explicitExitNotify}`);
    if (o.renegSec !== undefined) lines.push(`reneg-sec ${o.renegSec}`);
    lines.push(...(o.extra ?? []));
    const text = `${lines.join('\n')}\n`;
    await writeFile(this.configFile, text);
    return text;
  }

  /** Writes the config and starts the server; resolves once it logged "Initialization Sequence Completed". */
  async start(timeoutMs = 15_000): Promise<this> {
    if (this.daemon?.running) throw new LabError('server already running');
    await this.writeConfig();
    const mark = this.logMark();
    this.daemon = new Daemon({
      ns: this.ctx.ns,
      cmd: 'openvpn',
      args: ['--cd', this.ctx.dir, '--config', this.configFile],
      outFile: this.logFile,
    });
    const d = this.daemon;
    await waitFor(
      'OpenVPN server "Initialization Sequence Completed"',
      () => {
        if (this.log().indexOf('Initialization Sequence Completed', mark) >= 0) return true;
        if (!d.running) throw new LabError(`openvpn server ${d.status} during start-up:\n${tail(this.log().slice(mark), 30)}`);
        return false;
      },
      timeoutMs,
    ).catch((e: unknown) => {
      void d.stop(500);
      throw e;
    });
    return this;
  }

  /** True while the server process runs. */
  get running(): boolean {
    return this.daemon?.running ?? false;
  }

  /** Pid of the openvpn process. */
  get pid(): number | undefined {
    return this.daemon?.pid;
  }

  /** SIGTERM (SIGKILL after `graceMs`). The log stays readable. */
  async stop(graceMs = 3000): Promise<void> {
    await this.daemon?.stop(graceMs);
  }

  /** Sends a signal to the server, e.g. 'SIGUSR1' (soft restart) or 'SIGHUP'. */
  signal(sig: NodeJS.Signals): void {
    this.daemon?.signal(sig);
  }

  /** The whole server log so far. */
  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** Current length of the log; pass it as `since` to waitForLog to see only newer lines. */
  logMark(): number {
    return this.log().length;
  }

  /**
   * Waits until a log line (after offset `since`, default 0) matches `pattern`; returns that line.
   * Throws LabError with the log's tail after `timeoutMs` (default 10 s).
   */
  async waitForLog(pattern: RegExp | string, opts: { since?: number; timeoutMs?: number } = {}): Promise<string> {
    const since = opts.since ?? 0;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    try {
      return await waitFor(
        `server log line ${String(pattern)}`,
        () => this.log().slice(since).split('\n').find((l) => (typeof pattern === 'string' ? l.includes(pattern) : pattern.test(l))),
        timeoutMs,
        50,
      );
    } catch (e) {
      throw new LabError(`${(e as Error).message}\n--- server log tail ---\n${tail(this.log().slice(since), 25)}`);
    }
  }

  /**
   * Sends one command to the management interface and returns its answer (the lines up to "END", or the
   * SUCCESS:/ERROR: line). E.g. `status 2`, `kill client.lab`, `client-kill 0`.
   */
  async management(command: string, timeoutMs = 5000): Promise<string> {
    return await new Promise<string>((resolve, reject) => {
      const sock = createConnection(this.managementSocket);
      let buf = '';
      let sent = false;
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new LabError(`management "${command}": no answer in ${timeoutMs} ms (got: ${buf.slice(-300)})`));
      }, timeoutMs);
      const done = (v: string): void => {
        clearTimeout(timer);
        sock.end('quit\n');
        resolve(v);
      };
      sock.setEncoding('utf8');
      sock.on('error', (e) => {
        clearTimeout(timer);
        reject(new LabError(`management socket ${this.managementSocket}: ${e.message}`));
      });
      sock.on('data', (d: string) => {
        buf += d;
        if (!sent) {
          const nl = buf.indexOf('\n');
          if (nl < 0) return; // greeting ">INFO:OpenVPN Management Interface ..."
          buf = buf.slice(nl + 1);
          sent = true;
          sock.write(`${command}\n`);
        }
        const lines = buf.split('\r\n').filter((l) => !l.startsWith('>'));
        const end = lines.findIndex((l) => l === 'END' || l.startsWith('SUCCESS:') || l.startsWith('ERROR:'));
        if (end >= 0) done(lines.slice(0, end + 1).join('\n'));
      });
    });
  }

  /** Text of a client profile matching this server (see ClientProfileOptions). */
  async clientProfileText(opts: ClientProfileOptions = {}): Promise<string> {
    const o = this.options;
    const { pki, dir } = this.ctx;
    const inline = opts.inline ?? true;
    const remote = opts.remote ?? this.remote;
    const proto = opts.proto ?? this.proto;
    const lines: string[] = ['client', 'dev tun', `proto ${proto}`, `remote ${remote.host} ${remote.port}${opts.remoteProto ? ` ${opts.remoteProto}` : ''}`, 'nobind'];
    const block = async (tag: string, path: string): Promise<void> => {
      if (inline) lines.push(`<${tag}>`, (await readFile(path, 'utf8')).trimEnd(), `</${tag}>`);
      else lines.push(`${tag} ${path}`);
    };
    const caSel = opts.ca ?? (o.serverCert === 'rsa' ? 'rsa' : 'ec');
    const caPath = caSel === 'ec' || caSel === 'rsa' || caSel === 'foreign' || caSel === 'bundle' ? pki.ca[caSel] : caSel;
    await block('ca', caPath);
    const certSel = opts.cert ?? (o.verifyClientCert === 'none' ? 'none' : 'ec');
    if (certSel !== 'none') {
      const ck = {
        ec: pki.client.ec,
        rsa: pki.client.rsa,
        'ec-encrypted': pki.client.ecEncrypted,
        'rsa-encrypted-legacy': pki.client.rsaEncryptedLegacy,
        foreign: pki.client.foreign,
      }[certSel];
      await block('cert', ck.cert);
      await block('key', ck.key);
      if ((certSel === 'ec-encrypted' || certSel === 'rsa-encrypted-legacy') && opts.askpass !== false) {
        const pf = join(dir, 'askpass.txt');
        await writeFile(pf, `${pki.passphrase}\n`, { mode: 0o600 });
        lines.push(`askpass ${pf}`);
      }
    }
    if (opts.remoteCertTls ?? true) lines.push('remote-cert-tls server');
    const vx = opts.verifyX509Name ?? pki.serverName;
    if (vx !== false) lines.push(`verify-x509-name ${q(vx)} name`);
    const ciphers = opts.dataCiphers ?? (o.cipherNone ? 'none' : o.dataCiphers);
    if (ciphers) lines.push(`data-ciphers ${ciphers}`);
    const digest = this.digest();
    if (digest) lines.push(`auth ${digest}`);
    if (this.keys.tlsAuth) {
      const d = this.tlsAuthDirection();
      const cd = d === null ? null : d === 0 ? 1 : 0;
      if (inline) {
        if (cd !== null) lines.push(`key-direction ${cd}`);
        await block('tls-auth', this.keys.tlsAuth);
      } else lines.push(`tls-auth ${this.keys.tlsAuth}${cd === null ? '' : ` ${cd}`}`);
    }
    if (this.keys.tlsCrypt) await block('tls-crypt', this.keys.tlsCrypt);
    if (this.keys.tlsCryptV2Client) await block('tls-crypt-v2', this.keys.tlsCryptV2Client);
    if (o.tlsVersionMin) lines.push(`tls-version-min ${o.tlsVersionMin}`);
    const up = opts.authUserPass ?? this.users.length > 0;
    if (up) {
      const u = typeof up === 'object' ? up : (this.users[0] ?? { username: DEFAULT_USERNAME, password: 'x' });
      const cf = join(dir, `creds-${this.creds++}.txt`);
      await writeFile(cf, `${u.username}\n${u.password}\n`, { mode: 0o600 });
      lines.push(`auth-user-pass ${cf}`);
    }
    if (opts.explicitExitNotify !== undefined) lines.push(`explicit-exit-notify ${opts.explicitExitNotify}`);
    lines.push(`verb ${opts.verb ?? 3}`);
    lines.push(...(opts.extra ?? []));
    let out = lines;
    if (opts.omit?.length) {
      const omit = new Set(opts.omit);
      out = [];
      let skipping: string | undefined;
      for (const l of lines) {
        if (skipping) {
          if (l === `</${skipping}>`) skipping = undefined;
          continue;
        }
        const open = /^<([a-z0-9-]+)>$/.exec(l);
        if (open && omit.has(open[1]!)) {
          skipping = open[1];
          continue;
        }
        if (omit.has(l.split(/\s+/)[0]!)) continue;
        out.push(l);
      }
    }
    return `${out.join('\n')}\n`;
  }

  /** Writes a client profile matching this server and returns its path. */
  async clientProfile(opts: ClientProfileOptions = {}): Promise<string> {
    const n = this.profiles++;
    const text = await this.clientProfileText(opts);
    const path = join(this.ctx.dir, opts.name ?? `client-${n}.ovpn`);
    await writeFile(path, text, { mode: 0o600 });
    return path;
  }
}

