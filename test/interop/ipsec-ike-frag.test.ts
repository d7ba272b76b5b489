/**
 * IKE fragmentation (RFC 7383) against a real strongSwan 5.9 responder: the gateway authenticates with an RSA
 * 4096 server certificate under an RSA 4096 intermediate (both go out as CERT payloads, so its IKE_AUTH
 * response is far over charon's 1280-byte fragment_size and it sends it as SKF fragments); our client trusts
 * only the root CA and authenticates with an RSA 4096 client certificate plus its own intermediate, so our
 * IKE_AUTH request needs fragments too. `vpnproxy ipsec FILE --ping` gets its replies, 3 MB move byte-exact
 * through the library's HTTP proxy, and charon's log shows it split its response and reassembled our request
 * (AES-GCM, then once more with AES-CBC + HMAC-SHA256 for the IKE SA).
 * With fragmentation = no we announce nothing and charon sends the big response unfragmented (the lab's
 * links carry IP fragments, so that connects too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type Vpn } from '../../src/library.js';
import { createChainPki, detSha256, run, withLab, type ChainPki, type Lab } from '../lab/index.js';
import type { StrongSwanResponder } from '../lab/strongswan.js';
import { CliProcess } from './cli-helpers.js';

async function clientConfig(lab: Lab, ss: StrongSwanResponder, chain: ChainPki, name: string, fragmentation: string, proposals = 'aes128gcm16-prfsha256-ecp256, aes128-sha256-modp2048'): Promise<string> {
  const text = `# our client for the lab's strongSwan with a certificate chain (${name})
connections {
  lab {
    version = 2
    remote_addrs = ${ss.address}
    vips = 0.0.0.0
    fragmentation = ${fragmentation}
    proposals = ${proposals}
    local {
      auth = pubkey
      certs = ${chain.client.bundle}
    }
    remote {
      auth = pubkey
      id = ${ss.localId}
      cacerts = ${chain.root}
    }
    children {
      net {
        remote_ts = ${lab.addr.webIpsecNet}
        esp_proposals = aes128gcm16
      }
    }
  }
}
secrets {
  private-client {
    file = ${chain.client.key}
  }
}
`;
  const file = join(lab.dir, `${name}.swanctl.conf`);
  await writeFile(file, text);
  return file;
}

let curls = 0;
async function curl(lab: Lab, args: string[]): Promise<{ status: number; sha256: string; size: number }> {
  const out = join(lab.dir, `ike-frag-curl-${++curls}.out`);
  const r = await run('curl', ['-sS', '--max-time', '120', '-o', out, '-w', '%{http_code} %{size_download}', ...args], { timeoutMs: 130_000 });
  const [status, size] = r.stdout.trim().split(' ').map(Number);
  const body = await readFile(out);
  await rm(out, { force: true });
  return { status: status!, size: size!, sha256: createHash('sha256').update(body).digest('hex') };
}

/** charon's log from `from` on (the log file is appended to by every connection of this lab). */
const logSince = (ss: StrongSwanResponder, from: number) => ss.log().slice(from);

test(
  'IKE fragmentation with a certificate chain against strongSwan 5.9',
  { timeout: 600_000 },
  withLab({ iperf: false }, async (lab, t) => {
    const chain = await createChainPki(join(lab.dir, 'pki-chain'));
    const ss = await lab.startStrongSwan({
      connName: 'rw-chain',
      auth: 'cert',
      serverCert: chain.server.cert,
      serverKey: chain.server.key,
      caCerts: [chain.root, chain.serverIntermediate],
      clientCa: chain.root,
      remoteId: 'CN=client.lab',
      proposals: 'aes128gcm16-prfsha256-ecp256, aes128-sha256-modp2048',
      espProposals: 'aes128gcm16',
    });
    const web = lab.web.ipsecHost;

    await t.test('fragmentation = yes: both IKE_AUTH messages fragmented; ping and 3 MB through the HTTP proxy', async () => {
      const file = await clientConfig(lab, ss, chain, 'frag-yes', 'yes');
      const from = ss.log().length;
      const cli = new CliProcess(['ipsec', file, '--ping', web, '--count', '3', '--interval', '0.3', '--log-level', 'debug']);
      const r = await cli.waitExit(60_000);
      const log = logSince(ss, from);
      assert.equal(r.code, 0, `${cli.stderr}\n--- charon:\n${log.split('\n').slice(-60).join('\n')}`);
      assert.match(cli.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
      // charon: our IKE_SA_INIT announced fragmentation, it split its IKE_AUTH response and put ours back together
      assert.match(log, /parsed IKE_SA_INIT request 0 \[[^\]]*N\(FRAG_SUP\)/);
      assert.match(log, /received fragment #1 of \d+/);
      assert.match(log, /reassembled fragmented IKE message \(\d+ bytes\)/);
      assert.match(log, /parsed IKE_AUTH request 1 \[ IDi CERT CERT /);
      assert.match(log, /splitting IKE message \(\d+ bytes\) into \d+ fragments/);
      assert.match(log, /generating IKE_AUTH response 1 \[ EF\(1\/\d+\) \]/);
      assert.match(log, /authentication of 'CN=client\.lab' with RSA[^\n]* successful/);
      // ours: sent in fragments, reassembled the gateway's, verified the chain to the root
      assert.match(cli.stderr, /sending IKE_AUTH request 1 in \d+ fragments/);
      assert.match(cli.stderr, /reassembled IKE_AUTH response 1 \(\d+ bytes\)/);
      assert.match(cli.stderr, /the gateway's certificate 'CN=server\.lab' is valid for 'server\.lab'/);
      // with AES-GCM (no padding) both sides count the same bytes: what one split, the other put back together
      const theirSplit = /splitting IKE message \((\d+) bytes\)/.exec(log)![1];
      const ourJoin = /reassembled IKE_AUTH response 1 \((\d+) bytes\)/.exec(cli.stderr)![1];
      assert.equal(ourJoin, theirSplit);
      const ourSplit = /sending IKE_AUTH request 1 in \d+ fragments \((\d+) bytes unfragmented/.exec(cli.stderr)![1];
      const theirJoin = /reassembled fragmented IKE message \((\d+) bytes\)/.exec(log)![1];
      assert.equal(theirJoin, ourSplit);
      for (const line of log.split('\n').filter((l) => /splitting IKE message|reassembled fragmented|EF\(\d+\/\d+\)|received fragment #/.test(l))) t.diagnostic(`charon: ${line}`);
      for (const line of cli.stderr.split('\n').filter((l) => /fragment/.test(l))) t.diagnostic(`ours: ${line.replace(/^\S+ /, '')}`);

      let vpn: Vpn | undefined;
      try {
        vpn = await connect({ ipsec: { config: file }, timeoutMs: 30_000 });
        const http = await vpn.httpProxy({ port: 0 });
        const down = await curl(lab, ['-x', `http://127.0.0.1:${http.address()!.port}`, `http://${web}/bytes/3000000`]);
        assert.equal(down.status, 200);
        assert.equal(down.size, 3_000_000);
        assert.equal(down.sha256, detSha256(3_000_000), '3 MB down byte-exact');
      } finally {
        await vpn?.close();
      }
    });

    await t.test('fragmentation = yes with AES-CBC + HMAC-SHA256 for the IKE SA: both directions fragmented, ping', async () => {
      const file = await clientConfig(lab, ss, chain, 'frag-cbc', 'yes', 'aes128-sha256-modp2048');
      const from = ss.log().length;
      const cli = new CliProcess(['ipsec', file, '--ping', web, '--count', '2', '--interval', '0.3', '--log-level', 'debug']);
      const r = await cli.waitExit(60_000);
      const log = logSince(ss, from);
      assert.equal(r.code, 0, `${cli.stderr}\n--- charon:\n${log.split('\n').slice(-60).join('\n')}`);
      assert.match(cli.stdout, /2 packets transmitted, 2 received, 0% packet loss/);
      assert.match(log, /selected proposal: IKE:AES_CBC_128\/HMAC_SHA2_256_128/);
      assert.match(log, /reassembled fragmented IKE message/);
      assert.match(log, /generating IKE_AUTH response 1 \[ EF\(1\/\d+\) \]/);
      assert.match(cli.stderr, /sending IKE_AUTH request 1 in \d+ fragments/);
      assert.match(cli.stderr, /reassembled IKE_AUTH response 1/);
    });

    await t.test('fragmentation = no: no FRAG_SUP from us, charon sends its response whole', async () => {
      const file = await clientConfig(lab, ss, chain, 'frag-no', 'no');
      const from = ss.log().length;
      const cli = new CliProcess(['ipsec', file, '--ping', web, '--count', '1', '--log-level', 'debug']);
      const r = await cli.waitExit(60_000);
      const log = logSince(ss, from);
      assert.equal(r.code, 0, `${cli.stderr}\n--- charon:\n${log.split('\n').slice(-60).join('\n')}`);
      assert.match(log, /parsed IKE_SA_INIT request 0 \[/);
      assert.doesNotMatch(log, /parsed IKE_SA_INIT request 0 \[[^\]]*FRAG_SUP/);
      assert.doesNotMatch(log, /EF\(\d+\/\d+\)|splitting IKE message/);
      assert.doesNotMatch(cli.stderr, /fragment/);
    });
  }),
);
