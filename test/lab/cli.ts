/**
 * The lab by hand: `npm run lab -- <command>` (root needed).
 *
 *   up [--proto udp|tcp] [--native] [--no-strongswan] [--no-iperf] [--tls-crypt|--tls-auth|--tls-crypt-v2]
 *      [--cipher-none] [--user NAME:PASS] [--detach] [--json]
 *        Starts a lab with an OpenVPN server (and charon unless --no-strongswan), writes a client profile for
 *        our client and prints what runs where. Without --detach it stays in the foreground until Ctrl-C and
 *        then removes everything; with --detach it leaves the lab running (remove it with `down`).
 *        --json prints one JSON object (the last line of stdout) instead of the text summary.
 *   down [RUNID...]   Removes the given labs, or every detached lab and every lab of a dead process.
 *   sweep [--all]     Removes leftovers of killed runs (--all: detached labs too).
 *   status            Lists labs, their owners, namespaces and processes.
 *   sha N [SEED]      Prints the hex sha256 of the web host's /bytes/N body.
 */
import { startLab, type LabOptions } from './lab.js';
import { listRuns, sweepStale, teardownRunSync } from './state.js';
import { detSha256 } from './detbytes.js';
import type { OpenVpnServerOptions } from './openvpn.js';

function usage(msg?: string): never {
  if (msg) process.stderr.write(`lab: ${msg}\n`);
  process.stderr.write('usage: npm run lab -- up|down|sweep|status|sha  (see test/lab/cli.ts)\n');
  process.exit(2);
}

async function up(args: string[]): Promise<void> {
  const has = (f: string): boolean => args.includes(f);
  const val = (f: string): string | undefined => {
    const i = args.indexOf(f);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const proto = val('--proto') ?? 'udp';
  if (proto !== 'udp' && proto !== 'tcp') usage('--proto udp|tcp');
  const ovpn: OpenVpnServerOptions = { proto };
  if (has('--tls-crypt')) ovpn.tlsCrypt = true;
  if (has('--tls-auth')) ovpn.tlsAuth = true;
  if (has('--tls-crypt-v2')) ovpn.tlsCryptV2 = true;
  if (has('--cipher-none')) ovpn.cipherNone = true;
  const user = val('--user');
  if (user) {
    const i = user.indexOf(':');
    ovpn.userPass = { username: user.slice(0, i), password: user.slice(i + 1) };
  }
  const opts: LabOptions = {
    openvpn: ovpn,
    native: has('--native'),
    strongswan: !has('--no-strongswan'),
    iperf: !has('--no-iperf'),
    persistent: has('--detach'),
  };
  const lab = await startLab(opts);
  const profile = await lab.clientProfile({ name: 'client.ovpn' });
  if (opts.persistent) lab.persist();
  if (has('--json')) {
    process.stdout.write(
      `${JSON.stringify({
        runId: lab.runId,
        namespaces: lab.ns,
        addresses: lab.addr,
        web: {
          url: lab.web.url('/'),
          httpsUrl: lab.web.httpsUrl('/'),
          nameUrl: lab.web.nameUrl('/'),
          ca: lab.web.ca,
          dns: lab.web.dns,
          ipsecUrl: lab.web.ipsecUrl('/'),
          echoPort: lab.web.echoPort,
          iperfPort: lab.web.iperfPort,
        },
        openvpn: { proto: lab.openvpn!.proto, host: lab.openvpn!.remote.host, port: lab.openvpn!.port, log: lab.openvpn!.logFile },
        profile,
        native: lab.native ? { ns: lab.ns.nat, profile: lab.native.profilePath, tunIp: lab.native.tunIp, log: lab.native.logFile } : null,
        strongswan: lab.strongswan ? { host: lab.strongswan.address, uri: lab.strongswan.uri, psk: lab.strongswan.psk, conn: lab.strongswan.connName } : null,
      })}\n`,
    );
  } else {
    process.stdout.write(`${lab.describe()}\n  client profile for vpnproxy: ${profile}\n`);
  }
  if (opts.persistent) {
    if (!has('--json')) process.stdout.write(`detached; remove with: npm run lab -- down ${lab.runId}\n`);
    process.exit(0);
  }
  if (!has('--json')) process.stdout.write('running; Ctrl-C removes the lab\n');
  // Stay alive; the lab's SIGINT/SIGTERM handlers tear everything down and exit.
  setInterval(() => undefined, 1 << 30);
}

async function main(): Promise<void> {
  const [cmd, ...args] = process.argv.slice(2);
  switch (cmd) {
    case 'up':
      return up(args);
    case 'down': {
      const runs = listRuns();
      const targets = args.length ? runs.filter((r) => args.includes(r.runId)) : runs.filter((r) => !r.alive || r.owner?.persistent);
      for (const a of args) if (!runs.some((r) => r.runId === a)) process.stderr.write(`lab: no run ${a}\n`);
      for (const r of targets) {
        const problems = teardownRunSync(r.runId, r.owner?.slot);
        process.stdout.write(`removed ${r.runId}${problems.length ? ` (${problems.join('; ')})` : ''}\n`);
      }
      if (!targets.length) process.stdout.write('nothing to remove\n');
      return;
    }
    case 'sweep': {
      const swept = sweepStale({ all: args.includes('--all') });
      process.stdout.write(swept.length ? `swept ${swept.join(' ')}\n` : 'nothing stale\n');
      return;
    }
    case 'status': {
      const runs = listRuns();
      if (!runs.length) process.stdout.write('no labs\n');
      for (const r of runs) {
        const o = r.owner;
        process.stdout.write(
          `${r.runId}: ${o ? `owner pid ${o.pid} ${r.alive ? 'alive' : 'dead'}${o.persistent ? ', detached' : ''}, slot ${o.slot}, since ${o.created}` : 'no state dir'}\n` +
            `  namespaces: ${r.namespaces.join(' ') || '-'}\n  processes: ${r.pids.join(' ') || '-'}\n`,
        );
        const d = o?.info?.describe;
        if (typeof d === 'string') process.stdout.write(`${d.replace(/^/gm, '  ')}\n`);
      }
      return;
    }
    case 'sha': {
      const n = Number(args[0]);
      if (!Number.isSafeInteger(n) || n < 0) usage('sha N [SEED]');
      process.stdout.write(`${detSha256(n, args[1])}\n`);
      return;
    }
    default:
      usage(cmd ? `unknown command ${cmd}` : undefined);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`lab: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
