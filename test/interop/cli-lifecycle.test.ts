/**
 * The CLI's life cycle against the lab's real OpenVPN server:
 *  - /healthz is 503 while the server is down (and the proxy answers 503 after --ready-timeout) and 200 again
 *    after the reconnect; /metrics is valid Prometheus text with tunnel bytes, packets, drops, reconnects and
 *    proxy connections; /status is JSON;
 *  - SIGTERM: exit 0 within two seconds, and the server logs our exit notification;
 *  - exit codes: wrong password → 1 with AUTH_FAILED; the right one from VPNPROXY_USERNAME/PASSWORD works;
 *    a bad flag or a missing profile → 2; --help and --version → 0.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { appendToError, labPrereqs, SERVER_LOG, startLab, type Lab, type OpenVpnServer } from '../lab/index.js';
import { CliProcess, curl, startCli } from './cli-helpers.js';

const pre = labPrereqs(['openvpn', 'curl', 'dns']);

/** Validates Prometheus text exposition (0.0.4) strictly enough to catch format mistakes; returns samples. */
export function parsePrometheus(text: string): Map<string, { type: string; samples: { labels: Record<string, string>; value: number }[] }> {
  const fams = new Map<string, { type: string; samples: { labels: Record<string, string>; value: number }[] }>();
  const helped = new Set<string>();
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const sampleRe = new RegExp(`^(${name})(\\{(.*)\\})? (-?[0-9.]+(?:e[+-]?\\d+)?|NaN|[+-]Inf)$`);
  for (const line of text.split('\n').slice(0, -1)) {
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^# HELP (${name}) (.+)$`).exec(line))) {
      assert.ok(!helped.has(m[1]!), `one HELP for ${m[1]}`);
      helped.add(m[1]!);
    } else if ((m = new RegExp(`^# TYPE (${name}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      assert.ok(!fams.has(m[1]!), `one TYPE for ${m[1]}`);
      fams.set(m[1]!, { type: m[2]!, samples: [] });
    } else if ((m = sampleRe.exec(line))) {
      const fam = fams.get(m[1]!);
      assert.ok(fam, `sample ${m[1]} comes after its TYPE line`);
      const labels: Record<string, string> = {};
      if (m[3]) {
        const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"(,|$)/y;
        let lm: RegExpExecArray | null;
        let pos = 0;
        while ((lm = labelRe.exec(m[3])) !== null) {
          labels[lm[1]!] = lm[2]!;
          pos = labelRe.lastIndex;
          if (pos >= m[3].length) break;
        }
        assert.equal(pos, m[3].length, `label set parses: ${line}`);
      }
      const value = Number(m[4]);
      if (fam.type === 'counter') assert.ok(value >= 0, `counter ${m[1]} >= 0`);
      fam.samples.push({ labels, value });
    } else assert.fail(`not Prometheus text: ${JSON.stringify(line)}`);
  }
  return fams;
}

async function poll<T>(what: string, f: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('CLI life cycle: health, metrics, reconnect, signals, exit codes', { skip: pre.skip, timeout: 300_000 }, () => {
  let lab: Lab;
  let server: OpenVpnServer;

  before(async () => {
    // explicit-exit-notify: a stopped server tells its clients (RESTART), so the tunnel goes down at once.
    lab = await startLab({ openvpn: { proto: 'udp', explicitExitNotify: 1 }, iperf: false });
    server = lab.openvpn!;
  });
  after(async () => {
    await lab?.stop();
  });

  test('/healthz down while the server is down, up after the reconnect; /metrics and /status', async () => {
    const cli = startCli(await lab.clientProfile(), ['--ready-timeout', '1']);
    try {
      const r = await cli.ready();
      const status = `http://127.0.0.1:${r.status!.port}`;
      const proxy = `http://127.0.0.1:${r.http!.port}`;
      const health = async () => {
        const h = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', `${status}/healthz`]);
        return h.stdout.toString();
      };
      assert.equal(await health(), '200');
      const got = await curl(['-x', proxy, lab.web.url('/bytes/300000')]);
      assert.equal(got.stdout.length, 300000);

      let fams = parsePrometheus((await curl([`${status}/metrics`])).stdout.toString());
      const value = (f: string, labels: Record<string, string> = {}) =>
        fams.get(f)?.samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
      assert.equal(fams.get('vpnproxy_tunnel_bytes_total')?.type, 'counter');
      assert.ok(value('vpnproxy_tunnel_bytes_total', { direction: 'in' })! > 300000);
      assert.ok(value('vpnproxy_tunnel_bytes_total', { direction: 'out' })! > 0);
      assert.ok(value('vpnproxy_tunnel_packets_total', { direction: 'in' })! > 200);
      assert.ok(value('vpnproxy_tunnel_packets_total', { direction: 'out' })! > 0);
      assert.equal(value('vpnproxy_tunnel_drops_total'), 0);
      assert.equal(value('vpnproxy_tunnel_reconnects_total'), 0);
      assert.equal(value('vpnproxy_tunnel_up'), 1);
      assert.ok(value('vpnproxy_proxy_connections_total', { proxy: 'http', route: 'vpn' })! >= 1);
      assert.ok(value('vpnproxy_proxy_bytes_total', { proxy: 'http', direction: 'down' })! >= 300000);
      assert.equal(fams.get('vpnproxy_proxy_connections_active')?.type, 'gauge');

      // The server goes away.
      await server.stop();
      await poll('/healthz 503', async () => ((await health()) === '503' ? true : undefined), 15_000);
      const down = await curl(['-i', '-x', proxy, lab.web.url('/healthz')]);
      assert.match(down.stdout.toString(), /^HTTP\/1\.1 503 /, 'the proxy answers 503 while the tunnel is down');
      fams = parsePrometheus((await curl([`${status}/metrics`])).stdout.toString());
      assert.equal(value('vpnproxy_tunnel_up'), 0);

      // And comes back.
      await server.start();
      await poll('/healthz 200', async () => ((await health()) === '200' ? true : undefined), 45_000);
      fams = parsePrometheus((await curl([`${status}/metrics`])).stdout.toString());
      assert.ok(value('vpnproxy_tunnel_reconnects_total')! >= 1, 'the reconnect is counted');
      const doc = JSON.parse((await curl([`${status}/status`])).stdout.toString()) as { tunnel: { state: string; reconnects: number; address: string } };
      assert.equal(doc.tunnel.state, 'up');
      assert.ok(doc.tunnel.reconnects >= 1);
      assert.match(doc.tunnel.address, /^10\.8\.0\.\d+$/);
      const again = await curl(['-x', proxy, lab.web.url('/healthz')]);
      assert.equal(again.stdout.toString(), 'ok\n', 'the proxy works again after the reconnect');
    } catch (e) {
      appendToError(e, `--- CLI stderr ---\n${cli.stderr.slice(-3000)}\n${lab.logs(20)}`);
      throw e;
    } finally {
      await cli.stop();
    }
  });

  test('SIGTERM: exit 0 within two seconds and the server logs our exit notification', async () => {
    if (!server.running) await server.start();
    const cli = startCli(await lab.clientProfile());
    await cli.ready();
    const mark = server.logMark();
    const t0 = Date.now();
    cli.child.kill('SIGTERM');
    const r = await cli.waitExit(5000);
    const ms = Date.now() - t0;
    assert.equal(r.code, 0, cli.stderr.slice(-2000));
    assert.ok(ms < 2000, `exited after ${ms} ms`);
    await server.waitForLog(SERVER_LOG.clientExitNotified, { since: mark, timeoutMs: 5000 });
  });

  test('authentication: a wrong password exits 1 with AUTH_FAILED; the right one (from the environment) connects', async () => {
    const s = await lab.startOpenVpn({ proto: 'udp', userPass: { username: 'alice', password: 'right-pass' } });
    try {
      const wrongFile = join(lab.dir, 'wrong-creds.txt');
      await writeFile(wrongFile, 'alice\nwrong-pass\n', { mode: 0o600 });
      const profile = await s.clientProfile({ authUserPass: false, extra: ['auth-user-pass'], name: 'bare-aup.ovpn' });
      const bad = startCli(profile, ['--auth-user-pass', wrongFile]);
      const r = await bad.waitExit(60_000);
      assert.equal(r.code, 1, bad.stderr.slice(-2000));
      assert.match(bad.stderr, /AUTH_FAILED/);
      assert.doesNotMatch(bad.stderr, /vpnproxy: ready/);

      const good = startCli(profile, [], { VPNPROXY_USERNAME: 'alice', VPNPROXY_PASSWORD: 'right-pass' });
      try {
        await good.ready();
      } finally {
        const e = await good.stop();
        assert.equal(e.code, 0);
      }
      // No credentials at all: a usage error before anything is sent.
      const none = startCli(profile, [], { VPNPROXY_USERNAME: undefined, VPNPROXY_PASSWORD: undefined });
      const n = await none.waitExit(20_000);
      assert.equal(n.code, 2, none.stderr);
      assert.match(none.stderr, /VPNPROXY_USERNAME/);
    } finally {
      await s.stop();
    }
  });
});

describe('CLI usage errors and information (no lab needed)', () => {
  test('a bad flag exits 2 with a one-line reason', async () => {
    const c = new CliProcess(['openvpn', 'x.ovpn', '--bogus-flag']);
    const r = await c.waitExit(20_000);
    assert.equal(r.code, 2);
    assert.match(c.stderr, /^vpnproxy: .*bogus-flag.*\(try --help\)\n$/);
  });

  test('a missing profile, a bad listen address and conflicting flags exit 2', async () => {
    for (const args of [
      ['openvpn', '/nonexistent/profile.ovpn'],
      ['openvpn', 'x.ovpn', '--http-proxy', 'example.com:80'],
      ['openvpn', 'x.ovpn', '--route-all', '--direct-unrouted'],
      ['frobnicate'],
    ]) {
      const c = new CliProcess(args);
      const r = await c.waitExit(20_000);
      assert.equal(r.code, 2, `${args.join(' ')}: ${c.stderr}`);
    }
  });

  test('--help and --version exit 0', async () => {
    const h = new CliProcess(['--help']);
    assert.equal((await h.waitExit(20_000)).code, 0);
    assert.match(h.stdout, /vpnproxy openvpn PROFILE\.ovpn \[options\]/);
    assert.match(h.stdout, /--remote-forward RPORT:HOST:PORT/);
    const v = new CliProcess(['--version']);
    assert.equal((await v.waitExit(20_000)).code, 0);
    assert.match(v.stdout, /^\d+\.\d+\.\d+/);
  });
});
