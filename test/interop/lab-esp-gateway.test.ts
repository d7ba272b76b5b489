/**
 * The lab's scapy ESP-in-UDP gateway (test/lab/esp-gateway.py), checked with a scapy client of our own
 * (test/lab/esp-client-check.py) before our TypeScript ESP client relies on it: for each of the six suites an
 * ICMP echo from the client VIP to the web host's IPsec-side address comes back decrypted; a replayed, a
 * tampered and a wrong-SPI datagram are dropped and counted; a capture of it all, decrypted by tshark
 * (tshark-esp.ts), shows the inner ICMP and an intact inner TCP stream for a GCM and a CBC suite.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, createHash } from 'node:crypto';
import { withLab, detSha256, run } from '../lab/index.js';
import {
  ESP_SUITE_NAMES,
  SYSTEM_PYTHON,
  systemPythonEnv,
  espInnerPackets,
  tsharkFollowTcp,
  tsharkCanDecrypt,
  type EspSaSpec,
  type EspSuite,
} from '../lab/index.js';

/** Suites whose check also fetches an HTTP body over TCP inside the tunnel (one AEAD, one CBC). */
const HTTP_SUITES = new Set<EspSuite>(['aes128gcm16', 'aes256-sha256']);
const HTTP_BYTES = 30_000;

interface CheckResult {
  ok: boolean;
  local: string;
  replies: number;
  rtts: (number | null)[];
  answeredBad: Record<string, number>;
  http?: { status?: string; length?: number; sha256?: string; xSha256?: string; error?: string };
  /** The first echo request as sent (UDP payload), hex. */
  firstDatagram: string;
  stats: Record<string, number>;
}

test(
  'scapy ESP gateway: echo for six suites, replay/tamper/wrong SPI counted, tshark decrypts GCM and CBC',
  { timeout: 150_000 },
  withLab({ iperf: false }, async (lab, t) => {
    const t0 = Date.now();
    const cap = await lab.captureOn('esp', lab.espLink, { filter: 'udp port 4500' });
    const sas: EspSaSpec[] = [];
    const seenSpis = new Map<EspSuite, { toGw: number; fromGw: number }>();

    for (const suite of ESP_SUITE_NAMES) {
      await t.test(suite, async () => {
        const gw = await lab.startEspGateway({ suite });
        try {
          const mark = gw.logMark();
          const args = [...gw.clientCheckArgs(), '--bind', lab.addr.rootToEsp, '--target', lab.web.ipsecHost,
            '--pings', '2', '--keepalive', '--replay', '--tamper', '--wrong-spi', '--quiet-wait', '0.3'];
          if (HTTP_SUITES.has(suite)) args.push('--http-get', `/bytes/${HTTP_BYTES}`);
          const r = await run(SYSTEM_PYTHON, args, { env: systemPythonEnv(), allowFail: true, timeoutMs: 40_000 });
          let res: CheckResult;
          try {
            res = JSON.parse(r.stdout) as CheckResult;
          } catch {
            assert.fail(`esp-client-check.py exited ${r.code}: ${r.stdout}${r.stderr}\n${gw.log().slice(-3000)}`);
          }
          const why = `${JSON.stringify(res)}\n${gw.log().slice(mark).slice(-3000)}`;
          assert.equal(res.replies, 2, `echo replies: ${why}`);
          assert.deepEqual(res.answeredBad, { replay: 0, tamper: 0, wrongSpi: 0 }, `bad packets answered: ${why}`);
          assert.equal(res.stats.badIcv, 0, `client saw bad ICVs: ${why}`);
          if (HTTP_SUITES.has(suite)) {
            assert.equal(res.http?.length, HTTP_BYTES, `HTTP over ESP: ${why}`);
            assert.equal(res.http?.sha256, detSha256(HTTP_BYTES), `HTTP body sha256: ${why}`);
          }
          assert.ok(res.ok, why);

          const c = await gw.counters();
          assert.equal(c.replayed, 1, `replayed: ${why}`);
          assert.equal(c.badIcv, 1, `bad ICV: ${why}`);
          assert.equal(c.badSpi, 1, `bad SPI: ${why}`);
          assert.equal(c.keepalives, 1, `keepalives: ${why}`);
          assert.equal(c.badPadding + c.badInner + c.badSource + c.malformed, 0, `other drops: ${why}`);
          // The drops are logged one line each, and the replayed one names the first echo's sequence number.
          assert.equal(gw.count('replayed', mark), 1);
          assert.match(gw.lines('replayed', mark)[0]!, / seq=1 why=duplicate$/);
          assert.equal(gw.count('bad-icv', mark), 1);
          assert.ok(gw.count('decrypted', mark) >= 2 && gw.count('sent', mark) >= 2, why);
          assert.equal(gw.lines('peer', mark)[0], `esp-gw peer addr=${res.local}`);

          if (suite === 'chacha20poly1305') {
            // tshark cannot check this suite; Node's (OpenSSL's) ChaCha20-Poly1305 opens scapy's packet instead, per
            // RFC 7634: nonce = salt || explicit IV, AAD = SPI || seq, 16-byte tag, then padding 1,2,.. and next header 4.
            const dg = Buffer.from(res.firstDatagram, 'hex');
            const key = gw.client.out.encKey;
            const d = createDecipheriv('chacha20-poly1305', key.subarray(0, 32), Buffer.concat([key.subarray(32), dg.subarray(8, 16)]), { authTagLength: 16 });
            d.setAAD(dg.subarray(0, 8), { plaintextLength: dg.length - 32 });
            d.setAuthTag(dg.subarray(dg.length - 16));
            const plain = Buffer.concat([d.update(dg.subarray(16, dg.length - 16)), d.final()]);
            const padLen = plain[plain.length - 2]!;
            assert.equal(plain[plain.length - 1], 4, 'next header 4 (IPv4)');
            assert.deepEqual([...plain.subarray(plain.length - 2 - padLen, plain.length - 2)], Array.from({ length: padLen }, (_, i) => i + 1));
            assert.equal(dg.readUInt32BE(0), gw.client.out.spi);
            assert.equal(dg.readUInt32BE(4), 1, 'first sequence number');
            assert.equal(plain.readUInt16BE(2), plain.length - 2 - padLen, 'inner IPv4 total length');
            assert.equal([...plain.subarray(12, 16)].join('.'), gw.clientVip);
          }
          sas.push(...gw.saSpecs(lab.addr.rootToEsp));
          seenSpis.set(suite, { toGw: gw.client.out.spi, fromGw: gw.client.in.spi });
        } finally {
          await gw.stop();
        }
      });
    }

    await t.test('tshark decrypts the capture (GCM and CBC suites)', async () => {
      await cap.stop();
      const pkts = await espInnerPackets(cap.file, sas);
      for (const [suite, spis] of seenSpis) {
        const toGw = pkts.filter((p) => p.spi === spis.toGw);
        const fromGw = pkts.filter((p) => p.spi === spis.fromGw);
        assert.ok(toGw.length >= 4 && fromGw.length >= 2, `${suite}: ESP packets in the capture: ${toGw.length} / ${fromGw.length}`);
        if (!tsharkCanDecrypt(suite)) {
          assert.ok(pkts.filter((p) => p.spi === spis.toGw || p.spi === spis.fromGw).every((p) => !p.decrypted));
          continue;
        }
        // Every packet under the right SPI decrypts with a good ICV except the tampered one; the wrong-SPI one has
        // no SA.
        const requests = toGw.filter((p) => p.decrypted && p.icmpType === 8);
        const replies = fromGw.filter((p) => p.decrypted && p.icmpType === 0);
        assert.ok(requests.length >= 3, `${suite}: decrypted echo requests (2 + the replayed copy): ${JSON.stringify(toGw)}`);
        assert.ok(replies.length >= 2, `${suite}: decrypted echo replies: ${JSON.stringify(fromGw)}`);
        for (const p of [...requests, ...replies]) {
          assert.equal(p.icvGood, true, `${suite}: ICV of frame ${p.frame}`);
          assert.deepEqual([p.src, p.dst].sort(), [lab.addr.espClientVip, lab.web.ipsecHost].sort());
        }
        assert.equal(toGw.filter((p) => p.icvGood === false).length, 1, `${suite}: one tampered packet`);
        if (HTTP_SUITES.has(suite)) {
          const streams = new Set([...toGw, ...fromGw].filter((p) => p.proto === 6 && p.decrypted).map((p) => p.tcpStream));
          assert.equal(streams.size, 1, `${suite}: one inner TCP stream`);
          const f = await tsharkFollowTcp(cap.file, sas, [...streams][0]!);
          assert.match(f.client.toString('latin1'), /^GET \/bytes\/30000 HTTP\/1.0\r\n/);
          assert.equal(f.serverAddr, `${lab.web.ipsecHost}:80`);
          const body = f.server.subarray(f.server.indexOf('\r\n\r\n') + 4);
          assert.equal(body.length, HTTP_BYTES, `${suite}: inner TCP stream length`);
          assert.equal(createHash('sha256').update(body).digest('hex'), detSha256(HTTP_BYTES), `${suite}: inner TCP stream intact`);
        }
      }
    });
    console.log(`# ESP gateway checks took ${Date.now() - t0} ms`);
  }),
);
