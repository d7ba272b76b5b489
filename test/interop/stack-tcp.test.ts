/**
 * Our userspace TCP against the Linux kernel's TCP on the lab's web host, through the real OpenVPN 2.6 server
 * (issue 5, "Must show"): 100 MB each way byte-exact; the same through the impairment relay (3% loss each way
 * with reordering); 200 connections at once, 1 MB each, byte-exact; a closed port refused at once; the
 * slow (/trickle) and resetting (/reset) endpoints seen as a kernel socket would see them. Throughputs are
 * printed as test diagnostics.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadProfile } from '../../src/openvpn/profile.js';
import { VpnTunnel } from '../../src/tunnel.js';
import { appendToError, detSha256, labPrereqs, startLab, type ImpairRelay, type Lab } from '../lab/index.js';
import { getHashed, mbps, openVpnTunnel, startLabTunnel, stopLabTunnel, uploadHashed } from './stack-helpers.js';

const pre = labPrereqs();

describe('stack: our TCP to the kernel TCP through a real OpenVPN server', { skip: pre.skip, timeout: 600_000 }, () => {
  let lab: Lab;
  let tunnel: VpnTunnel;
  before(async () => {
    ({ lab, tunnel } = await startLabTunnel());
  });
  after(() => stopLabTunnel(lab, tunnel));
  const dial = (port = lab.web.httpPort) => tunnel.connect({ host: lab.web.host, port, timeoutMs: 10_000 });

  test('100 MB download byte-exact', async (t) => {
    const n = 100_000_000;
    const r = await getHashed(await dial(), lab.web.host, `/bytes/${n}`);
    assert.equal(r.error, undefined);
    assert.equal(r.status, 200);
    assert.equal(r.bytes, n);
    assert.equal(r.sha256, detSha256(n));
    t.diagnostic(`download ${mbps(n, r.totalMs)} MB/s (${r.totalMs} ms)`);
  });

  test('100 MB upload byte-exact', async (t) => {
    const n = 100_000_000;
    const r = await uploadHashed(await dial(), lab.web.host, n, 'up100');
    assert.equal(r.bytes, n);
    assert.equal(r.sha256, detSha256(n, 'up100'));
    t.diagnostic(`upload ${mbps(n, r.ms)} MB/s (${r.ms} ms)`);
  });

  test('200 connections at once, 1 MB each (100 down, 100 up), all byte-exact', async (t) => {
    const n = 1_000_000;
    const t0 = Date.now();
    const socks = await Promise.all(Array.from({ length: 200 }, () => dial()));
    assert.equal(new Set(socks.map((s) => s.localPort)).size, 200, 'distinct source ports');
    const results = await Promise.all(
      socks.map(async (s, i) => {
        if (i % 2 === 0) {
          const r = await getHashed(s, lab.web.host, `/bytes/${n}?seed=c${i}`);
          return { i, ok: r.error === undefined && r.status === 200 && r.bytes === n && r.sha256 === detSha256(n, `c${i}`), what: `${r.status} ${r.bytes} ${r.error?.message ?? ''}` };
        }
        const r = await uploadHashed(s, lab.web.host, n, `c${i}`);
        return { i, ok: r.bytes === n && r.sha256 === detSha256(n, `c${i}`), what: `${r.bytes}` };
      }),
    );
    const bad = results.filter((r) => !r.ok);
    assert.deepEqual(bad, [], `${bad.length} of 200 failed`);
    const ms = Date.now() - t0;
    t.diagnostic(`200 x 1 MB in ${ms} ms (${mbps(200 * n, ms)} MB/s aggregate)`);
    // Everything closed again (TIME_WAIT aside): no connection left established.
    await waitUntil('connections closed', () => tunnel.tcp.stats.connections === tunnel.tcp.stats.timeWait, 10_000);
  });

  test('connect to a closed port fails at once with "connection refused"', async () => {
    const t0 = Date.now();
    await assert.rejects(dial(9), (e: Error & { code?: string }) => e.code === 'CONN_REFUSED' && /refused/i.test(e.message));
    assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
  });

  test('/trickle: the body arrives a few bytes at a time over ~1 s and ends cleanly, byte-exact', async () => {
    const n = 40;
    const r = await getHashed(await dial(), lab.web.host, `/trickle?bytes=${n}&interval=50&chunk=2`);
    assert.equal(r.error, undefined);
    assert.equal(r.status, 200);
    assert.equal(r.bytes, n);
    assert.equal(r.sha256, detSha256(n));
    // 20 chunks 50 ms apart: delivered as they come (no batching until the end), the last one >= ~950 ms in.
    assert.ok(r.arrivals.length >= 10, `${r.arrivals.length} data events`);
    assert.ok(r.totalMs >= 900, `ended after ${r.totalMs} ms`);
    assert.ok(r.arrivals[r.arrivals.length - 1]! - r.arrivals[0]! >= 800);
  });

  test('/reset: the first N bytes arrive intact, then the socket errors with a reset', async () => {
    const n = 300_000;
    const s = await dial();
    const closed = new Promise<boolean>((r) => s.on('close', (hadError: boolean) => r(hadError)));
    const r = await getHashed(s, lab.web.host, `/reset?after=${n}`);
    assert.ok(r.error, 'the socket errored');
    assert.equal(r.error.code, 'TRANSPORT_CLOSED');
    assert.match(r.error.message, /reset/i);
    assert.equal(r.bytes, n, 'every byte sent before the RST was delivered');
    assert.equal(r.sha256, detSha256(n));
    assert.equal(await closed, true, "'close' with hadError, as net.Socket after ECONNRESET");
    assert.equal(s.destroyed, true);
  });
});

describe('stack: through the impairment relay (3% loss each way, reordering, duplication)', { skip: pre.skip, timeout: 600_000 }, () => {
  let lab: Lab;
  let relay: ImpairRelay;
  let tunnel: VpnTunnel;
  before(async () => {
    lab = await startLab({ openvpn: { proto: 'udp' }, iperf: false });
    relay = await lab.startRelay({ seed: 7, drop: 0.03, reorder: 0.05, reorderDepth: 3, duplicate: 0.01 });
    const { profile } = await loadProfile(await lab.clientProfile({ remote: relay.address }));
    tunnel = openVpnTunnel(profile);
    await tunnel.start();
  });
  after(async () => {
    await tunnel?.close();
    await lab?.stop();
  });

  // 100 MB each way as on the clean path, if it stays fast enough; see the diagnostics for the rates.
  const n = 100_000_000;

  test('download byte-exact', async (t) => {
    try {
      const s = await tunnel.connect({ host: lab.web.host, port: lab.web.httpPort, timeoutMs: 10_000 });
      const r = await getHashed(s, lab.web.host, `/bytes/${n}?seed=lossy`);
      assert.equal(r.error, undefined);
      assert.equal(r.bytes, n);
      assert.equal(r.sha256, detSha256(n, 'lossy'));
      const st = relay.stats();
      t.diagnostic(`lossy download ${mbps(n, r.totalMs)} MB/s (${r.totalMs} ms); relay dropped ${st.down.dropped} down / ${st.up.dropped} up, reordered ${st.down.reordered}`);
      t.diagnostic(`tcp: ${JSON.stringify(tunnel.tcp.stats)}`);
      assert.ok(st.down.dropped > 100, 'the relay really dropped packets');
    } catch (e) {
      appendToError(e, lab.logs(10));
      throw e;
    }
  });

  test('upload byte-exact', async (t) => {
    const s = await tunnel.connect({ host: lab.web.host, port: lab.web.httpPort, timeoutMs: 10_000 });
    const r = await uploadHashed(s, lab.web.host, n, 'lossy-up');
    assert.equal(r.bytes, n);
    assert.equal(r.sha256, detSha256(n, 'lossy-up'));
    const st = relay.stats();
    t.diagnostic(`lossy upload ${mbps(n, r.ms)} MB/s (${r.ms} ms); relay dropped ${st.up.dropped} up`);
    t.diagnostic(`tcp: ${JSON.stringify(tunnel.tcp.stats)}`);
    assert.ok(st.up.dropped > 100);
  });
});

async function waitUntil(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
