/**
 * Profiles shaped like the ones three common commercial providers ship (same directives, same quirks, only
 * our lab's keys, certificates and address), each against a lab server configured the way such a provider's
 * server has to be for that profile to work. The profile is used unmodified: loaded from disk, 20 pings.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadProfile } from '../../src/openvpn/profile.js';
import { labPrereqs, startLab, type Lab, type OpenVpnServer } from '../lab/index.js';
import { twentyPings } from './helpers.js';

const pre = labPrereqs();

async function block(tag: string, path: string, indent = ''): Promise<string> {
  const body = (await readFile(path, 'utf8')).trimEnd().split('\n').map((l) => indent + l).join('\n');
  return `${indent}<${tag}>\n${body}\n${indent}</${tag}>`;
}

async function writeProfile(lab: Lab, name: string, text: string): Promise<string> {
  const path = join(lab.dir, `${name}.ovpn`);
  await writeFile(path, text, { mode: 0o600 });
  return path;
}

async function credsFile(lab: Lab, s: OpenVpnServer): Promise<string> {
  const path = join(lab.dir, `creds-${s.port}.txt`);
  await writeFile(path, `${s.users[0]!.username}\n${s.users[0]!.password}\n`, { mode: 0o600 });
  return path;
}

describe('provider-shaped profiles against a real OpenVPN 2.6 server', { skip: pre.skip, timeout: 300_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({ web: false, iperf: false });
  });
  after(async () => {
    await lab?.stop();
  });

  test('NordVPN/Surfshark shape: tls-auth + key-direction 1, AES-256-CBC, auth SHA512, comp-lzo, verify-x509-name CN=', async () => {
    const s = await lab.startOpenVpn({
      proto: 'udp',
      tlsAuth: { digest: 'SHA512', keyDirection: 0 },
      auth: 'SHA512',
      dataCiphers: 'AES-256-CBC',
      userPass: { username: 'nord-user', password: 'n0rd pass' },
      extra: ['comp-lzo', 'allow-compression yes'],
    });
    const pki = await lab.pki();
    const text = [
      '\ufeffclient',
      'dev tun',
      'proto udp',
      `remote ${s.remote.host} ${s.remote.port}`,
      'resolv-retry infinite',
      'remote-random',
      'nobind',
      'tun-mtu 1500',
      'tun-mtu-extra 32',
      'mssfix 1450',
      'persist-key',
      'persist-tun',
      'ping 15',
      'ping-restart 0',
      'ping-timer-rem',
      'reneg-sec 0',
      'comp-lzo',
      `verify-x509-name CN=${pki.serverName}`,
      '',
      'remote-cert-tls server',
      '',
      `auth-user-pass ${await credsFile(lab, s)}`,
      'verb 3',
      'pull',
      'fast-io',
      'cipher AES-256-CBC',
      'auth SHA512',
      await block('ca', pki.ca.ec),
      await block('cert', pki.client.ec.cert),
      await block('key', pki.client.ec.key),
      'key-direction 1',
      await block('tls-auth', s.keys.tlsAuth!),
      '',
    ].join('\r\n');
    const info = await twentyPings(s, { path: await writeProfile(lab, 'nord-shape', text) });
    assert.equal(info.cipher, 'AES-256-CBC');
  });

  test('ProtonVPN shape: tls-crypt, AES-256-GCM, no client certificate, scripts and pull-filters', async () => {
    const s = await lab.startOpenVpn({
      proto: 'udp',
      tlsCrypt: true,
      verifyClientCert: 'none',
      userPass: { username: 'proton+f1', password: 'pr0ton' },
    });
    const pki = await lab.pki();
    const text = [
      '# ==============================================================================',
      '# Copyright (c) 2016-2020 Proton Technologies AG (Switzerland) -- shape only',
      '# ==============================================================================',
      'client',
      'dev tun',
      'proto udp',
      `remote ${s.remote.host} ${s.remote.port}`,
      'remote-random',
      'resolv-retry infinite',
      'nobind',
      '# The "data-ciphers" option is the new name for "ncp-ciphers" in OpenVPN 2.5',
      'data-ciphers AES-256-GCM:AES-128-GCM:?CHACHA20-POLY1305',
      'cipher AES-256-GCM',
      'setenv CLIENT_CERT 0',
      'tun-mtu 1500',
      'mssfix 0',
      'persist-key',
      'persist-tun',
      'reneg-sec 0',
      'remote-cert-tls server',
      `auth-user-pass ${await credsFile(lab, s)}`,
      'pull',
      'fast-io',
      'script-security 2',
      'up /etc/openvpn/update-resolv-conf',
      'down /etc/openvpn/update-resolv-conf',
      'pull-filter ignore "dhcp-option DNS6"',
      'pull-filter ignore "ifconfig-ipv6"',
      'pull-filter ignore "route-ipv6"',
      await block('ca', pki.ca.ec),
      await block('tls-crypt', s.keys.tlsCrypt!),
      '',
    ].join('\n');
    const info = await twentyPings(s, { path: await writeProfile(lab, 'proton-shape', text) });
    assert.equal(info.cipher, 'AES-256-GCM');
  });

  test('AirVPN shape: tls-crypt-v2, compress, auth SHA512, long data-ciphers, push-peer-info, unknown options', async () => {
    const s = await lab.startOpenVpn({ proto: 'udp', tlsCryptV2: true, auth: 'SHA512', extra: ['compress'] });
    const pki = await lab.pki();
    const text = [
      '# --------------------------------------------------------',
      '# Air VPN | shape only',
      '# --------------------------------------------------------',
      'client',
      'dev tun',
      `remote ${s.remote.host} ${s.remote.port}`,
      'resolv-retry infinite',
      'nobind',
      'persist-key',
      'persist-tun',
      'auth-nocache',
      'verb 3',
      'explicit-exit-notify 5',
      'push-peer-info',
      'setenv UV_IPV6 yes',
      'remote-cert-tls server',
      'compress',
      'data-ciphers AES-256-GCM:AES-256-CBC:AES-192-GCM:AES-192-CBC:AES-128-GCM:AES-128-CBC:CHACHA20-POLY1305',
      'data-ciphers-fallback AES-256-CBC',
      'proto udp',
      'auth SHA512',
      'setenv opt block-outside-dns',
      'setenv opt some-future-option 1 2',
      'ignore-unknown-option totally-new-thing',
      'totally-new-thing yes',
      await block('ca', pki.ca.ec, '  '),
      await block('cert', pki.client.ec.cert, '  '),
      await block('key', pki.client.ec.key, '  '),
      await block('tls-crypt-v2', s.keys.tlsCryptV2Client!, '  '),
      '',
    ].join('\n');
    const path = await writeProfile(lab, 'air-shape', text);
    const { warnings } = await loadProfile(path);
    assert.ok(!warnings.some((w) => /totally-new-thing|block-outside-dns/.test(w.message)), 'ignored options stay quiet');
    const info = await twentyPings(s, { path });
    assert.equal(info.cipher, 'AES-256-GCM');
  });
});
