/**
 * Our IKEv2 initiator (PSK) against a real strongSwan 5.9 responder (charon with kernel-libipsec in the lab's
 * ike namespace, virtual IP pool 10.B.6.0/24, the web host behind it): `vpnproxy ipsec FILE --ping` gets its
 * replies, and tshark, given the IKE SA keys of our debug log, decrypts both IKE_AUTH messages; the library
 * gets a virtual IP from the pool and curl through its HTTP proxy moves 10 MB each way byte-exact, and through
 * SOCKS5 reaches a name only the pushed DNS knows; a CBC proposal after an INVALID_KE_PAYLOAD round and
 * ChaCha20-Poly1305 over Curve25519 carry traffic; IKE on port 4500 from the first message works; the gateway's
 * DPD is answered; a wrong PSK, a wrong remote id, an IKE or ESP proposal mismatch and unacceptable traffic
 * selectors each end with their own error (exit code 1) within seconds; close() deletes the IKE SA on the
 * gateway; with an IKE_SA_INIT half-open the gateway demands a COOKIE and we send IKE_SA_INIT again with it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { connect, type Vpn } from '../../src/library.js';
import { findConnection, loadIpsecConfig, type IkeConnection } from '../../src/ipsec/config.js';
import { IkeInitiator } from '../../src/ipsec/ike/initiator.js';
import { planIke } from '../../src/ipsec/ike/plan.js';
import { detBytes, detSha256, run, withLab, type Lab } from '../lab/index.js';
import { tsharkIkeAuth } from '../lab/tshark-esp.js';
import { IPSEC_WEB_NAME } from '../lab/dns.js';
import { pskClientConf, type StrongSwanResponder } from '../lab/strongswan.js';
import { CliProcess } from './cli-helpers.js';

/** Our client's swanctl.conf, written from the lab responder's own settings. */
async function clientConfig(lab: Lab, ss: StrongSwanResponder, name: string, o: { proposals: string; esp: string; psk?: string; remoteTs?: string; remotePort?: number; remoteId?: string }): Promise<string> {
  const text = pskClientConf(ss, {
    comment: `our client for the lab's ${ss.connName}`,
    remotePort: o.remotePort,
    proposals: o.proposals,
    espProposals: o.esp,
    remoteTs: o.remoteTs,
    remoteId: o.remoteId,
    psk: o.psk,
    startAction: 'start',
  });
  const file = join(lab.dir, `${name}.swanctl.conf`);
  await writeFile(file, text);
  return file;
}

let curls = 0;
async function curl(lab: Lab, args: string[]): Promise<{ status: number; sha256: string; size: number; body: string }> {
  const out = join(lab.dir, `ike-curl-${++curls}.out`);
  const r = await run('curl', ['-sS', '--max-time', '240', '-o', out, '-w', '%{http_code} %{size_download}', ...args], { timeoutMs: 250_000 });
  const [status, size] = r.stdout.trim().split(' ').map(Number);
  const body = await readFile(out);
  await rm(out, { force: true });
  return { status: status!, size: size!, sha256: createHash('sha256').update(body).digest('hex'), body: body.toString('latin1') };
}

const inPool = (lab: Lab, ip: string) => ip.startsWith(lab.addr.ipsecPool.split('.').slice(0, 3).join('.') + '.');

async function waitForLog(ss: StrongSwanResponder, re: RegExp, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (re.test(ss.log())) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return re.test(ss.log());
}

/** Sends one IKE_SA_INIT of the connection in `file` to the gateway's port 500 and waits for its answer, then goes away. */
async function halfOpenIkeSa(file: string, gateway: string): Promise<void> {
  const config = await loadIpsecConfig(file);
  const conn = findConnection(config) as IkeConnection;
  const plan = planIke(config, conn, []);
  const ini = new IkeInitiator({ ike: plan.ike, esp: plan.esp, localId: plan.localId!, remoteId: plan.remoteId, psk: plan.psk, remoteAddress: gateway, remotePort: 500, tsi: [], tsr: [], vip: '0.0.0.0' });
  const first = ini.start(0).find((e) => e.type === 'send');
  assert.ok(first && first.type === 'send');
  const sock = createSocket('udp4');
  try {
    const answered = new Promise<void>((resolve) => sock.once('message', () => resolve()));
    sock.send(first.message, 500, gateway);
    await Promise.race([answered, new Promise((_, reject) => setTimeout(() => reject(new Error('no answer to the half-open IKE_SA_INIT')), 5000))]);
  } finally {
    sock.close();
  }
}

test(
  'IKEv2 with a pre-shared key against strongSwan 5.9',
  { timeout: 900_000 },
  withLab(
    {
      iperf: false,
      strongswan: {
        proposals: 'aes128gcm16-prfsha256-ecp256, aes256-sha256-modp2048, chacha20poly1305-prfsha256-x25519',
        espProposals: 'aes128gcm16, aes256-sha256, chacha20poly1305',
        // A COOKIE is demanded while one IKE_SA_INIT is half-open (the last subtest leaves one so).
        charon: '  cookie_threshold = 1',
      },
    },
    async (lab, t) => {
    const ss = lab.strongswan!;
    const web = lab.web.ipsecHost;

    await t.test('aes128gcm16-prfsha256-ecp256 / esp aes128gcm16: vpnproxy ipsec --ping gets every reply', async () => {
      const file = await clientConfig(lab, ss, 'ping-gcm', { proposals: 'aes128gcm16-prfsha256-ecp256', esp: 'aes128gcm16' });
      const cap = await lab.captureOn('ike', lab.ikeLink, { filter: 'udp port 500 or udp port 4500' });
      const cli = new CliProcess(['ipsec', file, '--ping', web, '--count', '3', '--interval', '0.3', '--log-level', 'debug']);
      const r = await cli.waitExit(40_000);
      await cap.stop();
      assert.equal(r.code, 0, cli.stderr);
      assert.match(cli.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
      assert.match(cli.stderr, new RegExp(`tunnel up via ${ss.address.replace(/\./g, '\\.')}:4500/udp: address 10\\.\\d+\\.6\\.\\d+, cipher aes128gcm16`));
      assert.match(cli.stderr, /sending IKE_SA_INIT request 0 \[ SA KE NONCE N\(NAT_DETECTION_SOURCE_IP\) N\(NAT_DETECTION_DESTINATION_IP\) N\(IKEV2_FRAGMENTATION_SUPPORTED\) \]/);
      assert.match(cli.stderr, /received IKE_AUTH response 1 \[ IDr AUTH\(SHARED_KEY_MIC\) CP SA TSi TSr \]/);
      const log = ss.log();
      assert.match(log, /selected proposal: IKE:AES_GCM_16_128\/PRF_HMAC_SHA2_256\/ECP_256/);
      assert.match(log, /remote host is behind NAT/);
      assert.match(log, /authentication of 'client\.lab' with pre-shared key successful/);
      assert.match(log, /selected proposal: ESP:AES_GCM_16_128\/NO_EXT_SEQ/);
      assert.ok(await waitForLog(ss, /deleting IKE_SA lab|received DELETE for IKE_SA/), 'the CLI deleted its IKE SA on exit');

      // Wireshark, given the IKE SA keys of our debug log, decrypts both IKE_AUTH messages.
      const keys = /IKE SA keys \(secret\): SPIi=(\w+) SPIr=(\w+) encr=(\S+) SK_ei=(\w*) SK_er=(\w*) integ=(\S+) SK_ai=(\w*) SK_ar=(\w*)/.exec(cli.stderr);
      assert.ok(keys, `the debug log has the IKE SA keys:\n${cli.stderr}`);
      const auth = await tsharkIkeAuth(cap.file, keys.slice(1));
      assert.match(auth, /Identification - Initiator[\s\S]*ID_FQDN[\s\S]*client\.lab/, `tshark decrypted our IKE_AUTH request:\n${auth.slice(0, 4000)}`);
      assert.match(auth, /Configuration[\s\S]*INTERNAL_IP4_ADDRESS/, 'our CFG_REQUEST is readable');
      assert.match(auth, /Identification - Responder[\s\S]*server\.lab/, "and the gateway's IKE_AUTH response");
      assert.doesNotMatch(auth, /Decryption failed|Checksum: .*\[incorrect|ICV .*incorrect/i);
    });

    await t.test('library: a virtual IP from the pool, curl 10 MB down and 10 MB up byte-exact through the HTTP proxy', async () => {
      const file = await clientConfig(lab, ss, 'bulk-gcm', { proposals: 'aes128gcm16-prfsha256-ecp256', esp: 'aes128gcm16' });
      let vpn: Vpn | undefined;
      try {
        vpn = await connect({ ipsec: { config: file }, timeoutMs: 30_000 });
        assert.equal(vpn.info?.protocol, 'ipsec');
        assert.ok(inPool(lab, vpn.address!), `virtual IP ${vpn.address} from the pool ${lab.addr.ipsecPool}`);
        const http = await vpn.httpProxy({ port: 0 });
        const hp = `http://127.0.0.1:${http.address()!.port}`;
        const ipSeen = await curl(lab, ['-x', hp, `http://${web}/ip`]);
        assert.equal(ipSeen.status, 200);
        assert.ok(ipSeen.body.includes(vpn.address!), `the web host saw our virtual IP: ${ipSeen.body}`);
        // SOCKS5 by name: ipsec.lab.test exists only in the lab DNS that the gateway's CFG_REPLY names.
        assert.deepEqual([...(vpn.info?.link.dns ?? [])], [lab.addr.webIpsec], 'the DNS server from the CFG_REPLY');
        const socks = await vpn.socksProxy({ port: 0 });
        const byName = await curl(lab, ['--socks5-hostname', `127.0.0.1:${socks.address()!.port}`, `http://${IPSEC_WEB_NAME}/ip`]);
        assert.equal(byName.status, 200, 'SOCKS5 by a name only the tunnel DNS knows');
        assert.ok(byName.body.includes(vpn.address!), `reached through the tunnel: ${byName.body}`);
        const down = await curl(lab, ['-x', hp, `http://${web}/bytes/10000000`]);
        assert.equal(down.status, 200);
        assert.equal(down.size, 10_000_000);
        assert.equal(down.sha256, detSha256(10_000_000), '10 MB down byte-exact');
        const upFile = join(lab.dir, 'ike-up-10mb.bin');
        const up = detBytes(10_000_000, 'ike-upload');
        await writeFile(upFile, up);
        const posted = await curl(lab, ['-x', hp, '--data-binary', `@${upFile}`, '-H', 'Content-Type: application/octet-stream', `http://${web}/upload`]);
        assert.equal(posted.status, 200);
        const json = JSON.parse(posted.body) as { bytes: number; sha256: string };
        assert.equal(json.bytes, 10_000_000);
        assert.equal(json.sha256, createHash('sha256').update(up).digest('hex'), '10 MB up byte-exact');
        const st = vpn.status();
        assert.equal(st.protocol, 'ipsec');
        assert.equal(st.cipher, 'aes128gcm16');
        assert.equal(st.details?.auth, 'psk');
        assert.equal(st.details?.proposal, 'AES_GCM_16_128/PRF_HMAC_SHA2_256/ECP_256');
        assert.equal(st.details?.dhGroup, 'ECP-256');
        assert.equal(st.details?.vip, vpn.address);
        assert.equal(st.details?.tsr, lab.addr.webIpsecNet);
        assert.match(String(st.details?.ikeSpiI), /^[0-9a-f]{16}$/);
        assert.ok(Number(st.details?.seqOut) > 1000, `outbound sequence numbers in /status: ${st.details?.seqOut}`);
        assert.equal(st.drops, 0, `no drops: ${JSON.stringify(st.dropReasons)}`);
        const statusServer = await vpn.statusServer({ port: 0 });
        const metrics = await (await fetch(`http://127.0.0.1:${statusServer.address()!.port}/metrics`)).text();
        assert.match(metrics, new RegExp(`vpnproxy_ike_sa_info\\{spi_i="${String(st.details?.ikeSpiI)}",spi_r="[0-9a-f]{16}",proposal="AES_GCM_16_128/PRF_HMAC_SHA2_256/ECP_256",dh_group="ECP-256",auth="psk",remote_id="server\\.lab",vip="${vpn.address!.replace(/\./g, '\\.')}"\\} 1`), metrics);
        assert.match(metrics, /vpnproxy_ike_messages_total\{direction="sent"\} [2-9]\d*/);
        assert.match(metrics, /vpnproxy_ike_child_sa_info\{esp="aes128gcm16",spi_in="0x[0-9a-f]{8}",spi_out="0x[0-9a-f]{8}",tsi="10\.\d+\.6\.\d+\/32",tsr="[^"]+"\} 1/);
        assert.match(metrics, /vpnproxy_ike_sa_age_seconds \d+/);
        const sas = await ss.listSas();
        assert.match(sas, new RegExp(`${String(st.details?.ikeSpiI)}_i`), `the gateway lists our IKE SA:\n${sas}`);
      } finally {
        await vpn?.close();
      }
      assert.ok(await waitForLog(ss, new RegExp('received DELETE for IKE_SA|deleting IKE_SA')), 'close() deleted the IKE SA on the gateway');
    });

    await t.test('aes256-sha256-modp2048 / esp aes256-sha256 after an INVALID_KE_PAYLOAD round (we offer ecp256 first)', async () => {
      const file = await clientConfig(lab, ss, 'cbc', { proposals: 'aes256-sha256-ecp256-modp2048', esp: 'aes256-sha256' });
      let vpn: Vpn | undefined;
      try {
        vpn = await connect({ ipsec: { config: file }, timeoutMs: 30_000 });
        assert.equal(vpn.status().details?.proposal, 'AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048');
        assert.equal(vpn.status().cipher, 'aes256-sha256');
        assert.ok(await vpn.ping(web), 'an echo through the CBC CHILD_SA');
        const http = await vpn.httpProxy({ port: 0 });
        const down = await curl(lab, ['-x', `http://127.0.0.1:${http.address()!.port}`, `http://${web}/bytes/2000000`]);
        assert.equal(down.sha256, detSha256(2_000_000), '2 MB down byte-exact');
      } finally {
        await vpn?.close();
      }
      const log = ss.log();
      assert.match(log, /DH group ECP_256 unacceptable, requesting MODP_2048/);
      assert.match(log, /selected proposal: ESP:AES_CBC_256\/HMAC_SHA2_256_128\/NO_EXT_SEQ/);
    });

    await t.test('chacha20poly1305-prfsha256-x25519 / esp chacha20poly1305: Curve25519 (group 31) and ChaCha20-Poly1305 both ways', async () => {
      const file = await clientConfig(lab, ss, 'chacha', { proposals: 'chacha20poly1305-prfsha256-x25519', esp: 'chacha20poly1305' });
      let vpn: Vpn | undefined;
      try {
        vpn = await connect({ ipsec: { config: file }, timeoutMs: 30_000 });
        assert.equal(vpn.status().details?.proposal, 'CHACHA20_POLY1305/PRF_HMAC_SHA2_256/CURVE_25519');
        assert.equal(vpn.status().details?.dhGroup, 'Curve25519');
        assert.equal(vpn.status().cipher, 'chacha20poly1305');
        const http = await vpn.httpProxy({ port: 0 });
        const hp = `http://127.0.0.1:${http.address()!.port}`;
        const down = await curl(lab, ['-x', hp, `http://${web}/bytes/5000000`]);
        assert.equal(down.sha256, detSha256(5_000_000), '5 MB down byte-exact');
        const up = detBytes(5_000_000, 'ike-chacha-upload');
        const upFile = join(lab.dir, 'ike-up-chacha.bin');
        await writeFile(upFile, up);
        const posted = await curl(lab, ['-x', hp, '--data-binary', `@${upFile}`, '-H', 'Content-Type: application/octet-stream', `http://${web}/upload`]);
        assert.equal((JSON.parse(posted.body) as { sha256: string }).sha256, createHash('sha256').update(up).digest('hex'), '5 MB up byte-exact');
      } finally {
        await vpn?.close();
      }
      const log = ss.log();
      assert.match(log, /selected proposal: IKE:CHACHA20_POLY1305\/PRF_HMAC_SHA2_256\/CURVE_25519/);
      assert.match(log, /selected proposal: ESP:CHACHA20_POLY1305\/NO_EXT_SEQ/);
    });

    await t.test('a wrong pre-shared key: AUTH_FAILED and exit code 1 within a few seconds', async () => {
      const file = await clientConfig(lab, ss, 'wrong-psk', { proposals: 'aes128gcm16-prfsha256-ecp256', esp: 'aes128gcm16', psk: 'not-the-lab-psk' });
      const started = Date.now();
      const cli = new CliProcess(['ipsec', file, '--ping', web, '--count', '1']);
      const r = await cli.waitExit(20_000);
      const took = Date.now() - started;
      assert.equal(r.code, 1, cli.stderr);
      assert.match(cli.stderr, /error \[AUTH_FAILED\]: .*AUTHENTICATION_FAILED/);
      assert.ok(took < 10_000, `ended after ${took} ms`);
      assert.match(ss.log(), /tried \d+ shared keys? for 'server\.lab' - 'client\.lab', but MAC mismatched/);

      let err: unknown;
      await connect({ ipsec: { config: file }, timeoutMs: 20_000 }).then((v) => v.close(), (e: unknown) => (err = e));
      assert.equal((err as { code?: string }).code, 'AUTH_FAILED');
    });

    await t.test('proposal mismatches and unacceptable traffic selectors: one-line errors, exit code 1, no hang', async () => {
      const cases = [
        { name: 'ike-mismatch', o: { proposals: 'aes256gcm16-prfsha512-ecp384', esp: 'aes128gcm16' }, code: 'NO_SHARED_CIPHER', re: /IKE proposals \(NO_PROPOSAL_CHOSEN in IKE_SA_INIT\); we offered aes256gcm16-prfsha512-ecp384/ },
        { name: 'esp-mismatch', o: { proposals: 'aes128gcm16-prfsha256-ecp256', esp: 'aes256gcm16' }, code: 'NO_SHARED_CIPHER', re: /ESP proposals \(NO_PROPOSAL_CHOSEN in IKE_AUTH\); we offered aes256gcm16/ },
        { name: 'remote-id', o: { proposals: 'aes128gcm16-prfsha256-ecp256', esp: 'aes128gcm16', remoteId: 'other.lab' }, code: 'AUTH_FAILED', re: /AUTHENTICATION_FAILED.*no identity 'other\.lab' on the gateway \(remote id, sent as IDr\)/ },
        { name: 'ts-mismatch', o: { proposals: 'aes128gcm16-prfsha256-ecp256', esp: 'aes128gcm16', remoteTs: '10.99.0.0/24' }, code: 'TS_UNACCEPTABLE', re: /traffic selectors \(TS_UNACCEPTABLE\).*TSr 10\.99\.0\.0\/24/ },
      ];
      for (const c of cases) {
        const file = await clientConfig(lab, ss, c.name, c.o);
        const started = Date.now();
        const cli = new CliProcess(['ipsec', file, '--ping', web, '--count', '1']);
        const r = await cli.waitExit(20_000);
        assert.equal(r.code, 1, `${c.name}: ${cli.stderr}`);
        const line = cli.stderr.split('\n').find((l) => l.includes('error ['))!;
        assert.ok(line.startsWith(`vpnproxy: error [${c.code}]: `), `${c.name}: ${cli.stderr}`);
        assert.match(line, c.re);
        assert.ok(Date.now() - started < 10_000, `${c.name}: ended after ${Date.now() - started} ms`);
      }
      assert.match(ss.log(), /no acceptable proposal found|received proposals: .*ECP_384/);
      assert.match(ss.log(), /looking for peer configs matching [^\n]*\[other\.lab\][^\n]*\n(?:.*\n){0,3}.*no matching peer config found/, 'the gateway has no identity other.lab');
      assert.match(ss.log(), /traffic selectors 10\.99\.0\.0\/24 === 0\.0\.0\.0\/0 unacceptable[\s\S]*generating IKE_AUTH response \d+ \[ IDr AUTH CPRP\(ADDR DNS\) N\(TS_UNACCEPT\) \]/);
    });

    await t.test('remote_port = 4500: the non-ESP marker from the first message, no move', async () => {
      const file = await clientConfig(lab, ss, 'port-4500', { proposals: 'aes128gcm16-prfsha256-ecp256', esp: 'aes128gcm16', remotePort: 4500 });
      let vpn: Vpn | undefined;
      try {
        vpn = await connect({ ipsec: { config: file }, timeoutMs: 30_000 });
        assert.equal(vpn.info?.server.port, 4500);
        assert.ok(await vpn.ping(web), 'an echo through the tunnel');
      } finally {
        await vpn?.close();
      }
      assert.match(ss.log(), new RegExp(`received packet: from ${lab.addr.rootToIke.replace(/\./g, '\\.')}\\[\\d+\\] to ${ss.address.replace(/\./g, '\\.')}\\[4500\\] \\(\\d+ bytes\\)\\n(?:.*\\n){0,3}.*parsed IKE_SA_INIT request 0`));
    });

    await t.test("the gateway's DPD (dpd_delay = 30s, after silence) is answered and the tunnel stays up", async () => {
      const file = await clientConfig(lab, ss, 'dpd', { proposals: 'aes128gcm16-prfsha256-ecp256', esp: 'aes128gcm16' });
      let vpn: Vpn | undefined;
      try {
        vpn = await connect({ ipsec: { config: file }, timeoutMs: 30_000 });
        const from = ss.log().length;
        const seen = async () => /generating INFORMATIONAL request \d+ \[ \][\s\S]*parsed INFORMATIONAL response \d+ \[ \]/.test(ss.log().slice(from));
        const until = Date.now() + 60_000;
        while (Date.now() < until && !(await seen())) await new Promise((r) => setTimeout(r, 500));
        assert.ok(await seen(), `the gateway sent a DPD and got our empty answer:\n${ss.log().slice(from)}`);
        assert.ok(await vpn.ping(web), 'still up after the DPD');
        assert.equal(vpn.state, 'up');
      } finally {
        await vpn?.close();
      }
    });

    await t.test('COOKIE: with an IKE_SA_INIT half-open on the gateway, it demands a cookie and we send IKE_SA_INIT again with it', async () => {
      const file = await clientConfig(lab, ss, 'cookie', { proposals: 'aes128gcm16-prfsha256-ecp256', esp: 'aes128gcm16' });
      // One IKE_SA_INIT whose response we never follow up: the gateway holds a half-open IKE SA (cookie_threshold = 1).
      await halfOpenIkeSa(file, ss.address);
      const from = ss.log().length;
      const cli = new CliProcess(['ipsec', file, '--ping', web, '--count', '2', '--interval', '0.3', '--log-level', 'debug']);
      const r = await cli.waitExit(40_000);
      assert.equal(r.code, 0, cli.stderr);
      assert.match(cli.stdout, /2 packets transmitted, 2 received/);
      assert.match(cli.stderr, /the gateway asked for a COOKIE; sending IKE_SA_INIT again with it/);
      assert.match(cli.stderr, /sending IKE_SA_INIT request 0 \[ N\(COOKIE\) SA KE NONCE /);
      const log = ss.log().slice(from);
      assert.match(log, /generating IKE_SA_INIT response 0 \[ N\(COOKIE\) \]/, `the gateway's COOKIE round:\n${log.slice(0, 3000)}`);
      assert.match(log, /parsed IKE_SA_INIT request 0 \[ N\(COOKIE\) SA KE No /);
    });
  }),
);
