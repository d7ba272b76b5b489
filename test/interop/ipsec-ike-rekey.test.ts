/**
 * IKEv2 that stays up (issue 14), against a real strongSwan 5.9 responder: the gateway rekeys the CHILD_SA every
 * 10 s and the IKE SA every 15 s while a rate-limited download runs through our HTTP proxy (byte-exact, no
 * failed request, every rekey completed on the gateway, no retransmission); our own CHILD_SA rekey every 10 s
 * and IKE SA rekey every 15 s against a quiet connection of the same gateway; `swanctl --rekey` from the
 * gateway at random moments of a transfer; the gateway's DPD answered while idle, then the gateway killed: our
 * DPD declares it dead, /healthz goes 503, and the tunnel is back by itself after the gateway restarts; the
 * gateway deleting our IKE SA (`swanctl --terminate`): we reconnect; SIGTERM: our DELETE empties the gateway's
 * SA list at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type Vpn } from '../../src/library.js';
import { detSha256, run, withLab, type Lab } from '../lab/index.js';
import type { StrongSwanOptions, StrongSwanResponder } from '../lab/strongswan.js';
import { CliProcess } from './cli-helpers.js';
import { Logger } from '../../src/util/log.js';

const GATEWAY: StrongSwanOptions = {
  proposals: 'aes128gcm16-prfsha256-ecp256',
  espProposals: 'aes128gcm16',
  childRekeyTime: '10s',
  ikeRekeyTime: '15s',
  dpdDelay: '3s',
  // A second connection that never rekeys by itself (identity server2.lab), for our own rekeys.
  extraConnections: `  quiet {
    version = 2
    local_addrs = %LOCAL%
    proposals = aes128gcm16-prfsha256-ecp256
    encap = yes
    pools = labpool
    dpd_delay = 30s
    rekey_time = 1h
    local {
      auth = psk
      id = server2.lab
    }
    remote {
      auth = psk
      id = client.lab
    }
    children {
      net {
        local_ts = %NET%
        esp_proposals = aes128gcm16
        rekey_time = 1h
      }
    }
  }`,
  extraSecrets: `  ike-quiet {
    id-1 = server2.lab
    id-2 = client.lab
    secret = "lab-psk-not-secret"
  }`,
};

interface ClientOptions {
  remoteId?: string;
  ikeRekey?: string;
  child?: string;
  dpd?: string;
  remoteAddrs?: string;
  remotePort?: number;
}

async function clientConfig(lab: Lab, ss: StrongSwanResponder, name: string, o: ClientOptions = {}): Promise<string> {
  const text = `connections {
  lab {
    version = 2
    remote_addrs = ${o.remoteAddrs ?? ss.address}${o.remotePort ? `\n    remote_port = ${o.remotePort}` : ''}
    vips = 0.0.0.0
    proposals = aes128gcm16-prfsha256-ecp256
    rekey_time = ${o.ikeRekey ?? '4h'}
${o.dpd ?? ''}
    local {
      auth = psk
      id = client.lab
    }
    remote {
      auth = psk
      id = ${o.remoteId ?? 'server.lab'}
    }
    children {
      net {
        remote_ts = ${lab.addr.webIpsecNet}
        esp_proposals = aes128gcm16
${o.child ?? ''}
      }
    }
  }
}
secrets {
  ike-lab {
    id-1 = ${o.remoteId ?? 'server.lab'}
    id-2 = client.lab
    secret = "${ss.psk}"
  }
}
`;
  const file = join(lab.dir, `${name}.swanctl.conf`);
  await writeFile(file, text);
  return file;
}

let curls = 0;
async function curl(lab: Lab, args: string[], timeoutS = 150): Promise<{ status: number; sha256: string; size: number; err: string }> {
  const out = join(lab.dir, `rekey-curl-${++curls}.out`);
  const r = await run('curl', ['-sS', '--max-time', String(timeoutS), '-o', out, '-w', '%{http_code} %{size_download}', ...args], { timeoutMs: (timeoutS + 10) * 1000, allowFail: true });
  const [status, size] = r.stdout.trim().split(' ').map(Number);
  const body = await readFile(out).catch(() => Buffer.alloc(0));
  await rm(out, { force: true });
  return { status: status ?? 0, size: size ?? 0, sha256: createHash('sha256').update(body).digest('hex'), err: r.stderr };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Small requests every `everyMs` through the proxy until `stop()`; resolves with how many ran and failed. */
function pinger(lab: Lab, proxy: string): { stop: () => Promise<{ ok: number; failed: string[] }> } {
  let running = true;
  const failed: string[] = [];
  let ok = 0;
  const loop = (async () => {
    while (running) {
      const r = await curl(lab, ['-x', proxy, `http://${lab.web.ipsecHost}/bytes/2000`], 20);
      if (r.status === 200 && r.sha256 === detSha256(2000)) ok++;
      else failed.push(`${r.status} ${r.err.trim()}`);
      await sleep(1000);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { ok, failed };
    },
  };
}

async function until(what: string, pred: () => boolean | Promise<boolean>, ms: number, context?: () => string): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await pred()) return Date.now() - start;
    await sleep(200);
  }
  assert.fail(`${what}: not within ${ms} ms${context ? `\n${context()}` : ''}`);
}

const count = (text: string, re: RegExp) => (text.match(new RegExp(re.source, 'g')) ?? []).length;

test(
  'IKEv2 that stays up: rekeys both ways, DPD, deletes and gateway restarts against strongSwan 5.9',
  { timeout: 1_200_000 },
  withLab({ iperf: false }, async (lab, t) => {
    const gwOptions: StrongSwanOptions = {
      ...GATEWAY,
      extraConnections: GATEWAY.extraConnections!.replace('%LOCAL%', lab.addr.ike).replace('%NET%', lab.addr.webIpsecNet),
    };
    let ss = await lab.startStrongSwan(gwOptions);
    const web = lab.web.ipsecHost;

    /**
     * 60 s of rekeys on a connection of `file`: an 18 MB download at 300 KB/s and a small request every second
     * through our HTTP proxy, all byte-exact, no reconnect, at least 5 CHILD and 3 IKE rekeys on our side;
     * returns the gateway's log of that minute.
     */
    const minuteOfRekeys = async (file: string): Promise<string> => {
      let vpn: Vpn | undefined;
      try {
        vpn = await connect({ ipsec: { config: file }, timeoutMs: 30_000 });
        const http = await vpn.httpProxy({ port: 0 });
        const hp = `http://127.0.0.1:${http.address()!.port}`;
        const from = ss.log().length;
        const p = pinger(lab, hp);
        const started = Date.now();
        const down = await curl(lab, ['-x', hp, '--limit-rate', '300k', `http://${web}/bytes/18000000`]);
        await sleep(Math.max(0, 62_000 - (Date.now() - started)));
        const pings = await p.stop();
        assert.equal(down.status, 200, down.err);
        assert.equal(down.sha256, detSha256(18_000_000), '18 MB byte-exact across the rekeys');
        assert.deepEqual(pings.failed, [], 'no failed request');
        assert.ok(pings.ok >= 20, `${pings.ok} small requests`);
        const st = vpn.status();
        assert.equal(st.reconnects, 0, 'never reconnected');
        assert.ok(Number(st.details?.childRekeys) >= 5, `CHILD rekeys: ${st.details?.childRekeys}`);
        assert.ok(Number(st.details?.ikeRekeys) >= 3, `IKE rekeys: ${st.details?.ikeRekeys}`);
        const log = ss.log().slice(from);
        assert.doesNotMatch(log, /retransmit \d+ of request/, 'no retransmission on the gateway');
        assert.doesNotMatch(log, /giving up after \d+ retransmits|closing CHILD_SA .* expired|received (?:NO_PROPOSAL_CHOSEN|INVALID_SYNTAX|TEMPORARY_FAILURE)/);
        return log;
      } finally {
        await vpn?.close();
      }
    };

    await t.test('the gateway rekeys the CHILD_SA every 10 s and the IKE SA every 15 s during a 60 s rate-limited download and small requests: byte-exact, nothing fails', async () => {
      const log = await minuteOfRekeys(await clientConfig(lab, ss, 'gw-rekeys'));
      assert.ok(count(log, /CHILD_SA net\{\d+\} established with SPIs/) >= 5, `the gateway established new CHILD_SAs:\n${log.slice(-3000)}`);
      assert.ok(count(log, /IKE_SA rw-psk\[\d+\] rekeyed between/) >= 3, `the gateway rekeyed the IKE SA:\n${log.slice(-3000)}`);
    });

    await t.test('our own CHILD_SA rekey every 10 s and IKE SA rekey every 15 s (a gateway connection that never rekeys) for 60 s of downloading', async () => {
      const file = await clientConfig(lab, ss, 'own-rekeys', { remoteId: 'server2.lab', ikeRekey: '15s', child: '        rekey_time = 10s\n        life_time = 20s\n        rand_time = 2s' });
      const log = await minuteOfRekeys(file);
      assert.ok(count(log, /parsed CREATE_CHILD_SA request \d+ \[ N\(REKEY_SA\) SA No TSi TSr \]/) >= 5, `the gateway answered our CHILD rekeys:\n${log.slice(-3000)}`);
      assert.ok(count(log, /parsed CREATE_CHILD_SA request \d+ \[ SA No KE \]/) >= 3, 'the gateway answered our IKE rekeys');
      assert.ok(count(log, /IKE_SA quiet\[\d+\] rekeyed between/) >= 3, 'the gateway completed them');
    });

    await t.test('swanctl --rekey --child / --ike from the gateway at random moments of a transfer: no byte lost', async () => {
      const file = await clientConfig(lab, ss, 'random-rekeys');
      let vpn: Vpn | undefined;
      try {
        vpn = await connect({ ipsec: { config: file }, timeoutMs: 30_000 });
        const http = await vpn.httpProxy({ port: 0 });
        const hp = `http://127.0.0.1:${http.address()!.port}`;
        const transfer = curl(lab, ['-x', hp, '--limit-rate', '1m', `http://${web}/bytes/16000000`]);
        let rekeys = 0;
        for (const kind of ['child', 'ike', 'child', 'ike', 'child']) {
          await sleep(1000 + Math.floor(Math.random() * 2000));
          const r = kind === 'child' ? await ss.rekeyChild() : await ss.rekeyIke();
          assert.equal(r.code, 0, r.stderr);
          rekeys++;
        }
        const down = await transfer;
        assert.equal(down.sha256, detSha256(16_000_000), '16 MB byte-exact');
        assert.equal(rekeys, 5);
        assert.equal(vpn.status().reconnects, 0);
      } finally {
        await vpn?.close();
      }
    });

    await t.test('DPD: the gateway probes every 3 s and we answer for 60 s idle; killed, our DPD finds it dead, /healthz 503, back by itself after the restart', async () => {
      const file = await clientConfig(lab, ss, 'dpd', { dpd: '    dpd_delay = 5s\n    dpd_timeout = 10s' });
      let vpn: Vpn | undefined;
      const lines: string[] = [];
      const logger = new Logger('debug', 'text', { write: (l) => void lines.push(l) });
      const ours = () => lines.join('').split('\n').slice(-60).join('\n');
      try {
        vpn = await connect({ ipsec: { config: file }, timeoutMs: 30_000, logger });
        const status = await vpn.statusServer({ port: 0 });
        const health = async () => (await fetch(`http://127.0.0.1:${status.address()!.port}/healthz`)).status;
        const http = await vpn.httpProxy({ port: 0 });
        const hp = `http://127.0.0.1:${http.address()!.port}`;
        const from = ss.log().length;
        await sleep(60_000);
        const idle = ss.log().slice(from);
        const probes = count(idle, /generating INFORMATIONAL request \d+ \[ \]/);
        const answered = count(idle, /parsed INFORMATIONAL response \d+ \[ \]/);
        assert.ok(probes >= 10, `the gateway's DPDs in 60 s idle: ${probes}`);
        assert.ok(answered >= probes - 1, `answered ${answered} of ${probes}`);
        assert.equal(vpn.state, 'up');
        assert.equal(await health(), 200);

        await ss.kill();
        const dead = await until('our DPD declares the gateway dead', () => vpn!.state !== 'up', 40_000, ours);
        assert.ok(dead <= 30_000, `down after ${dead} ms (dpd_delay 5 s + dpd_timeout 10 s)`);
        assert.equal(await health(), 503);

        ss = await lab.startStrongSwan(gwOptions);
        const back = await until('the tunnel is back', () => vpn!.state === 'up', 40_000, ours);
        assert.ok(back <= 20_000, `back ${back} ms after the gateway restarted`);
        assert.ok((vpn.status().reconnects ?? 0) >= 1);
        const r = await curl(lab, ['-x', hp, `http://${web}/bytes/100000`]);
        assert.equal(r.sha256, detSha256(100_000), 'a proxied request works without restarting vpnproxy');
        assert.equal(await health(), 200);
      } finally {
        await vpn?.close();
      }
    });

    await t.test('the gateway deletes our IKE SA (swanctl --terminate): we reconnect by ourselves', async () => {
      const file = await clientConfig(lab, ss, 'terminate');
      let vpn: Vpn | undefined;
      try {
        vpn = await connect({ ipsec: { config: file }, timeoutMs: 30_000 });
        const http = await vpn.httpProxy({ port: 0 });
        const hp = `http://127.0.0.1:${http.address()!.port}`;
        const before = vpn.status().details?.ikeSpiI;
        const r = await ss.terminateIke();
        assert.equal(r.code, 0, r.stderr + r.stdout);
        await until('reconnected', () => vpn!.state === 'up' && (vpn!.status().reconnects ?? 0) >= 1 && vpn!.status().details?.ikeSpiI !== before, 20_000);
        const got = await curl(lab, ['-x', hp, `http://${web}/bytes/100000`]);
        assert.equal(got.sha256, detSha256(100_000));
      } finally {
        await vpn?.close();
      }
    });

    await t.test('through the impairment relay at 10 % loss with reordering: IKE comes up by retransmission, a CHILD rekey completes, 20 MB byte-exact', async () => {
      // Seed 2 drops the first datagram up (our IKE_SA_INIT) and the second down (the IKE_AUTH response).
      const relay = await lab.startRelay({ targetHost: ss.address, targetPort: 4500, drop: 0.1, reorder: 0.05, seed: 2 });
      const file = await clientConfig(lab, ss, 'lossy', { remoteAddrs: relay.address.host, remotePort: relay.address.port });
      const cli = new CliProcess(['ipsec', file, '--http-proxy', '127.0.0.1:0', '--socks-proxy', 'off', '--status', '127.0.0.1:0', '--log-level', 'debug']);
      try {
        const ready = await cli.ready(60_000);
        assert.match(cli.stderr, /retransmitting IKE_SA_INIT/, 'the lost IKE_SA_INIT was sent again');
        assert.match(cli.stderr, /retransmitting IKE_AUTH/, 'the IKE_AUTH whose response was lost was sent again');
        const hp = `http://${ready.http!.host}:${ready.http!.port}`;
        const down = await curl(lab, ['-x', hp, `http://${web}/bytes/20000000`], 240);
        assert.equal(down.status, 200, down.err);
        assert.equal(down.sha256, detSha256(20_000_000), '20 MB byte-exact at 10 % loss');
        const statusUrl = `http://${ready.status!.host}:${ready.status!.port}/status`;
        const rekeyed = async () => Number(((await (await fetch(statusUrl)).json()) as { tunnel: { details?: { childRekeys?: number } } }).tunnel.details?.childRekeys ?? 0) >= 1;
        await until('a CHILD_SA rekey over the lossy path', rekeyed, 60_000);
        const again = await curl(lab, ['-x', hp, `http://${web}/bytes/1000000`], 120);
        assert.equal(again.sha256, detSha256(1_000_000), 'still carrying traffic after the rekey');
        const st = relay.stats();
        assert.ok(st.up.dropped + st.down.dropped > 0, 'the relay did drop datagrams');
      } finally {
        await cli.stop();
      }
    });

    await t.test("SIGTERM: our DELETE empties the gateway's SA list within a second", async () => {
      const file = await clientConfig(lab, ss, 'sigterm');
      const cli = new CliProcess(['ipsec', file, '--http-proxy', '127.0.0.1:0', '--socks-proxy', 'off']);
      await cli.ready(30_000);
      assert.match(await ss.listSas(), /rw-psk: #\d+, ESTABLISHED/);
      const from = ss.log().length;
      const exit = await cli.stop();
      assert.equal(exit.code, 0, cli.stderr);
      const t0 = Date.now();
      let sas = await ss.listSas();
      while (/rw-psk: #\d+, ESTABLISHED/.test(sas) && Date.now() - t0 < 1000) sas = await ss.listSas();
      assert.doesNotMatch(sas, /rw-psk: #\d+, ESTABLISHED/, `the gateway still lists our SA:\n${sas}`);
      assert.match(ss.log().slice(from), /received DELETE for IKE_SA rw-psk/);
    });
  }),
);
