/**
 * The lab's ESP-in-UDP gateway with manual SAs: scapy's ESP implementation (esp-gateway.py, Debian
 * python3-scapy 2.5 + python3-cryptography) in the `esp` namespace, in front of the web host. The
 * independent peer of our IPsec client (issue 12): it decrypts ESP-in-UDP (RFC 3948, port 4500, tunnel mode
 * IPv4) into a TUN device and encrypts what the kernel routes back to the client's last seen address:port.
 *
 *   const gw = await lab.startEspGateway({ suite: 'aes256-sha256' });
 *   await writeFile(file, gw.manualConfig());          // `manual { lab { ... } }` for our client
 *   // ... our client sends to gw.address (10.B.8.2:4500) from gw.clientVip (10.B.7.2) to lab.web.ipsecHost
 *   const c = await gw.counters();                     // { decrypted, replayed, badIcv, ... }
 *
 * Options and the script's --spi-in/--enc-key-in etc. are the gateway's point of view ("in" = what the
 * gateway receives); `gw.client` turns them round into what our client must configure.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Daemon, LabError, tail, waitFor } from './exec.js';
import type { LabAddresses } from './topology.js';

/** strongSwan proposal keywords the gateway speaks. */
export type EspSuite = 'aes128gcm16' | 'aes256gcm16' | 'chacha20poly1305' | 'aes128-sha1' | 'aes256-sha256' | 'aes256-sha512';

export interface EspSuiteInfo {
  /** Bytes of enc_key: cipher key, plus the 4-byte salt for AEADs (RFC 4106 / RFC 7634 KEYMAT). */
  encKeyBytes: number;
  /** Bytes of integ_key (0 for AEADs). */
  integKeyBytes: number;
  aead: boolean;
  /** ICV bytes on the wire. */
  icvBytes: number;
}

export const ESP_SUITES: Record<EspSuite, EspSuiteInfo> = {
  aes128gcm16: { encKeyBytes: 20, integKeyBytes: 0, aead: true, icvBytes: 16 },
  aes256gcm16: { encKeyBytes: 36, integKeyBytes: 0, aead: true, icvBytes: 16 },
  chacha20poly1305: { encKeyBytes: 36, integKeyBytes: 0, aead: true, icvBytes: 16 },
  'aes128-sha1': { encKeyBytes: 16, integKeyBytes: 20, aead: false, icvBytes: 12 },
  'aes256-sha256': { encKeyBytes: 32, integKeyBytes: 32, aead: false, icvBytes: 16 },
  'aes256-sha512': { encKeyBytes: 32, integKeyBytes: 64, aead: false, icvBytes: 32 },
};

export const ESP_SUITE_NAMES = Object.keys(ESP_SUITES) as EspSuite[];

export interface EspGatewayOptions {
  /** Default 'aes128gcm16'. */
  suite?: EspSuite;
  /** SPI the gateway receives with (our client's outbound SPI). Default random in 0x1000..2^32-1. */
  spiIn?: number;
  /** SPI the gateway sends with (our client's inbound SPI). Default random. */
  spiOut?: number;
  /** Keys, as Buffers or hex (0x optional); random of the suite's length when not given. */
  encKeyIn?: Buffer | string;
  encKeyOut?: Buffer | string;
  integKeyIn?: Buffer | string;
  integKeyOut?: Buffer | string;
  /** The client's inner address; the gateway drops other inner sources. Default lab.addr.espClientVip (10.B.7.2). */
  clientVip?: string;
  /** UDP port (default 4500). */
  port?: number;
  /** Inbound anti-replay window (default 128). */
  replayWindow?: number;
  /** Extended sequence numbers on both SAs (the high half stays 0: the ESN ICV/AAD layout is what is checked). */
  esn?: boolean;
  /** MTU of the gateway's TUN device (default 1400). */
  tunMtu?: number;
  /** One log line per received/decrypted/sent packet (default true; drops are always logged). */
  dataLog?: boolean;
  /** Start timeout (default 15 s). */
  timeoutMs?: number;
}

/** One direction of an SA as a client configures it. */
export interface EspSaKeys {
  spi: number;
  encKey: Buffer;
  /** Empty for AEAD suites. */
  integKey: Buffer;
}

/** An SA as tshark-esp.ts needs it ('*' = any address). */
export interface EspSaSpec extends EspSaKeys {
  suite: EspSuite;
  src: string;
  dst: string;
}

/** The gateway's counters (esp-gateway.py's `stats` line). */
export interface EspGatewayCounters {
  received: number;
  decrypted: number;
  replayed: number;
  badIcv: number;
  badSpi: number;
  badPadding: number;
  badNextHeader: number;
  dummy: number;
  badInner: number;
  badSource: number;
  malformed: number;
  keepalives: number;
  nonEsp: number;
  sent: number;
  noPeer: number;
  tunErrors: number;
}

/** Event names of the gateway's log lines (`esp-gw EVENT key=value ...`). */
export type EspGatewayEvent =
  | 'ready' | 'peer' | 'keepalive' | 'non-esp' | 'malformed' | 'received' | 'decrypted' | 'replayed' | 'bad-icv'
  | 'bad-spi' | 'bad-padding' | 'bad-next-header' | 'dummy' | 'bad-inner' | 'bad-source' | 'sent' | 'no-peer'
  | 'tun-error' | 'send-error' | 'stats';

/** The script. Run it with /usr/bin/python3 (Debian's, which has scapy), not a python3 from PATH. */
export const ESP_GATEWAY_SCRIPT = fileURLToPath(new URL('./esp-gateway.py', import.meta.url));
/** The scapy client used to test the gateway itself. */
export const ESP_CLIENT_CHECK_SCRIPT = fileURLToPath(new URL('./esp-client-check.py', import.meta.url));
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** The environment for Debian's python3: without the variables of another Python (pyenv, venv) on PATH. */
export function systemPythonEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'VIRTUAL_ENV', 'PYENV_VERSION']) delete env[k];
  env.PYTHONDONTWRITEBYTECODE = '1';
  return env;
}

function toKey(v: Buffer | string | undefined, bytes: number, what: string, suite: EspSuite): Buffer {
  if (v === undefined) return randomBytes(bytes);
  const b = typeof v === 'string' ? Buffer.from(v.replace(/^0x/i, ''), 'hex') : v;
  if (b.length !== bytes) throw new LabError(`startEspGateway: ${what} must be ${bytes} bytes for ${suite}, got ${b.length}`);
  return b;
}

function randomSpi(): number {
  return randomInt(0x1000, 0xffffffff);
}

const hex = (b: Buffer): string => b.toString('hex');
const spiHex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

/** Spawns a process for the gateway; the lab passes its own spawn so that lab.stop() stops it. */
export type EspSpawn = (name: string, cmd: string, args: readonly string[], env: NodeJS.ProcessEnv) => Daemon;

/** A running scapy ESP gateway. Create with `lab.startEspGateway()`. */
export class EspGateway {
  readonly suite: EspSuite;
  /** Where our client sends its ESP-in-UDP (lab.addr.esp, port 4500). */
  readonly address: { host: string; port: number };
  /** Our client's inner address. */
  readonly clientVip: string;
  /** The gateway's own inner address (its TUN). */
  readonly gatewayVip: string;
  /** What lies behind the gateway (routes for the client): the web host's IPsec-side network. */
  readonly remoteTs: string;
  /** DNS server behind the gateway (dnsmasq on the web host). */
  readonly dns: string;
  /** The gateway's SAs: `in` = what it receives, `out` = what it sends. */
  readonly gateway: { in: EspSaKeys; out: EspSaKeys };
  /** The same SAs as our client must configure them: `in` = what the client receives = the gateway's out. */
  readonly client: { in: EspSaKeys; out: EspSaKeys };
  readonly replayWindow: number;
  readonly tunName: string;
  private daemon?: Daemon;

  constructor(
    readonly index: number,
    readonly addr: LabAddresses,
    readonly options: EspGatewayOptions = {},
  ) {
    const suite = options.suite ?? 'aes128gcm16';
    const info = ESP_SUITES[suite];
    if (!info) throw new LabError(`startEspGateway: unknown suite ${String(suite)} (one of ${ESP_SUITE_NAMES.join(', ')})`);
    this.suite = suite;
    this.address = { host: addr.esp, port: options.port ?? 4500 };
    this.clientVip = options.clientVip ?? addr.espClientVip;
    this.gatewayVip = addr.espTun;
    this.remoteTs = addr.webIpsecNet;
    this.dns = addr.webIpsec;
    this.replayWindow = options.replayWindow ?? 128;
    this.tunName = `esp${index}`;
    const spiIn = options.spiIn ?? randomSpi();
    let spiOut = options.spiOut ?? randomSpi();
    while (spiOut === spiIn && options.spiOut === undefined) spiOut = randomSpi();
    for (const s of [spiIn, spiOut]) {
      if (!Number.isInteger(s) || s < 256 || s > 0xffffffff) throw new LabError(`startEspGateway: SPI ${s} out of range 256..2^32-1`);
    }
    const gin: EspSaKeys = {
      spi: spiIn,
      encKey: toKey(options.encKeyIn, info.encKeyBytes, 'encKeyIn', suite),
      integKey: toKey(options.integKeyIn, info.integKeyBytes, 'integKeyIn', suite),
    };
    const gout: EspSaKeys = {
      spi: spiOut,
      encKey: toKey(options.encKeyOut, info.encKeyBytes, 'encKeyOut', suite),
      integKey: toKey(options.integKeyOut, info.integKeyBytes, 'integKeyOut', suite),
    };
    this.gateway = { in: gin, out: gout };
    this.client = { in: gout, out: gin };
  }

  /** The script's command-line arguments. */
  args(): string[] {
    const g = this.gateway;
    const a = [
      ESP_GATEWAY_SCRIPT,
      '--listen', `${this.address.host}:${this.address.port}`,
      '--tun-name', this.tunName,
      '--tun-addr', `${this.gatewayVip}/${this.addr.espPool.split('/')[1]}`,
      '--tun-mtu', String(this.options.tunMtu ?? 1400),
      '--suite', this.suite,
      '--spi-in', spiHex(g.in.spi),
      '--spi-out', spiHex(g.out.spi),
      '--enc-key-in', hex(g.in.encKey),
      '--enc-key-out', hex(g.out.encKey),
      '--client-vip', this.clientVip,
      '--replay-window', String(this.replayWindow),
      ...(this.options.esn ? ['--esn'] : []),
    ];
    if (g.in.integKey.length) a.push('--integ-key-in', hex(g.in.integKey), '--integ-key-out', hex(g.out.integKey));
    if (this.options.dataLog === false) a.push('--no-data-log');
    return a;
  }

  /** Starts the script through `spawn` and waits for its "ready". */
  async start(spawn: EspSpawn): Promise<this> {
    const d = spawn(`esp-gateway-${this.index}`, SYSTEM_PYTHON, this.args(), systemPythonEnv());
    this.daemon = d;
    await waitFor(
      'ESP gateway ready',
      () => {
        if (/^ready$/m.test(d.output())) return true;
        if (!d.running) throw new LabError(`ESP gateway ${d.status} during start-up:\n${tail(d.output(), 30)}`);
        return false;
      },
      this.options.timeoutMs ?? 15_000,
    ).catch(async (e: unknown) => {
      await d.stop(1000);
      throw e;
    });
    return this;
  }

  get running(): boolean {
    return this.daemon?.running ?? false;
  }

  /** SIGTERM (the script prints its counters and exits), then SIGKILL after `graceMs`. */
  async stop(graceMs = 2000): Promise<void> {
    await this.daemon?.stop(graceMs);
  }

  /** Everything the script printed (stdout and stderr). */
  log(): string {
    return this.daemon?.output() ?? '';
  }

  /** A position in the log, for `count(..., { since })` and `waitForLog`. */
  logMark(): number {
    return this.log().length;
  }

  /** The log lines of `event` (after `since`, a logMark()). */
  lines(event: EspGatewayEvent, since = 0): string[] {
    const prefix = `esp-gw ${event}`;
    return this.log()
      .slice(since)
      .split('\n')
      .filter((l) => l === prefix || l.startsWith(`${prefix} `));
  }

  /** How many `event` lines there are (after `since`). */
  count(event: EspGatewayEvent, since = 0): number {
    return this.lines(event, since).length;
  }

  /** Waits until at least `n` (default 1) `event` lines appeared after `since`; returns them. */
  async waitForLog(event: EspGatewayEvent, opts: { since?: number; n?: number; timeoutMs?: number } = {}): Promise<string[]> {
    const n = opts.n ?? 1;
    return waitFor(
      `ESP gateway log "${event}" x${n}`,
      () => {
        const l = this.lines(event, opts.since ?? 0);
        if (l.length >= n) return l;
        if (!this.running) throw new LabError(`ESP gateway ${this.daemon?.status ?? 'not started'}:\n${tail(this.log(), 20)}`);
        return false;
      },
      opts.timeoutMs ?? 5000,
    );
  }

  /** The counters, asked for with SIGUSR1 (the script prints a `stats` line). */
  async counters(): Promise<EspGatewayCounters> {
    const d = this.daemon;
    if (!d?.running) throw new LabError('ESP gateway not running');
    const before = this.logMark();
    d.signal('SIGUSR1');
    const [line] = await this.waitForLog('stats', { since: before, timeoutMs: 5000 });
    return JSON.parse(line!.slice(line!.indexOf('json=') + 5)) as EspGatewayCounters;
  }

  /**
   * The manual SA file for our client, in swanctl.conf syntax (issue 12's `manual` section): the gateway's
   * address, our VIP, what lies behind it, DNS, and both SAs from the client's side.
   */
  manualConfig(name = 'lab'): string {
    const sa = (dir: 'out' | 'in', k: EspSaKeys): string => {
      const l = [`    ${dir} {`, `      spi = ${spiHex(k.spi)}`, `      esp = ${this.suite}`, `      enc_key = 0x${hex(k.encKey)}`];
      if (k.integKey.length) l.push(`      integ_key = 0x${hex(k.integKey)}`);
      if (dir === 'in') l.push(`      replay_window = ${this.replayWindow}`);
      if (this.options.esn) l.push('      esn = yes');
      l.push('    }');
      return l.join('\n');
    };
    return [
      'manual {',
      `  ${name} {`,
      `    remote_addrs = ${this.address.host}`,
      ...(this.address.port !== 4500 ? [`    remote_port = ${this.address.port}`] : []),
      `    vip = ${this.clientVip}`,
      `    remote_ts = ${this.remoteTs}`,
      `    dns = ${this.dns}`,
      sa('out', this.client.out),
      sa('in', this.client.in),
      '  }',
      '}',
      '',
    ].join('\n');
  }

  /**
   * Both SAs for tshark-esp.ts. `clientAddr` is our client's outer address ('*' = any): client→gateway
   * packets go to the gateway's address, gateway→client ones come from it.
   */
  saSpecs(clientAddr = '*'): EspSaSpec[] {
    return [
      { ...this.gateway.in, suite: this.suite, src: clientAddr, dst: this.address.host },
      { ...this.gateway.out, suite: this.suite, src: this.address.host, dst: clientAddr },
    ];
  }

  /** Arguments of esp-client-check.py for this gateway (the scapy client that tests the gateway). */
  clientCheckArgs(): string[] {
    const c = this.client;
    const a = [
      ESP_CLIENT_CHECK_SCRIPT,
      '--gateway', `${this.address.host}:${this.address.port}`,
      '--suite', this.suite,
      '--spi-out', spiHex(c.out.spi),
      '--spi-in', spiHex(c.in.spi),
      '--enc-key-out', hex(c.out.encKey),
      '--enc-key-in', hex(c.in.encKey),
      '--vip', this.clientVip,
    ];
    if (c.out.integKey.length) a.push('--integ-key-out', hex(c.out.integKey), '--integ-key-in', hex(c.in.integKey));
    return a;
  }
}
