/**
 * The lab: network namespaces with a real OpenVPN server, a real strongSwan responder, a web host behind them
 * and the stock OpenVPN client as a baseline. See topology.ts for the network and index.ts for an overview.
 *
 *   const lab = await startLab({ openvpn: { proto: 'udp', tlsCrypt: true } });
 *   try {
 *     const profile = await lab.clientProfile();         // .ovpn for our client (remote = lab.addr.srv)
 *     // ... connect our client, fetch lab.web.url('/bytes/1000000') through it ...
 *   } finally {
 *     await lab.stop();                                   // removes every namespace and process
 *   }
 */
import { mkdir, cp } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { Daemon, LabError, run, tail, waitFor, type RunOptions, type RunResult } from './exec.js';
import { allocateSlot, createRun, namePrefix, runDir, sweepStale, teardownRunSync, writeOwner, type OwnerInfo } from './state.js';
import { buildTopology, labAddresses, nsNames, type HostName, type LabAddresses } from './topology.js';
import { createPki, type LabPki } from './pki.js';
import { OpenVpnServer, type ClientProfileOptions, type OpenVpnServerOptions } from './openvpn.js';
import { NativeClient, type NativeClientOptions } from './native.js';
import { StrongSwanResponder, type StrongSwanOptions } from './strongswan.js';
import { StrongSwanClient, type StrongSwanClientOptions } from './strongswan-client.js';
import { ImpairRelay, type RelayCounters, type RelayOptions } from './impair.js';
import { assertLabPrereqs, labPrereqs, type LabFeature } from './prereqs.js';
import { BIG_NAME, LAB_DOMAIN, WEB_NAME, bigAddresses, dnsmasqArgs } from './dns.js';
import { makeWebCert } from './webcert.js';
import { EspGateway, type EspGatewayOptions } from './esp-gateway.js';
import { Capture, dumpcapArgs, type CaptureOptions } from './tshark-esp.js';

export interface LabOptions {
  /** Start an OpenVPN server with these options (true = defaults). More servers: `lab.startOpenVpn()`. */
  openvpn?: OpenVpnServerOptions | boolean;
  /** Start the stock openvpn client in the nat namespace against the first server (needs `openvpn`). */
  native?: NativeClientOptions | boolean;
  /** Start charon as IKEv2 responder (true = defaults). */
  strongswan?: StrongSwanOptions | boolean;
  /** Start the scapy ESP-in-UDP gateway with manual SAs in the esp namespace (true = defaults; see esp-gateway.ts). */
  esp?: EspGatewayOptions | boolean;
  /** Start the web host (HTTP :80, HTTPS :443, echo :7, DNS :53 (dnsmasq)) (default true). */
  web?: boolean;
  /** Start an iperf3 server on the web host, port 5201 (default true). */
  iperf?: boolean;
  /** Keep the lab when this process exits (for `lab up --detach`); only `lab down` / `sweep --all` remove it. */
  persistent?: boolean;
}

/** Where the web host's services are. */
export interface WebHost {
  /** Address behind the OpenVPN server (10.B.2.2). */
  host: string;
  /** Address behind strongSwan (10.B.5.2). */
  ipsecHost: string;
  httpPort: number;
  /** HTTPS, same endpoints; certificate signed by `ca`, SAN = host, ipsecHost, `name`. */
  httpsPort: number;
  /** The CA certificate (PEM file) that signed the HTTPS certificate (for curl --cacert). */
  ca: string;
  /** TCP and UDP echo. */
  echoPort: number;
  iperfPort: number;
  /** The web host's DNS name (dnsmasq on the web host answers it; see dns.ts). */
  name: string;
  /** DNS server (dnsmasq, UDP+TCP 53) on the web host's address; pushed by the lab's OpenVPN servers. */
  dns: string;
  /** The lab's DNS domain (pushed as dhcp-option DOMAIN). */
  domain: string;
  /** A name with so many A records that the UDP answer is truncated (TC) and complete only over TCP. */
  bigName: string;
  /** The addresses `bigName` resolves to. */
  bigAddresses: string[];
  /** `http://<host>:<httpPort><path>` (the OpenVPN side). */
  url(path: string): string;
  /** `https://<host><path>` (the OpenVPN side). */
  httpsUrl(path: string): string;
  /** `http://web.lab.test<path>` (resolvable only through the tunnel's DNS). */
  nameUrl(path: string): string;
  /** Same, on the IPsec-side address. */
  ipsecUrl(path: string): string;
}

/** A relay started by the lab in a namespace as a separate process (test/lab/impair.ts as a script). */
export interface RelayProcess {
  /** Listening address and port. */
  host: string;
  port: number;
  /** Asks the process for its counters (SIGUSR1) and returns them. */
  stats(): Promise<RelayCounters>;
  stop(): Promise<void>;
}

const active = new Set<Lab>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const cleanupAll = (): void => {
    for (const lab of active) {
      if (!lab.persistent) teardownRunSync(lab.runId, lab.slot, 500);
    }
    active.clear();
  };
  process.on('exit', cleanupAll);
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.on(sig, () => {
      cleanupAll();
      process.exit(code);
    });
  }
}

const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));
const TSX = import.meta.resolve('tsx');

/** A running lab. Create with `startLab()`. */
export class Lab {
  /** 6 hex digits; every namespace is `vp<runId>-<host>`. */
  readonly runId: string;
  readonly slot: number;
  /** State directory of this run (PKI, configs, logs). Deleted by stop(). */
  readonly dir: string;
  /** Namespace names. */
  readonly ns: Record<HostName, string>;
  /** Every address (see topology.ts). */
  readonly addr: LabAddresses;
  /** Kept after this process exits (see LabOptions.persistent). */
  get persistent(): boolean {
    return this.owner.persistent;
  }
  readonly web: WebHost;
  /** The first OpenVPN server (undefined until one is started). */
  openvpn?: OpenVpnServer;
  /** All OpenVPN servers, by index. */
  readonly servers: OpenVpnServer[] = [];
  /** The stock client, once started. */
  native?: NativeClient;
  strongswan?: StrongSwanResponder;
  private swClients: StrongSwanClient[] = [];
  /** The last ESP gateway started (see startEspGateway). */
  espGateway?: EspGateway;
  private espGateways: EspGateway[] = [];
  private captures = 0;
  private pkiP?: Promise<LabPki>;
  private daemons: Daemon[] = [];
  private relays: ImpairRelay[] = [];
  private relayProcs: RelayProcess[] = [];
  private stopped = false;

  /** @internal use startLab() */
  constructor(private readonly owner: OwnerInfo) {
    this.runId = owner.runId;
    this.slot = owner.slot!;
    this.dir = runDir(this.runId);
    this.ns = nsNames(this.runId);
    this.addr = labAddresses(this.slot);
    const a = this.addr;
    this.web = {
      host: a.web,
      ipsecHost: a.webIpsec,
      httpPort: 80,
      httpsPort: 443,
      ca: join(this.dir, 'pki', 'ca-ec.crt'),
      echoPort: 7,
      iperfPort: 5201,
      name: WEB_NAME,
      dns: a.web,
      domain: LAB_DOMAIN,
      bigName: BIG_NAME,
      bigAddresses: bigAddresses(a),
      url: (p) => `http://${a.web}${p.startsWith('/') ? p : `/${p}`}`,
      httpsUrl: (p) => `https://${a.web}${p.startsWith('/') ? p : `/${p}`}`,
      nameUrl: (p) => `http://${WEB_NAME}${p.startsWith('/') ? p : `/${p}`}`,
      ipsecUrl: (p) => `http://${a.webIpsec}${p.startsWith('/') ? p : `/${p}`}`,
    };
  }

  /** The PKI of this run (made on first use, about 0.5 s). */
  pki(): Promise<LabPki> {
    this.pkiP ??= createPki(join(this.dir, 'pki'));
    return this.pkiP;
  }

  /** Runs a command in one of the lab's namespaces (default timeout 60 s; throws on failure unless allowFail). */
  exec(host: HostName, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return run('ip', ['netns', 'exec', this.ns[host], cmd, ...args], { timeoutMs: 60_000, ...opts });
  }

  /** Starts a long-running process in a namespace; it is stopped by lab.stop(). Output goes to `<dir>/<name>.log`. */
  spawn(host: HostName | undefined, name: string, cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Daemon {
    const d = new Daemon({ ns: host ? this.ns[host] : undefined, cmd, args, outFile: join(this.dir, `${name}.log`), env });
    this.daemons.push(d);
    return d;
  }

  /**
   * Starts the web host (HTTP, HTTPS, echo) and its DNS server (dnsmasq, see dns.ts) in the web namespace.
   * Called by startLab unless `web: false`.
   */
  async startWeb(): Promise<void> {
    const a = this.addr;
    const [cert, dnsArgs] = await Promise.all([
      this.pki().then((pki) => makeWebCert(pki, join(this.dir, 'web-tls'), { ips: [a.web, a.webIpsec], names: [WEB_NAME, 'web.lab'] })),
      dnsmasqArgs(this.dir, a),
    ]);
    const dns = this.spawn('web', 'dnsmasq', 'dnsmasq', dnsArgs);
    const d = this.spawn('web', 'webhost', process.execPath, ['--import', TSX, here('./webhost.ts'), '--http-port', String(this.web.httpPort),
      '--echo-port', String(this.web.echoPort), '--https-port', String(this.web.httpsPort), '--tls-cert', cert.cert, '--tls-key', cert.key]);
    await Promise.all([
      waitFor('web host ready', () => {
        if (d.output().includes('webhost ready')) return true;
        if (!d.running) throw new LabError(`web host ${d.status}:\n${tail(d.output())}`);
        return false;
      }, 20_000),
      waitFor('dnsmasq ready', () => {
        if (/started, version/.test(dns.output())) return true;
        if (!dns.running) throw new LabError(`dnsmasq ${dns.status}:\n${tail(dns.output())}`);
        return false;
      }, 10_000),
    ]);
  }

  /** Starts `iperf3 -s` on the web host. Called by startLab unless `iperf: false`. */
  async startIperf(): Promise<void> {
    const d = this.spawn('web', 'iperf3', 'iperf3', ['-s', '-p', String(this.web.iperfPort), '--forceflush']);
    await waitFor('iperf3 server listening', () => {
      if (d.output().includes('Server listening')) return true;
      if (!d.running) throw new LabError(`iperf3 ${d.status}:\n${tail(d.output())}`);
      return false;
    }, 10_000);
  }

  /**
   * Starts another OpenVPN server in the srv namespace (server n gets tun<n>, 10.8.n.0/24 and port 1194+n unless
   * `port` is given). The first one becomes `lab.openvpn`.
   */
  async startOpenVpn(options: OpenVpnServerOptions = {}): Promise<OpenVpnServer> {
    const index = this.servers.length;
    const s = new OpenVpnServer({ ns: this.ns.srv, dir: join(this.dir, `openvpn-${index}`), index, addr: this.addr, pki: await this.pki() }, options);
    this.servers.push(s);
    this.openvpn ??= s;
    await s.start();
    return s;
  }

  /** Writes a client profile for the first OpenVPN server (see ClientProfileOptions) and returns its path. */
  async clientProfile(opts: ClientProfileOptions = {}): Promise<string> {
    if (!this.openvpn) throw new LabError('no OpenVPN server in this lab (startLab({ openvpn: {...} }))');
    return this.openvpn.clientProfile(opts);
  }

  /** Starts the stock openvpn client in the nat namespace against `server` (default: the first). */
  async startNative(opts: NativeClientOptions = {}, server = this.openvpn): Promise<NativeClient> {
    if (!server) throw new LabError('no OpenVPN server to connect the native client to');
    const c = new NativeClient(this.ns.nat, server, this.dir);
    this.native ??= c;
    await c.start(opts);
    return c;
  }

  /** Starts charon as IKEv2 responder in the ike namespace. */
  async startStrongSwan(opts: StrongSwanOptions = {}): Promise<StrongSwanResponder> {
    if (this.strongswan?.running) throw new LabError('strongSwan already running in this lab');
    const s = new StrongSwanResponder(this.ns.ike, join(this.dir, 'ike'), this.addr, opts);
    this.strongswan = s;
    await s.start();
    return s;
  }

  /**
   * Starts strongSwan's own client (a second charon, kernel-libipsec) in the nat namespace and initiates to the
   * running responder; resolves once its CHILD_SA is up. One at a time (each owns the namespace's `ipsec0`).
   * Stopped with the lab.
   */
  async startStrongSwanClient(name: string, opts: StrongSwanClientOptions = {}): Promise<StrongSwanClient> {
    if (!this.strongswan?.running) throw new LabError('start the strongSwan responder first');
    if (this.swClients.some((c) => c.running)) throw new LabError('a strongSwan client is already running in nat');
    const c = new StrongSwanClient(this.ns.nat, join(this.dir, name), this.strongswan, opts);
    this.swClients.push(c);
    await c.start();
    return c;
  }

  /**
   * The esp namespace's end of the root–esp link (vp<runId>-er): every ESP-in-UDP datagram between our client
   * and the ESP gateway passes it. Capture there: `lab.captureOn('esp', lab.espLink, { filter: 'udp port 4500' })`.
   */
  get espLink(): string {
    return `${namePrefix(this.runId)}-er`;
  }

  /**
   * The ike namespace's end of the root–ike link (vp<runId>-ir): every IKE and ESP-in-UDP datagram between our
   * client and strongSwan passes it. `lab.captureOn('ike', lab.ikeLink, { filter: 'udp port 500 or udp port 4500' })`.
   */
  get ikeLink(): string {
    return `${namePrefix(this.runId)}-ir`;
  }

  /**
   * Starts the scapy ESP-in-UDP gateway (manual SAs, see esp-gateway.ts) in the esp namespace, listening on
   * lab.addr.esp:4500 with its TUN at lab.addr.espTun and routes to the web host's IPsec side. One at a time
   * (they share the TUN address): stop the previous one first. Stopped by lab.stop().
   */
  async startEspGateway(opts: EspGatewayOptions = {}): Promise<EspGateway> {
    assertLabPrereqs(['esp']);
    if (this.espGateways.some((g) => g.running)) throw new LabError('an ESP gateway is already running in this lab: stop it first');
    const g = new EspGateway(this.espGateways.length, this.addr, opts);
    this.espGateways.push(g);
    this.espGateway = g;
    await g.start((name, cmd, args, env) => this.spawn('esp', name, cmd, args, env));
    return g;
  }

  /**
   * Starts a packet capture (dumpcap) on `iface` in a namespace (`root` = the test process's), e.g.
   * `lab.captureOn('esp', lab.espLink, { filter: 'udp port 4500' })` for everything between our client and
   * the ESP gateway. Resolves once capturing; `await cap.stop()` before reading `cap.file` (default: a file in
   * the lab directory, removed by lab.stop() unless the logs are kept). Prefer a lab namespace to `root`: the
   * exit handler of a killed test kills what runs in the lab's namespaces.
   */
  async captureOn(host: HostName | 'root', iface: string, opts: Omit<CaptureOptions, 'iface' | 'ns'> = {}): Promise<Capture> {
    const n = this.captures++;
    const file = opts.file ?? join(this.dir, `capture-${n}.pcap`);
    const d = this.spawn(host === 'root' ? undefined : host, `capture-${n}`, 'dumpcap', dumpcapArgs({ ...opts, iface, file }));
    return new Capture(d, file).ready(opts.timeoutMs);
  }

  /**
   * Starts an in-process impairment relay (closed by lab.stop()). Defaults: listen on 127.0.0.1, any port;
   * target = the first OpenVPN server. Point a profile at it with `remote: relay.address`.
   */
  async startRelay(opts: Partial<RelayOptions> = {}): Promise<ImpairRelay> {
    const target = this.openvpn?.remote;
    const targetHost = opts.targetHost ?? target?.host;
    const targetPort = opts.targetPort ?? target?.port;
    if (!targetHost || !targetPort) throw new LabError('startRelay: no target (give targetHost/targetPort or start an OpenVPN server)');
    const r = await ImpairRelay.start({ ...opts, targetHost, targetPort });
    this.relays.push(r);
    return r;
  }

  /**
   * Runs the relay as a separate process inside a namespace (e.g. 'nat', to impair the native client's path;
   * then point its profile's remote at `${lab.addr.nat}:port`). `args` are the script's CLI flags besides
   * --listen (e.g. ['--target', '10.101.3.1:1194', '--drop', '0.1', '--seed', '3']).
   */
  async startRelayIn(host: HostName, listenPort: number, args: readonly string[]): Promise<RelayProcess> {
    const name = `relay-${host}-${listenPort}`;
    const d = this.spawn(host, name, process.execPath, ['--import', TSX, here('./impair.ts'), '--listen', `0.0.0.0:${listenPort}`, ...args]);
    await waitFor('relay ready', () => {
      if (d.output().includes('impair ready')) return true;
      if (!d.running) throw new LabError(`relay ${d.status}:\n${tail(d.output())}`);
      return false;
    }, 20_000);
    const rp: RelayProcess = {
      host: host === 'nat' ? this.addr.nat : host === 'srv' ? this.addr.srv : host === 'ike' ? this.addr.ike : host === 'esp' ? this.addr.esp : this.addr.web,
      port: listenPort,
      stats: async () => {
        const before = d.output().length;
        d.signal('SIGUSR1');
        const line = await waitFor('relay stats', () => {
          const out = d.output();
          return out.length > before ? out.slice(before).split('\n').find((l) => l.startsWith('impair stats ')) : undefined;
        }, 5000);
        return JSON.parse(line.slice('impair stats '.length)) as RelayCounters;
      },
      stop: () => d.stop(),
    };
    this.relayProcs.push(rp);
    return rp;
  }

  /** Tails of every log of the lab (servers, native client, charon, web), for failure reports. */
  logs(lines = 40): string {
    const parts: string[] = [];
    const add = (name: string, text: string): void => {
      if (text.trim()) parts.push(`--- ${name} (last ${lines} lines) ---\n${tail(text.trimEnd(), lines)}`);
    };
    for (const s of this.servers) add(`openvpn server ${s.ctx.index} (${s.logFile})`, s.log());
    if (this.native) add(`native client (${this.native.logFile})`, this.native.log());
    if (this.strongswan) add(`charon (${this.strongswan.logFile})`, this.strongswan.log());
    for (const d of this.daemons) add(`${d.spec.cmd} ${d.spec.args.slice(-4).join(' ')} [${d.status}]`, d.output());
    return parts.join('\n');
  }

  /** A human summary: namespaces, addresses, ports, profiles. */
  describe(): string {
    const a = this.addr;
    const l: string[] = [
      `lab ${this.runId} (slot ${this.slot}, state ${this.dir})`,
      `  namespaces: ${Object.values(this.ns).join(' ')}`,
      `  root ns    ${a.rootToSrv} -> srv ${a.srv}      ${a.rootToIke} -> ike ${a.ike}`,
      `  web host   ${a.web} (behind OpenVPN, ${a.webNet})   ${a.webIpsec} (behind IPsec, ${a.webIpsecNet})`,
      `             http :${this.web.httpPort}  https :${this.web.httpsPort}  echo tcp/udp :${this.web.echoPort}  iperf3 :${this.web.iperfPort}`,
      `             dns :53 (dnsmasq): ${WEB_NAME} -> ${a.web}, ${BIG_NAME} (${this.web.bigAddresses.length} A records), domain ${LAB_DOMAIN}`,
      `  nat host   ${a.nat} -> srv ${a.srvNatSide}`,
      `  esp host   ${a.rootToEsp} -> esp ${a.esp} (scapy ESP gateway udp 4500, tun ${a.espTun}, pool ${a.espPool})`,
    ];
    for (const s of this.servers) {
      l.push(`  openvpn ${s.ctx.index}  ${s.proto} ${s.remote.host}:${s.port} (from nat: ${a.srvNatSide}:${s.port}) dev ${s.dev} ${s.subnet} ` +
        `${s.running ? 'running' : 'stopped'}\n             config ${s.configFile}\n             log ${s.logFile}\n             mgmt ${s.managementSocket}`);
      try {
        for (const f of readdirSync(s.ctx.dir).filter((x) => x.endsWith('.ovpn'))) l.push(`             profile ${join(s.ctx.dir, f)}`);
      } catch {
        /* no dir */
      }
    }
    if (this.native) l.push(`  native     ${this.native.running ? 'connected' : 'stopped'} tun ${this.native.tunIp} profile ${this.native.profilePath} log ${this.native.logFile}`);
    for (const g of this.espGateways) {
      l.push(`  esp gw ${g.index}   ${g.running ? 'running' : 'stopped'} ${g.suite} ${g.address.host}:${g.address.port} vip ${g.clientVip} ` +
        `spi in/out (client) 0x${g.client.in.spi.toString(16)}/0x${g.client.out.spi.toString(16)}`);
    }
    if (this.strongswan) {
      const s = this.strongswan;
      l.push(`  strongswan ${s.running ? 'running' : 'stopped'} ${s.address} udp 500/4500 conn ${s.connName} psk "${s.psk}" ids ${s.localId} <- ${s.remoteId}`,
        `             pool ${a.ipsecPool} local_ts ${a.webIpsecNet} uri ${s.uri}\n             log ${s.logFile}`);
    }
    return l.join('\n');
  }

  /**
   * Stops everything (relays, clients, servers, charon, web) and removes the namespaces, veths, routes and the
   * state directory. Idempotent. With `keepLogsIn`, copies the run directory there first.
   */
  async stop(opts: { keepLogsIn?: string } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await Promise.all(this.relays.map((r) => r.close().catch(() => undefined)));
      await Promise.all(this.relayProcs.map((r) => r.stop().catch(() => undefined)));
      await this.native?.stop(2000).catch(() => undefined);
      await Promise.all([
        ...this.servers.map((s) => s.stop(2000).catch(() => undefined)),
        this.strongswan?.stop(2000).catch(() => undefined),
        ...this.swClients.map((c) => c.stop(2000).catch(() => undefined)),
        ...this.espGateways.map((g) => g.stop(2000).catch(() => undefined)),
        ...this.daemons.map((d) => d.stop(2000).catch(() => undefined)),
      ]);
      const keep = opts.keepLogsIn ?? process.env.VPNPROXY_LAB_KEEP_LOGS;
      if (keep && existsSync(this.dir)) {
        await mkdir(keep, { recursive: true });
        await cp(this.dir, join(keep, this.runId), { recursive: true, filter: (src) => !src.endsWith('.sock') && !src.endsWith('.vici') }).catch(() => undefined);
      }
    } finally {
      const problems = teardownRunSync(this.runId, this.slot, 1000);
      active.delete(this);
      if (problems.length) throw new LabError(`lab ${this.runId} teardown: ${problems.join('; ')}`);
    }
  }

  /** Marks the lab persistent (kept after this process exits) and records its description for `lab status`. */
  persist(): void {
    this.owner.persistent = true;
    this.owner.info = { describe: this.describe() };
    writeOwner(this.owner);
  }
}

/**
 * Starts a lab: checks prerequisites (LabPrereqError with a one-line reason), sweeps leftovers of dead runs,
 * takes an address slot, builds the namespaces, then starts what `options` asks for (web host and iperf3 by
 * default). Anything that fails is torn down before the error is thrown.
 */
export async function startLab(options: LabOptions = {}): Promise<Lab> {
  const features: LabFeature[] = ['curl'];
  if (options.web !== false) features.push('dns');
  if (options.openvpn || options.native) features.push('openvpn');
  if (options.strongswan) features.push('strongswan');
  if (options.esp) features.push('esp');
  if (options.iperf !== false) features.push('iperf3');
  assertLabPrereqs(features);
  sweepStale();
  installExitHandlers();
  // Persistent only once fully up: a start interrupted by a signal is torn down by the exit handlers.
  const owner = createRun(false);
  let lab: Lab | undefined;
  try {
    allocateSlot(owner);
    lab = new Lab(owner);
    active.add(lab);
    await mkdir(lab.dir, { recursive: true });
    await buildTopology(owner.runId, owner.slot!);
    const l = lab;
    const wantVpn = !!options.openvpn || !!options.native;
    await Promise.all([
      options.web !== false ? l.startWeb() : undefined,
      options.iperf !== false ? l.startIperf() : undefined,
      options.strongswan ? l.startStrongSwan(options.strongswan === true ? {} : options.strongswan) : undefined,
      options.esp ? l.startEspGateway(options.esp === true ? {} : options.esp) : undefined,
      wantVpn
        ? (async () => {
            await l.startOpenVpn(typeof options.openvpn === 'object' ? options.openvpn : {});
            if (options.native) await l.startNative(options.native === true ? {} : options.native);
          })()
        : undefined,
    ]);
    if (options.persistent) lab.persist();
    return lab;
  } catch (e) {
    if (lab) {
      const logs = lab.logs(20);
      active.delete(lab);
      await lab.stop().catch(() => undefined);
      if (logs && !(e instanceof Error && e.message.includes('--- '))) appendToError(e, logs);
    } else teardownRunSync(owner.runId, owner.slot, 500);
    throw e;
  }
}

/**
 * Adds text (e.g. `lab.logs()`) to an error's message and stack, so that test reporters (which print the
 * stack) show it.
 */
export function appendToError(e: unknown, text: string): void {
  if (!(e instanceof Error) || !text) return;
  e.message += `\n${text}`;
  if (e.stack) e.stack += `\n${text}`;
}

/**
 * Wraps a node:test test body with a lab: skips (outside CI) or fails (CI=true) without prerequisites, starts
 * the lab, runs `fn`, appends the lab's log tails to the error if it fails, and always stops the lab.
 *
 *   test('fetch through the tunnel', withLab({ openvpn: { proto: 'tcp' } }, async (lab, t) => { ... }));
 */
export function withLab(options: LabOptions, fn: (lab: Lab, t: TestContext) => Promise<void>): (t: TestContext) => Promise<void> {
  return async (t) => {
    const pre = labPrereqs();
    if (pre.skip) {
      t.skip(pre.skip);
      return;
    }
    const lab = await startLab(options);
    try {
      await fn(lab, t);
    } catch (e) {
      appendToError(e, lab.logs());
      throw e;
    } finally {
      await lab.stop();
    }
  };
}
