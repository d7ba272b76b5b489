/**
 * IKEv2 without a swanctl.conf against the lab's strongSwan 5.9 responder (a PSK connection and an EAP-MSCHAPv2
 * one after the server's certificate, side by side): `vpnproxy ipsec --server … --psk-file F` and
 * `--eap-user alice --ca CA` with VPNPROXY_PASSWORD get their ping replies; a .sswan ikev2-eap profile (the lab
 * CA embedded in remote.cert) connects with the password from VPNPROXY_PASSWORD, and a wrong one ends with
 * exit code 1 and AUTH_FAILED; an ikev2-cert profile with our identity in a PKCS#12 container (openssl's
 * default encryption) connects with its passphrase from VPNPROXY_PASSWORD.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, withLab } from '../lab/index.js';
import type { StrongSwanResponder } from '../lab/strongswan.js';
import { CliProcess } from './cli-helpers.js';

const EAP_USER = 'alice';
const EAP_PASSWORD = 'alice-password';
const PROPOSALS = 'aes128gcm16-prfsha256-ecp256, aes128-sha256-modp2048';

const charonTail = (ss: StrongSwanResponder) => ss.log().split('\n').slice(-40).join('\n');

async function pings(ss: StrongSwanResponder, args: string[], env: NodeJS.ProcessEnv, web: string): Promise<void> {
  const cli = new CliProcess(['ipsec', ...args, '--ping', web, '--count', '3', '--interval', '0.3'], env);
  const r = await cli.waitExit(40_000);
  assert.equal(r.code, 0, `${cli.stderr}\n--- charon:\n${charonTail(ss)}`);
  assert.match(cli.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
}

test(
  'IKEv2 from --server flags and a .sswan profile against strongSwan 5.9',
  { timeout: 300_000 },
  withLab({ iperf: false }, async (lab, t) => {
    const pki = await lab.pki();
    const ss = await lab.startStrongSwan({
      // the main connection stays PSK; the key is there for rw-eap (charon loads it from private/)
      serverCert: pki.server.ec.cert,
      serverKey: pki.server.ec.key,
      proposals: PROPOSALS,
      espProposals: 'aes128gcm16',
      eapUsers: { [EAP_USER]: EAP_PASSWORD },
      extraConnections: `  rw-eap {
    version = 2
    local_addrs = ${lab.addr.ike}
    proposals = ${PROPOSALS}
    encap = yes
    pools = labpool
    local {
      auth = pubkey
      certs = ${pki.server.ec.cert}
      id = server.lab
    }
    remote {
      auth = eap-mschapv2
      eap_id = %any
    }
    children {
      net {
        local_ts = ${lab.addr.webIpsecNet}
        esp_proposals = aes128gcm16
      }
    }
  }
  rw-cert {
    version = 2
    local_addrs = ${lab.addr.ike}
    proposals = ${PROPOSALS}
    encap = yes
    pools = labpool
    local {
      auth = pubkey
      certs = ${pki.server.ec.cert}
      id = server.lab
    }
    remote {
      auth = pubkey
      cacerts = ${pki.ca.ec}, ${pki.ca.rsa}
      id = CN=client.lab
    }
    children {
      net {
        local_ts = ${lab.addr.webIpsecNet}
        esp_proposals = aes128gcm16
      }
    }
  }`,
    });
    const web = lab.web.ipsecHost;
    const noEnv = { VPNPROXY_USERNAME: undefined, VPNPROXY_PASSWORD: undefined };

    await t.test('--server --psk-file: ping', async () => {
      const psk = join(lab.dir, 'quick.psk');
      await writeFile(psk, `${ss.psk}\n`);
      await pings(ss, ['--server', ss.address, '--id', ss.remoteId, '--remote-id', ss.localId, '--psk-file', psk], noEnv, web);
      assert.match(ss.log(), /authentication of 'client\.lab' with pre-shared key successful/);
    });

    await t.test('--server --eap-user --ca with VPNPROXY_PASSWORD: ping', async () => {
      await pings(ss, ['--server', ss.address, '--remote-id', 'server.lab', '--eap-user', EAP_USER, '--ca', pki.ca.ec], { ...noEnv, VPNPROXY_PASSWORD: EAP_PASSWORD }, web);
      assert.match(ss.log(), /EAP method EAP_MSCHAPV2 succeeded, MSK established/);
    });

    const profile = join(lab.dir, 'lab-eap.sswan');
    await writeFile(
      profile,
      JSON.stringify(
        {
          uuid: '6f1c5a3e-2b4d-4e8f-9a0b-1c2d3e4f5a6b',
          name: 'Lab EAP',
          type: 'ikev2-eap',
          remote: { addr: ss.address, id: 'server.lab', cert: (await readFile(pki.ca.ec)).toString('base64') },
          local: { eap_id: EAP_USER },
        },
        null,
        2,
      ),
    );

    await t.test('.sswan ikev2-eap with the password from VPNPROXY_PASSWORD: ping', async () => {
      await pings(ss, [profile], { ...noEnv, VPNPROXY_PASSWORD: EAP_PASSWORD }, web);
    });

    await t.test('.sswan ikev2-cert with a PKCS#12 client identity and its passphrase from VPNPROXY_PASSWORD: ping', async () => {
      const p12 = join(lab.dir, 'client.p12');
      await run('openssl', ['pkcs12', '-export', '-in', pki.client.ec.cert, '-inkey', pki.client.ec.key, '-passout', 'pass:p12-pass', '-out', p12]);
      const certProfile = join(lab.dir, 'lab-cert.sswan');
      await writeFile(
        certProfile,
        JSON.stringify({
          uuid: '7a2d6b4f-3c5e-4f90-8b1c-2d3e4f5a6b7c',
          name: 'Lab Cert',
          type: 'ikev2-cert',
          remote: { addr: ss.address, id: 'server.lab', cert: (await readFile(pki.ca.ec)).toString('base64') },
          local: { p12: (await readFile(p12)).toString('base64') },
        }),
      );
      await pings(ss, [certProfile], { ...noEnv, VPNPROXY_PASSWORD: 'p12-pass' }, web);
      assert.match(ss.log(), /authentication of 'CN=client\.lab' with (ECDSA|RFC7427)[^\n]* successful/);
    });

    await t.test('.sswan ikev2-eap with a wrong password: AUTH_FAILED, exit code 1', async () => {
      const cli = new CliProcess(['ipsec', profile, '--ping', web, '--count', '1'], { ...noEnv, VPNPROXY_PASSWORD: 'not-the-password' });
      const r = await cli.waitExit(30_000);
      assert.equal(r.code, 1, cli.stderr);
      assert.match(cli.stderr, /error \[AUTH_FAILED\]: EAP-MSCHAPv2 authentication as 'alice' failed/);
    });

    await t.test('.sswan ikev2-eap without a password: usage error, exit code 2', async () => {
      const cli = new CliProcess(['ipsec', profile, '--ping', web, '--count', '1'], noEnv);
      const r = await cli.waitExit(30_000);
      assert.equal(r.code, 2, cli.stderr);
      assert.match(cli.stderr, /error \[USAGE\]: .*lab-eap\.sswan: a \.sswan profile holds no EAP password: give the password of 'alice' with --auth-user-pass FILE/);
    });
  }),
);
