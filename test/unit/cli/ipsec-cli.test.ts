/**
 * `vpnproxy ipsec` without a swanctl.conf: --server with --psk-file, --eap-user + --ca, --cert + --key + --ca
 * become one IKE connection (checked through planIke as prepareIpsec does); conflicting or missing flags are
 * USAGE errors (exit code 2); a .sswan profile gets its EAP password and PKCS#12 passphrase from the user.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HELP, parseCommandLine, type VpnCommand } from '../../../src/cli/args.js';
import { ipsecCli, type IpsecFlags } from '../../../src/cli/ipsec-cli.js';
import { exitCodeFor, VpnError } from '../../../src/errors.js';
import { prepareIpsec, type IpsecBackend } from '../../../src/ipsec/backend.js';
import type { IkePlan } from '../../../src/ipsec/ike/plan.js';
import { quickIpsecConfig, readPskFile } from '../../../src/ipsec/quick.js';
import { silentLogger } from '../../../src/util/log.js';
import { IdType } from '../../../src/wire/ike-constants.js';

const dir = mkdtempSync(join(tmpdir(), 'ipsec-cli-'));
const file = (name: string, content: string | Uint8Array) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};
const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-subj', '/CN=Test CA', '-days', '30', '-out', 'ca.crt']);
ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'me.key', '-subj', '/CN=client.lab', '-days', '30', '-out', 'me.crt']);
const CA = join(dir, 'ca.crt');

const run = (...a: string[]) => parseCommandLine(['ipsec', ...a]) as VpnCommand<IpsecFlags>;
const isUsage = (re: RegExp) => (e: unknown) => e instanceof VpnError && e.code === 'USAGE' && exitCodeFor(e) === 2 && re.test(e.message);
const usageError = (f: () => unknown, re: RegExp) => assert.throws(f, isUsage(re));
const planOf = (b: IpsecBackend) => (b as unknown as { opts: { ike: IkePlan } }).opts.ike;
async function prepareCli(cmd: VpnCommand<IpsecFlags>, env: Record<string, string | undefined> = {}): Promise<IkePlan> {
  const saved = { u: process.env.VPNPROXY_USERNAME, p: process.env.VPNPROXY_PASSWORD };
  delete process.env.VPNPROXY_USERNAME;
  delete process.env.VPNPROXY_PASSWORD;
  Object.assign(process.env, env);
  try {
    const { backend } = await ipsecCli.prepare(cmd.configPath, cmd.protocolFlags, silentLogger);
    return planOf(backend as unknown as IpsecBackend);
  } finally {
    for (const [k, v] of [['VPNPROXY_USERNAME', saved.u], ['VPNPROXY_PASSWORD', saved.p]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

test('--server with --psk-file: one IKE connection with strongSwan defaults and the PSK of the file', async () => {
  const psk = file('psk', 'lab-psk-not-secret\n');
  const cmd = run('--server', '192.0.2.1', '--id', 'client.lab', '--remote-id', 'server.lab', '--psk-file', psk, '--ping', '10.0.0.1');
  assert.equal(cmd.configPath, undefined);
  const plan = await prepareCli(cmd);
  assert.deepEqual(plan.connection.remoteAddrs, ['192.0.2.1']);
  assert.equal(plan.connection.remotePort, 500);
  assert.deepEqual(plan.connection.proposals, ['default']);
  assert.deepEqual(plan.child.espProposals, ['default']);
  assert.deepEqual(plan.child.remoteTs.map((t) => t.raw), ['0.0.0.0/0']);
  assert.equal(plan.vip, '0.0.0.0');
  assert.equal(plan.authMethod, 'psk');
  assert.equal(Buffer.from(plan.psk).toString(), 'lab-psk-not-secret');
  assert.equal(Buffer.from(plan.localId!.data).toString(), 'client.lab');
  assert.equal(Buffer.from(plan.remoteId!.data).toString(), 'server.lab');
  // no identities: the PSK is for any
  const p2 = await prepareCli(run('--server', 'gw.example:4500', '--psk-file', psk, '--esp-proposals', 'aes128gcm16', '--proposals', 'aes128-sha256-modp2048'));
  assert.equal(p2.connection.remotePort, 4500);
  assert.equal(p2.localId, undefined);
  assert.deepEqual(p2.child.espProposals, ['aes128gcm16']);
  assert.equal(p2.esp.length, 1);
});

test('--server with an IPv6 gateway: bare, in brackets, in brackets with a port', async () => {
  const psk = file('psk6', 'x\n');
  for (const [server, port] of [['2001:db8::1', 500], ['[2001:db8::1]', 500], ['[2001:db8::1]:4500', 4500]] as const) {
    const plan = await prepareCli(run('--server', server, '--psk-file', psk));
    assert.deepEqual(plan.connection.remoteAddrs, ['2001:db8::1'], server);
    assert.equal(plan.connection.remotePort, port, server);
  }
  usageError(() => run('--server', '2001:db8::1:4500:x', '--psk-file', psk), /--server takes HOST or HOST:PORT/);
});

test('a PSK file: one trailing newline dropped, 0x hex and 0s base64 decoded', async () => {
  assert.equal(Buffer.from(await readPskFile(file('a', 'secret\r\n'))).toString(), 'secret');
  assert.equal(Buffer.from(await readPskFile(file('b', 'sec ret\n\n'))).toString(), 'sec ret\n');
  assert.deepEqual([...(await readPskFile(file('c', '0x0102ff\n')))], [1, 2, 255]);
  assert.equal(Buffer.from(await readPskFile(file('d', '0sc2VjcmV0'))).toString(), 'secret');
  await assert.rejects(readPskFile(file('e', '\n')), isUsage(/empty/));
  await assert.rejects(readPskFile(file('f', '0xzz')), isUsage(/malformed hex/));
  await assert.rejects(readPskFile(join(dir, 'missing')), isUsage(/cannot read --psk-file/));
});

test('--eap-user with --ca: EAP-MSCHAPv2 with the password from VPNPROXY_PASSWORD or --auth-user-pass', async () => {
  const cmd = run('--server', 'vpn.example.org', '--eap-user', 'alice', '--ca', CA);
  const plan = await prepareCli(cmd, { VPNPROXY_PASSWORD: 'pw-env' });
  assert.equal(plan.authMethod, 'eap-mschapv2');
  assert.deepEqual(plan.localAuth, { kind: 'eap', identity: 'alice', password: 'pw-env' });
  assert.equal(plan.remoteAuth.kind, 'pubkey');
  assert.equal(Buffer.from(plan.remoteId!.data).toString(), 'vpn.example.org', 'the gateway must be named by its certificate');
  assert.equal(Buffer.from(plan.localId!.data).toString(), 'alice');
  const creds = file('creds', 'bob\npw-file\n');
  const p2 = await prepareCli(run('--server', 'vpn.example.org', '--auth-user-pass', creds, '--ca', CA, '--id', 'me@example.org'), { VPNPROXY_PASSWORD: 'pw-env' });
  assert.deepEqual(p2.localAuth, { kind: 'eap', identity: 'bob', password: 'pw-file' });
  assert.equal(Buffer.from(p2.localId!.data).toString(), 'me@example.org');
  await assert.rejects(prepareCli(cmd), isUsage(/--eap-user alice: no EAP password \(--auth-user-pass FILE \(second line\) or VPNPROXY_PASSWORD\)/));
});

test('--cert and --key with --ca: certificate authentication', async () => {
  const plan = await prepareCli(run('--server', '192.0.2.1', '--cert', join(dir, 'me.crt'), '--key', join(dir, 'me.key'), '--ca', CA, '--remote-id', 'server.lab'));
  assert.equal(plan.authMethod, 'pubkey');
  assert.equal(plan.localAuth.kind, 'pubkey');
  assert.equal(plan.remoteAuth.kind, 'pubkey');
});

test('flags that do not fit together are usage errors (exit code 2)', () => {
  usageError(() => run('swanctl.conf', '--server', 'gw'), /--server build a connection without a file: give either swanctl\.conf or --server/);
  usageError(() => run('x.sswan', '--psk-file', 'f', '--id', 'me'), /--id, --psk-file build a connection/);
  usageError(() => run(), /takes a swanctl\.conf or \.sswan profile, or --server HOST/);
  usageError(() => run('--id', 'me'), /--server/);
  usageError(() => run('--server', 'gw'), /--server needs a way to authenticate: --psk-file, --eap-user \(with --ca\) or --cert and --key/);
  usageError(() => run('--server', 'gw', '--eap-user', 'alice'), /--eap-user needs --ca: the gateway's certificate must be checked/);
  usageError(() => run('--server', 'gw', '--auth-user-pass', 'creds'), /--eap-user needs --ca/);
  usageError(() => run('--server', 'gw', '--cert', 'c', '--ca', 'ca'), /--cert needs --key/);
  usageError(() => run('--server', 'gw', '--key', 'k', '--ca', 'ca'), /--key needs --cert/);
  usageError(() => run('--server', 'gw', '--cert', 'c', '--key', 'k'), /--cert needs --ca/);
  usageError(() => run('--server', 'gw', '--psk-file', 'f', '--eap-user', 'alice', '--ca', 'ca'), /--psk-file and --eap-user exclude each other/);
  usageError(() => run('--server', 'gw', '--psk-file', 'f', '--ca', 'ca'), /--ca is for a gateway that authenticates with a certificate/);
  usageError(() => run('--server', 'gw', '--psk-file', 'f', '--connection', 'x'), /--connection/);
  usageError(() => run('--server', 'gw:99999', '--psk-file', 'f'), /not a port/);
  usageError(() => run('--server', 'a b', '--psk-file', 'f'), /--server takes HOST or HOST:PORT/);
  usageError(() => run('--server', 'gw', '--psk-file', 'f', '--esp-proposals', 'aes128gcm16;x'), /--esp-proposals/);
  usageError(() => run('a.conf', 'b.conf'), /exactly one/);
  assert.equal(run('swanctl.conf', '--auth-user-pass', 'creds').protocolFlags.authUserPassFile, 'creds');
  for (const s of ['vpnproxy ipsec swanctl.conf|P.sswan', '--server HOST[:PORT]', '--psk-file FILE', '--eap-user NAME', '--ca FILE', '--remote-id ID']) assert.ok(HELP.includes(s), `HELP shows ${s}`);
});

test('library: the same connection from connect() options; mixing a file and settings is a usage error', async () => {
  const c = quickIpsecConfig({ server: 'gw', psk: '0x0102' });
  assert.equal(c.file, 'connect() options');
  assert.deepEqual([...c.secrets.ike[0]!.secret], [1, 2]);
  assert.throws(() => quickIpsecConfig({ server: 'gw', eapUser: 'alice', eapPassword: 'x' }), isUsage(/ipsec\.eapUser needs ipsec\.ca/));
  const { backend } = await prepareIpsec({ server: 'gw', eapUser: 'alice', ca: readFileSync(CA), env: { VPNPROXY_PASSWORD: 'pw' } });
  assert.deepEqual(planOf(backend).localAuth, { kind: 'eap', identity: 'alice', password: 'pw' });
  await assert.rejects(prepareIpsec({ config: 'x.conf', server: 'gw', psk: 'x' }), isUsage(/either a configuration file or ipsec\.server/));
  await assert.rejects(prepareIpsec({ config: 'x.conf', psk: 'x' }), isUsage(/ipsec\.psk only go with ipsec\.server/));
  await assert.rejects(prepareIpsec({ server: 'gw', eapUser: 'alice', ca: CA, env: {} }), isUsage(/no EAP password \(ipsec\.eapPassword\)/));
});

const caB64 = readFileSync(CA).toString('base64');
const sswan = (type: string, local: object) =>
  JSON.stringify({ uuid: '3f8b2b9e-1a55-4c6e-9a3c-1d2e3f405162', name: 'p', type, remote: { addr: '192.0.2.1', id: 'server.lab', cert: caB64 }, local }, null, 2);

test('.sswan ikev2-eap: the password from the user; missing, a usage error naming it', async () => {
  const p = file('eap.sswan', sswan('ikev2-eap', { eap_id: 'alice' }));
  const plan = await prepareCli(run(p), { VPNPROXY_PASSWORD: 'pw' });
  assert.deepEqual(plan.localAuth, { kind: 'eap', identity: 'alice', password: 'pw' });
  const creds = file('creds2', 'ignored\nfrom-file\n');
  assert.deepEqual((await prepareCli(run(p, '--auth-user-pass', creds))).localAuth, { kind: 'eap', identity: 'alice', password: 'from-file' });
  await assert.rejects(prepareCli(run(p)), isUsage(/eap\.sswan: a \.sswan profile holds no EAP password: give the password of 'alice' with --auth-user-pass FILE/));
  // library
  const { backend } = await prepareIpsec({ config: p, password: 'lib-pw', env: {} });
  assert.deepEqual(planOf(backend).localAuth, { kind: 'eap', identity: 'alice', password: 'lib-pw' });
  await assert.rejects(prepareIpsec({ config: p, env: {} }), isUsage(/holds no EAP password: give the password of 'alice' as ipsec\.username \/ ipsec\.password/));
  // no user name in the profile: from the credentials
  const q = file('eap-noid.sswan', sswan('ikev2-eap', {}));
  assert.deepEqual((await prepareCli(run(q, '--auth-user-pass', file('creds3', 'carol\npw3\n')))).localAuth, { kind: 'eap', identity: 'carol', password: 'pw3' });
  await assert.rejects(prepareCli(run(q), { VPNPROXY_PASSWORD: 'x' }), isUsage(/holds no EAP user name/));
});

test('.sswan ikev2-cert: our identity from the PKCS#12 container with the passphrase from the user', async () => {
  ossl(['pkcs12', '-export', '-in', 'me.crt', '-inkey', 'me.key', '-passout', 'pass:p12-pass', '-out', 'me.p12']);
  const p = file('cert.sswan', sswan('ikev2-cert', { p12: readFileSync(join(dir, 'me.p12')).toString('base64') }));
  await assert.rejects(prepareCli(run(p)), isUsage(/cert\.sswan: a \.sswan profile holds no passphrase for the PKCS#12 container \(local\.p12\)/));
  const plan = await prepareCli(run(p), { VPNPROXY_PASSWORD: 'p12-pass' });
  assert.equal(plan.authMethod, 'pubkey');
  assert.ok(plan.localAuth.kind === 'pubkey');
  assert.equal(new X509Certificate(plan.localAuth.certs[0]!).subject, 'CN=client.lab');
  assert.equal(plan.localId!.type, IdType.DER_ASN1_DN, 'the identity is the certificate subject');
  await assert.rejects(prepareCli(run(p), { VPNPROXY_PASSWORD: 'wrong' }), (e: unknown) => e instanceof VpnError && e.code === 'PROFILE_FILE' && exitCodeFor(e) === 2 && /local\.p12: cannot read the PKCS#12 container: wrong passphrase/.test(e.message));
});

test('.sswan ikev2-cert-eap (two rounds) is PROFILE_UNSUPPORTED before any password is asked for', async () => {
  const p = file('cert-eap.sswan', sswan('ikev2-cert-eap', { eap_id: 'alice', p12: readFileSync(join(dir, 'me.p12')).toString('base64') }));
  await assert.rejects(prepareCli(run(p)), (e: unknown) => e instanceof VpnError && e.code === 'PROFILE_UNSUPPORTED' && /2 local authentication rounds/.test(e.message));
});
