/**
 * Our IKEv2 initiator with certificates and EAP-MSCHAPv2 against a real strongSwan 5.9 responder (charon with
 * kernel-libipsec in the lab's ike namespace, the lab PKI's ECDSA server certificate): a certificate connection
 * with an ECDSA and an RSA client certificate, and an EAP-MSCHAPv2 connection after the server's certificate.
 * Each: `vpnproxy ipsec FILE --ping` gets its replies and curl through the library's HTTP proxy moves 10 MB
 * each way byte-exact. A wrong EAP password and an untrusted CA each end with exit code 1 and their one-line error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type Vpn } from '../../src/library.js';
import { detBytes, detSha256, run, withLab, type Lab } from '../lab/index.js';
import type { StrongSwanResponder } from '../lab/strongswan.js';
import { CliProcess } from './cli-helpers.js';

const EAP_USER = 'alice';
const EAP_PASSWORD = 'alice-password';

async function clientConfig(lab: Lab, ss: StrongSwanResponder, name: string, local: string, o: { cacert: string; secrets?: string }): Promise<string> {
  const text = `# our client for the lab's strongSwan (${name})
connections {
  lab {
    version = 2
    remote_addrs = ${ss.address}
    vips = 0.0.0.0
    proposals = aes128gcm16-prfsha256-ecp256, aes128-sha256-modp2048
    local {
${local}
    }
    remote {
      auth = pubkey
      id = ${ss.localId}
      cacerts = ${o.cacert}
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
${o.secrets ?? ''}
}
`;
  const file = join(lab.dir, `${name}.swanctl.conf`);
  await writeFile(file, text);
  return file;
}

let curls = 0;
async function curl(lab: Lab, args: string[]): Promise<{ status: number; sha256: string; size: number; body: string }> {
  const out = join(lab.dir, `ike-auth-curl-${++curls}.out`);
  const r = await run('curl', ['-sS', '--max-time', '240', '-o', out, '-w', '%{http_code} %{size_download}', ...args], { timeoutMs: 250_000 });
  const [status, size] = r.stdout.trim().split(' ').map(Number);
  const body = await readFile(out);
  await rm(out, { force: true });
  return { status: status!, size: size!, sha256: createHash('sha256').update(body).digest('hex'), body: body.toString('latin1') };
}

async function pingAndCurl(lab: Lab, ss: StrongSwanResponder, file: string, auth: string): Promise<void> {
  const web = lab.web.ipsecHost;
  const cli = new CliProcess(['ipsec', file, '--ping', web, '--count', '3', '--interval', '0.3', '--log-level', 'debug']);
  const r = await cli.waitExit(40_000);
  assert.equal(r.code, 0, `${cli.stderr}\n--- charon:\n${ss.log().split('\n').slice(-40).join('\n')}`);
  assert.match(cli.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
  let vpn: Vpn | undefined;
  try {
    vpn = await connect({ ipsec: { config: file }, timeoutMs: 30_000 });
    assert.equal(vpn.status().details?.auth, auth);
    const http = await vpn.httpProxy({ port: 0 });
    const hp = `http://127.0.0.1:${http.address()!.port}`;
    const down = await curl(lab, ['-x', hp, `http://${web}/bytes/10000000`]);
    assert.equal(down.status, 200);
    assert.equal(down.size, 10_000_000);
    assert.equal(down.sha256, detSha256(10_000_000), '10 MB down byte-exact');
    const up = detBytes(10_000_000, `ike-${auth}-upload`);
    const upFile = join(lab.dir, `ike-auth-up-${auth}.bin`);
    await writeFile(upFile, up);
    const posted = await curl(lab, ['-x', hp, '--data-binary', `@${upFile}`, '-H', 'Content-Type: application/octet-stream', `http://${web}/upload`]);
    assert.equal(posted.status, 200);
    const json = JSON.parse(posted.body) as { bytes: number; sha256: string };
    assert.equal(json.bytes, 10_000_000);
    assert.equal(json.sha256, createHash('sha256').update(up).digest('hex'), '10 MB up byte-exact');
    await rm(upFile, { force: true });
  } finally {
    await vpn?.close();
  }
}

test(
  'IKEv2 with certificates and EAP-MSCHAPv2 against strongSwan 5.9',
  { timeout: 600_000 },
  withLab({ iperf: false }, async (lab, t) => {
    const pki = await lab.pki();
    const eapConn = `  rw-eap {
    version = 2
    local_addrs = ${lab.addr.ike}
    proposals = aes128gcm16-prfsha256-ecp256, aes128-sha256-modp2048
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
  }`;
    const ss = await lab.startStrongSwan({
      connName: 'rw-cert',
      auth: 'cert',
      serverCert: pki.server.ec.cert,
      serverKey: pki.server.ec.key,
      clientCa: `${pki.ca.ec}, ${pki.ca.rsa}`,
      remoteId: 'CN=client.lab',
      proposals: 'aes128gcm16-prfsha256-ecp256, aes128-sha256-modp2048',
      espProposals: 'aes128gcm16',
      eapUsers: { [EAP_USER]: EAP_PASSWORD },
      extraConnections: eapConn,
    });
    const certLocal = (c: { cert: string }) => `      auth = pubkey\n      certs = ${c.cert}`;
    const keySecret = (c: { key: string }) => `  private-client {\n    file = ${c.key}\n  }`;

    await t.test('ECDSA client certificate: ping and 10 MB each way through the HTTP proxy', async () => {
      const file = await clientConfig(lab, ss, 'cert-ec', certLocal(pki.client.ec), { cacert: pki.ca.ec, secrets: keySecret(pki.client.ec) });
      await pingAndCurl(lab, ss, file, 'pubkey');
      assert.match(ss.log(), /authentication of 'CN=client\.lab' with (ECDSA|RFC7427)[^\n]* successful/);
    });

    await t.test('RSA client certificate: ping and 10 MB each way through the HTTP proxy', async () => {
      const file = await clientConfig(lab, ss, 'cert-rsa', certLocal(pki.client.rsa), { cacert: pki.ca.ec, secrets: keySecret(pki.client.rsa) });
      await pingAndCurl(lab, ss, file, 'pubkey');
      assert.match(ss.log(), /authentication of 'CN=client\.lab' with RSA[^\n]* successful/);
    });

    const eapLocal = `      auth = eap-mschapv2\n      eap_id = ${EAP_USER}`;
    const eapSecret = (pw: string) => `  eap-alice {\n    id = ${EAP_USER}\n    secret = "${pw}"\n  }`;

    await t.test('EAP-MSCHAPv2 after the server certificate: ping and 10 MB each way through the HTTP proxy', async () => {
      const file = await clientConfig(lab, ss, 'eap', eapLocal, { cacert: pki.ca.ec, secrets: eapSecret(EAP_PASSWORD) });
      await pingAndCurl(lab, ss, file, 'eap-mschapv2');
      assert.match(ss.log(), /EAP method EAP_MSCHAPV2 succeeded, MSK established/);
    });

    await t.test('a wrong EAP password: AUTH_FAILED, exit code 1 within a few seconds', async () => {
      const file = await clientConfig(lab, ss, 'eap-wrong', eapLocal, { cacert: pki.ca.ec, secrets: eapSecret('not-the-password') });
      const started = Date.now();
      const cli = new CliProcess(['ipsec', file, '--ping', lab.web.ipsecHost, '--count', '1']);
      const r = await cli.waitExit(20_000);
      assert.equal(r.code, 1, cli.stderr);
      assert.match(cli.stderr, /error \[AUTH_FAILED\]: EAP-MSCHAPv2 authentication as 'alice' failed \(wrong user name or password/);
      assert.ok(Date.now() - started < 10_000, `ended after ${Date.now() - started} ms`);
    });

    await t.test('an untrusted CA: CERT_UNTRUSTED, exit code 1', async () => {
      const file = await clientConfig(lab, ss, 'untrusted', eapLocal, { cacert: pki.ca.foreign, secrets: eapSecret(EAP_PASSWORD) });
      const cli = new CliProcess(['ipsec', file, '--ping', lab.web.ipsecHost, '--count', '1']);
      const r = await cli.waitExit(20_000);
      assert.equal(r.code, 1, cli.stderr);
      assert.match(cli.stderr, /error \[CERT_UNTRUSTED\]: the gateway's certificate 'CN=server\.lab' \(issuer '[^']*'\) is not signed by a trusted CA/);
    });
  }),
);
