/**
 * Smoke test of the lab itself: a real OpenVPN server + the stock client fetch a body through the tunnel,
 * charon loads its connection, the impairment relay's counts match its seed, and nothing is left behind.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  startLab,
  labPrereqs,
  detBytes,
  detSha256,
  ImpairRelay,
  startWebHost,
  listRuns,
  sweepStale,
  pidAlive,
  SERVER_LOG,
  type Lab,
  type RelayCounters,
} from '../lab/index.js';
import { HOSTS, runDir, nsPids } from '../lab/index.js';

const pre = labPrereqs();

/** Asserts that nothing of the run is left: namespaces, root links, state dir, processes. */
function assertGone(runId: string, pids: number[]): void {
  const r = listRuns().find((x) => x.runId === runId);
  assert.equal(r, undefined, `leftovers of ${runId}: ${JSON.stringify(r)}`);
  assert.equal(existsSync(runDir(runId)), false, 'state dir removed');
  const alive = pids.filter(pidAlive);
  assert.deepEqual(alive, [], `processes still alive: ${alive.join(' ')}`);
}

function labPids(lab: Lab): number[] {
  return Object.values(lab.ns).flatMap(nsPids);
}

/** ±k standard deviations of a binomial(n, p) count. */
function binomialRange(n: number, p: number, k = 5): [number, number] {
  const mean = n * p;
  const sd = Math.sqrt(n * p * (1 - p));
  return [Math.floor(mean - k * sd), Math.ceil(mean + k * sd)];
}

describe('lab with real peers', { skip: pre.skip, timeout: 120_000 }, () => {
  after(() => {
    // Whatever happened above, this process leaves no lab behind.
    for (const r of listRuns()) if (r.owner?.pid === process.pid) assert.fail(`lab ${r.runId} of this process still exists`);
  });

  test('native OpenVPN tunnel carries /bytes/1000000 to the web host; charon loads rw-psk; teardown is complete', async () => {
    const t0 = Date.now();
    const lab = await startLab({ openvpn: { proto: 'udp' }, native: { profile: { explicitExitNotify: 1 } }, strongswan: true });
    const startMs = Date.now() - t0;
    let pids: number[] = [];
    try {
      console.log(`# lab start-up took ${startMs} ms`);
      // The web host is not reachable from the root namespace (only through a tunnel).
      const rootErr = await new Promise<string>((resolve) => {
        const s = connect({ host: lab.web.host, port: lab.web.httpPort, timeout: 2000 });
        s.on('connect', () => {
          s.destroy();
          resolve('connected');
        });
        s.on('timeout', () => {
          s.destroy();
          resolve('timeout');
        });
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      assert.match(rootErr, /EHOSTUNREACH|ENETUNREACH/, 'root namespace must not reach the web host');

      // Through the stock client's tunnel: curl in the nat namespace.
      const n = 1_000_000;
      const out = `${lab.dir}/body.bin`;
      const r = await lab.native!.curl(lab.web.url(`/bytes/${n}`), { outFile: out });
      assert.equal(r.status, 200);
      assert.equal(r.sizeDownload, n);
      const expected = detSha256(n);
      assert.equal(r.headers['x-sha256'], expected, 'server header = local expectation');
      const body = await lab.native!.exec('sha256sum', [out]);
      assert.equal(body.stdout.split(' ')[0], expected, 'received body hashes to the expected value');
      assert.equal(createHash('sha256').update(detBytes(n)).digest('hex'), expected);
      // The web host saw the tunnel address, so the request really went through the tunnel.
      const ip = await lab.native!.exec('curl', ['-sS', '--max-time', '5', lab.web.url('/ip')]);
      assert.equal((JSON.parse(ip.stdout) as { remoteAddress: string }).remoteAddress, lab.native!.tunIp);

      // charon is up and has our connection.
      const conns = await lab.strongswan!.listConns();
      assert.match(conns, /^rw-psk: IKEv2/m);
      assert.ok(conns.includes(lab.addr.webIpsecNet), 'local_ts is the web subnet behind charon');

      // The server logs the client's exit notification.
      const mark = lab.openvpn!.logMark();
      await lab.native!.stop();
      await lab.openvpn!.waitForLog(SERVER_LOG.clientExitNotified, { since: mark, timeoutMs: 5000 });
      // Without the tunnel, the nat host cannot reach the web host.
      const direct = await lab.native!.exec('curl', ['-sS', '--max-time', '2', lab.web.url('/healthz')], { allowFail: true });
      assert.notEqual(direct.code, 0);
      pids = labPids(lab);
      assert.ok(pids.length >= 4, `expected server, charon, web host and iperf3 in the namespaces, got ${pids.join(' ')}`);
    } finally {
      await lab.stop();
    }
    assertGone(lab.runId, pids);
  });

  test('two labs at once get different slots and both work', async () => {
    const [a, b] = await Promise.all([startLab({ iperf: false }), startLab({ iperf: false })]);
    try {
      assert.notEqual(a.slot, b.slot);
      assert.notEqual(a.addr.web, b.addr.web);
      for (const lab of [a, b]) {
        const r = await lab.exec('srv', 'curl', ['-sS', '--max-time', '5', lab.web.url('/healthz')]);
        assert.equal(r.stdout, 'ok\n');
      }
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    assertGone(a.runId, []);
    assertGone(b.runId, []);
  });

  test('a lab whose owner is killed: SIGTERM cleans up itself, SIGKILL is swept by sweepStale()', async () => {
    const cli = fileURLToPath(new URL('../lab/cli.ts', import.meta.url));
    for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
      const child = spawn(process.execPath, ['--import', 'tsx', cli, 'up', '--no-strongswan', '--no-iperf', '--json'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      const deadline = Date.now() + 20_000;
      while (!out.includes('\n') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
      assert.ok(out.includes('\n'), `lab up printed nothing: ${err}`);
      const info = JSON.parse(out.trim()) as { runId: string };
      const before = listRuns().find((r) => r.runId === info.runId);
      if (!(before && before.namespaces.length === HOSTS.length && before.pids.length >= 2)) {
        child.kill('SIGTERM'); // never leave the lab behind (or the runner waiting on it) when the check fails
        await exited;
        assert.fail(`lab is up with one namespace per host (${HOSTS.join(', ')}): ${JSON.stringify(before)}`);
      }
      child.kill(sig);
      await exited;
      if (sig === 'SIGKILL') {
        // (Another lab starting in parallel may sweep it first; then there is nothing left to check here.)
        const left = listRuns().some((r) => r.runId === info.runId);
        const swept = sweepStale();
        if (left) assert.ok(swept.includes(info.runId) || !listRuns().some((r) => r.runId === info.runId), 'sweepStale removes it');
      }
      assertGone(info.runId, before.pids);
    }
  });
});

describe('lab pieces that need no root', { timeout: 60_000 }, () => {
  test('impairment relay: 20% drop + 5% duplication on seed 42 stay within binomial bounds, reproducibly', async () => {
    const N = 2000;
    const run = async (seed: number): Promise<{ c: RelayCounters; sunk: number; order: number[] }> => {
      const sink = createSocket('udp4');
      const order: number[] = [];
      sink.on('message', (m) => order.push(m.readUInt32BE(0)));
      await new Promise<void>((r) => sink.bind(0, '127.0.0.1', r));
      const relay = await ImpairRelay.start({ targetHost: '127.0.0.1', targetPort: sink.address().port, seed, up: { drop: 0.2, duplicate: 0.05 } });
      const client = createSocket('udp4');
      await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
      try {
        for (let i = 0; i < N; i++) {
          const m = Buffer.alloc(64);
          m.writeUInt32BE(i, 0);
          client.send(m, relay.port, '127.0.0.1');
          // Pace so that loopback socket buffers never overflow (the count must be the relay's alone).
          if (i % 50 === 49) {
            const want = relay.counters.up.forwarded;
            const end = Date.now() + 2000;
            while ((order.length < want || relay.counters.up.received < i + 1) && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
          }
        }
        const end = Date.now() + 3000;
        while ((relay.counters.up.received < N || order.length < relay.counters.up.forwarded) && Date.now() < end) {
          await new Promise((r) => setTimeout(r, 5));
        }
        return { c: relay.stats(), sunk: order.length, order };
      } finally {
        await relay.close();
        client.close();
        sink.close();
      }
    };
    const a = await run(42);
    const up = a.c.up;
    assert.equal(up.received, N);
    const [dLo, dHi] = binomialRange(N, 0.2);
    assert.ok(up.dropped >= dLo && up.dropped <= dHi, `dropped ${up.dropped} not in [${dLo}, ${dHi}]`);
    const [uLo, uHi] = binomialRange(N - up.dropped, 0.05);
    assert.ok(up.duplicated >= uLo && up.duplicated <= uHi, `duplicated ${up.duplicated} not in [${uLo}, ${uHi}]`);
    assert.equal(up.forwarded, N - up.dropped + up.duplicated);
    assert.equal(a.sunk, up.forwarded, 'the sink got exactly what the relay forwarded');
    assert.equal(new Set(a.order).size, N - up.dropped);
    const b = await run(42);
    assert.deepEqual(b.c.up, a.c.up, 'same seed, same decisions');
    assert.deepEqual(b.order, a.order);
    const c = await run(43);
    assert.notDeepEqual(c.order, a.order, 'another seed drops other packets');
  });

  test('impairment relay: reordering holds packets back by k, corruption flips bytes, rate limit paces', async () => {
    const sink = createSocket('udp4');
    const got: Buffer[] = [];
    sink.on('message', (m) => got.push(m));
    await new Promise<void>((r) => sink.bind(0, '127.0.0.1', r));
    const relay = await ImpairRelay.start({
      targetHost: '127.0.0.1',
      targetPort: sink.address().port,
      seed: 7,
      up: { reorder: 0.1, reorderDepth: 3, corrupt: 0.05 },
    });
    const client = createSocket('udp4');
    const N = 500;
    try {
      for (let i = 0; i < N; i++) {
        const m = Buffer.alloc(32, 0xaa);
        m.writeUInt32BE(i, 0);
        client.send(m, relay.port, '127.0.0.1');
        if (i % 25 === 24) await new Promise((r) => setTimeout(r, 3));
      }
      const end = Date.now() + 3000;
      while (got.length < N && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
      const s = relay.stats().up;
      assert.equal(got.length, N);
      const [rLo, rHi] = binomialRange(N, 0.1, 6);
      assert.ok(s.reordered > 0 && s.reordered <= rHi && s.reordered >= Math.max(1, rLo), `reordered ${s.reordered}`);
      const corrupted = got.filter((m) => m.subarray(4).some((x) => x !== 0xaa) || m.readUInt32BE(0) >= N).length;
      assert.ok(corrupted <= s.corrupted && corrupted >= s.corrupted * 0.8 - 2, `corrupted seen ${corrupted} vs counted ${s.corrupted}`);
      const seq = got.map((m) => m.readUInt32BE(0)).filter((x) => x < N);
      const inversions = seq.filter((x, i) => i > 0 && x < seq[i - 1]!).length;
      assert.ok(inversions > 0, 'some packets arrive out of order');
    } finally {
      await relay.close();
      client.close();
    }
    // Rate limit: 64 kbit/s = 8000 B/s.
    got.length = 0;
    const slow = await ImpairRelay.start({ targetHost: '127.0.0.1', targetPort: sink.address().port, bitsPerSecond: 64_000, burstBytes: 4000 });
    const c2 = createSocket('udp4');
    try {
      const t0 = Date.now();
      for (let i = 0; i < 12; i++) c2.send(Buffer.alloc(1000), slow.port, '127.0.0.1');
      const end = Date.now() + 5000;
      while (got.length < 12 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      const ms = Date.now() - t0;
      assert.equal(got.length, 12);
      // 12000 bytes, 4000 of them from the bucket: at 8000 B/s the rest cannot arrive in under 1 s. (Only the
      // lower bound is asserted: it is what the limiter guarantees; an upper bound would time the machine.)
      assert.ok(ms >= 800, `rate-limited transfer took only ${ms} ms`);
    } finally {
      await slow.close();
      c2.close();
      sink.close();
    }
  });

  test('web host endpoints (in-process on loopback)', async () => {
    const web = await startWebHost(0, 0, '127.0.0.1');
    const base = `http://127.0.0.1:${web.http}`;
    try {
      const r = await fetch(`${base}/bytes/300000?seed=x`);
      const body = Buffer.from(await r.arrayBuffer());
      assert.equal(body.length, 300000);
      assert.equal(r.headers.get('x-sha256'), detSha256(300000, 'x'));
      assert.ok(body.equals(detBytes(300000, 'x')));
      assert.ok(detBytes(1000, 'x').equals(body.subarray(0, 1000)), 'prefix property');
      const up = await fetch(`${base}/upload`, { method: 'POST', body: detBytes(12345) });
      assert.deepEqual(await up.json(), { bytes: 12345, sha256: detSha256(12345) });
      const t0 = Date.now();
      const tr = await fetch(`${base}/trickle?bytes=5&interval=40`);
      assert.ok(Buffer.from(await tr.arrayBuffer()).equals(detBytes(5)));
      assert.ok(Date.now() - t0 >= 150, 'trickle is slow');
      const reset = await fetch(`${base}/reset?after=1000&delay=50`);
      await assert.rejects(reset.arrayBuffer(), 'a reset connection fails the body');
      assert.equal(await (await fetch(`${base}/healthz`)).text(), 'ok\n');
      const u = createSocket('udp4');
      try {
        let timer: NodeJS.Timeout | undefined;
        const echoed = new Promise<Buffer>((resolve, reject) => {
          u.once('message', resolve);
          timer = setTimeout(() => reject(new Error('no UDP echo in 2 s')), 2000);
        });
        u.send(Buffer.from('ping'), web.echo, '127.0.0.1');
        assert.equal((await echoed.finally(() => clearTimeout(timer))).toString(), 'ping', 'UDP echo');
      } finally {
        u.close();
      }
    } finally {
      web.close();
    }
  });
});
