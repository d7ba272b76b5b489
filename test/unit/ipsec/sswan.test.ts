import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { VpnError, type ErrorCode } from '../../../src/errors.js';
import { findConnection, type IkeConnection } from '../../../src/ipsec/config.js';
import { loadSswan, parseJsonWithLines, parseSswan } from '../../../src/ipsec/sswan.js';

const FIX = fileURLToPath(new URL('../../fixtures/ipsec/sswan/', import.meta.url));
const fixture = (p: string) => readFileSync(join(FIX, p), 'utf8');

function rejects(fn: () => unknown, code: ErrorCode, where: string, re: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof VpnError, `expected VpnError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(caught.message.startsWith(`${where}: `), `expected '${where}: …', got '${caught.message}'`);
  assert.match(caught.message, re);
}

const only = (text: string, file = 'p.sswan'): { conn: IkeConnection; warnings: readonly string[]; privateKeys: unknown[] } => {
  const c = parseSswan(text, file);
  assert.equal(c.connections.size, 1);
  return { conn: c.connections.values().next().value!, warnings: c.warnings, privateKeys: [...c.secrets.privateKeys] };
};

/** A profile from parts, one key per line: uuid line 2, name 3, type 4, remote 5, then `extra`. */
function profile(type: string, remote = '{ "addr": "vpn.example.org" }', extra = ''): string {
  return `{\n  "uuid": "3f8b2b9e-1a55-4c6e-9a3c-1d2e3f405162",\n  "name": "P",\n  "type": "${type}",\n  "remote": ${remote}${extra ? ',\n' + extra : ''}\n}\n`;
}

describe('.sswan samples', () => {
  test('ikev2-eap: username/password EAP, server certificate (DER), proposals, DNS, MTU, keepalive', () => {
    const { conn, warnings } = only(fixture('eap.sswan'), 'eap.sswan');
    assert.deepEqual(warnings, []);
    assert.equal(conn.name, 'Example EAP');
    assert.equal(conn.version, 2);
    assert.deepEqual(conn.remoteAddrs, ['vpn.example.org']);
    assert.equal(conn.remotePort, 500);
    assert.deepEqual(conn.vips, ['0.0.0.0', '::']);
    assert.deepEqual(conn.proposals, ['aes256-sha256-modp2048']);
    assert.equal(conn.local.length, 1);
    assert.equal(conn.local[0]!.auth, 'eap');
    assert.equal(conn.local[0]!.eapMethod, undefined);
    assert.equal(conn.local[0]!.eapId, 'alice');
    assert.equal(conn.local[0]!.id, 'alice');
    assert.equal(conn.remote[0]!.auth, 'pubkey');
    assert.equal(conn.remote[0]!.id, 'vpn.example.org');
    const ca = conn.remote[0]!.cacerts[0]!;
    assert.ok('data' in ca && ca.data[0] === 0x30, 'DER certificate bytes');
    assert.equal('label' in ca && ca.label, 'eap.sswan:8 remote.cert');
    const child = conn.children.get('android')!;
    assert.deepEqual(child.espProposals, ['aes256gcm16']);
    assert.deepEqual(child.remoteTs.map((t) => t.raw), ['0.0.0.0/0', '::/0']);
    assert.deepEqual(conn.client?.dnsServers, ['10.0.0.53', '2001:db8::53']);
    assert.equal(conn.client?.mtu, 1400);
    assert.equal(conn.client?.natKeepalive, 25);
    assert.deepEqual(conn.client?.sswan, { uuid: '3f8b2b9e-1a55-4c6e-9a3c-1d2e3f405162', type: 'ikev2-eap', name: 'Example EAP' });
    assert.equal(conn.locations['ike-proposal'], 'eap.sswan:13');
  });

  test('ikev2-cert: PKCS#12, RSA-PSS, PEM CA, certreq off, strict revocation, split tunnelling', () => {
    const c = parseSswan(fixture('cert.sswan'), 'cert.sswan');
    const conn = c.connections.get('Example Cert')!;
    assert.deepEqual(c.warnings, ['cert.sswan:22: apps ignored: per-app VPN and proxy settings are for the Android app']);
    assert.deepEqual(conn.remoteAddrs, ['198.51.100.7']);
    assert.equal(conn.remotePort, 4500);
    assert.equal(conn.sendCertreq, false);
    assert.equal(conn.remote[0]!.id, '198.51.100.7', 'the gateway address when remote.id is absent');
    assert.equal(conn.remote[0]!.revocation, 'strict');
    assert.deepEqual(conn.client?.revocationSources, { crl: false, ocsp: true });
    const ca = conn.remote[0]!.cacerts[0]!;
    assert.ok('data' in ca && Buffer.from(ca.data).toString().startsWith('-----BEGIN CERTIFICATE-----'));
    assert.equal(conn.local.length, 1);
    assert.equal(conn.local[0]!.auth, 'pubkey');
    assert.equal(conn.local[0]!.id, 'alice@example.org');
    assert.deepEqual(conn.local[0]!.constraints, ['rsa/pss']);
    assert.equal(c.secrets.privateKeys.length, 1);
    const p12 = c.secrets.privateKeys[0]!;
    assert.equal(p12.type, 'pkcs12');
    assert.equal(p12.where, 'cert.sswan:14');
    assert.ok(p12.data && p12.data[0] === 0x30 && p12.data.length > 500);
    const child = conn.children.get('android')!;
    assert.deepEqual(child.remoteTs.map((t) => [t.kind, t.raw]), [
      ['subnet', '10.0.0.0/8'],
      ['range', '192.168.1.1-192.168.1.10'],
    ]);
    assert.deepEqual(conn.client?.excludedSubnets?.map((t) => t.raw), ['10.9.0.0/16', '10.8.0.1']);
    assert.equal(conn.client?.blockIpv6, true);
    assert.equal(conn.client?.blockIpv4, undefined);
    assert.equal(findConnection(c).name, 'Example Cert');
    assert.equal(findConnection(c, 'A6E4C1A8-6B7D-4B0E-8F1E-9C2D3B4A5F60').name, 'Example Cert', 'by uuid');
  });

  test('ikev2-cert-eap: a certificate round, then EAP', () => {
    const { conn } = only(fixture('cert-eap.sswan'));
    assert.deepEqual(conn.local.map((r) => [r.section, r.auth, r.round]), [
      ['local', 'pubkey', 0],
      ['local-eap', 'eap', 1],
    ]);
    assert.equal(conn.local[1]!.eapId, 'bob');
    assert.equal(conn.local[1]!.id, undefined, 'the IKE identity comes from the certificate');
    assert.equal(conn.remote[0]!.id, '@vpn.example.org');
  });

  test('ikev2-eap-tls and ikev2-byod-eap are unsupported, at the line of the type', () => {
    rejects(() => parseSswan(fixture('eap-tls.sswan'), 'eap-tls.sswan'), 'PROFILE_UNSUPPORTED', 'eap-tls.sswan:4', /EAP-TLS\) is not supported/);
    rejects(() => parseSswan(fixture('byod.sswan'), 'byod.sswan'), 'PROFILE_UNSUPPORTED', 'byod.sswan:4', /TNC/);
  });

  test('loadSswan reads a file; a missing one is PROFILE_FILE', async () => {
    const c = await loadSswan(join(FIX, 'cert-eap.sswan'));
    assert.ok(c.connections.has('Example Cert+EAP'));
    await assert.rejects(loadSswan(join(FIX, 'none.sswan')), (e: unknown) => e instanceof VpnError && e.code === 'PROFILE_FILE');
  });

  test('remote.port and booleans may be strings (the app is lenient); a BOM is fine', () => {
    const { conn } = only('\ufeff' + profile('ikev2-cert', '{ "addr": "gw", "port": "4500", "certreq": "false" }'));
    assert.equal(conn.remotePort, 4500);
    assert.equal(conn.sendCertreq, false);
  });

  test('warnings: unknown keys, out-of-range MTU and keepalive, settings the type does not use', () => {
    const { warnings, privateKeys } = only(
      profile('ikev2-eap', '{ "addr": "gw", "colour": "red" }', '  "mtu": 9000,\n  "nat-keepalive": 5,\n  "local": { "eap_id": "a", "p12": "MIIB", "rsa-pss": true },\n  "extra": 1'),
    );
    assert.deepEqual([...warnings].sort(), [
      'p.sswan:9: extra ignored: not a .sswan setting',
      'p.sswan:5: remote.colour ignored: not a .sswan setting',
      'p.sswan:8: local.p12 ignored: type ikev2-eap uses no client certificate',
      'p.sswan:8: local.rsa-pss ignored: type ikev2-eap uses no client certificate',
      'p.sswan:6: mtu 9000 ignored: the app accepts 1280 to 1500',
      'p.sswan:7: nat-keepalive 5 ignored: the app accepts 10 to 120 seconds',
    ].sort());
    assert.deepEqual(privateKeys, []);
  });
});

describe('.sswan errors (exact file:line)', () => {
  const cases: [string, string, ErrorCode, number, RegExp][] = [
    ['invalid JSON', '{\n  "uuid": "x",\n  "name" "P"\n}\n', 'PROFILE_SYNTAX', 3, /invalid JSON: expected ':' after "name"/],
    ['trailing comma', '{\n  "a": 1,\n}\n', 'PROFILE_SYNTAX', 3, /invalid JSON: expected a "key"/],
    ['unterminated string', '{\n  "a": "abc\n}\n', 'PROFILE_SYNTAX', 2, /invalid JSON: control character/],
    ['garbage after the document', '{}\n{}\n', 'PROFILE_SYNTAX', 2, /after the end of the document/],
    ['duplicate key', '{\n  "name": "a",\n  "name": "b"\n}\n', 'PROFILE_SYNTAX', 3, /"name" appears twice/],
    ['not an object', '\n[1, 2]\n', 'PROFILE_SYNTAX', 2, /a \.sswan profile is a JSON object/],
    ['missing uuid', '{\n  "name": "x"\n}\n', 'PROFILE_SYNTAX', 1, /uuid: missing \(required\)/],
    ['bad uuid', profile('ikev2-eap').replace('3f8b2b9e-1a55-4c6e-9a3c-1d2e3f405162', 'not-a-uuid'), 'PROFILE_SYNTAX', 2, /not a UUID/],
    ['name is not a string', profile('ikev2-eap').replace('"P"', '42'), 'PROFILE_SYNTAX', 3, /name: expected a string/],
    ['unknown type', profile('ikev2-magic'), 'PROFILE_SYNTAX', 4, /type: 'ikev2-magic' is not one of ikev2-eap, ikev2-cert/],
    ['PSK type', profile('ikev2-psk'), 'PROFILE_UNSUPPORTED', 4, /no PSK profiles/],
    ['missing remote', '{\n  "uuid": "3f8b2b9e-1a55-4c6e-9a3c-1d2e3f405162",\n  "name": "P",\n  "type": "ikev2-eap"\n}\n', 'PROFILE_SYNTAX', 1, /remote: missing/],
    ['remote is not an object', profile('ikev2-eap', '"vpn.example.org"'), 'PROFILE_SYNTAX', 5, /remote: expected an object/],
    ['missing remote.addr', profile('ikev2-eap', '{ "id": "x" }'), 'PROFILE_SYNTAX', 5, /remote\.addr: missing/],
    ['bad port', profile('ikev2-eap', '{\n    "addr": "gw",\n    "port": 0\n  }'), 'PROFILE_SYNTAX', 7, /remote\.port: 0 is not a port/],
    ['port not a number', profile('ikev2-eap', '{\n    "addr": "gw",\n    "port": "https"\n  }'), 'PROFILE_SYNTAX', 7, /remote\.port: expected an integer/],
    ['bad base64 cert', profile('ikev2-eap', '{\n    "addr": "gw",\n    "cert": "@@@"\n  }'), 'PROFILE_SYNTAX', 7, /remote\.cert: not valid base64/],
    ['certreq not a boolean', profile('ikev2-eap', '{ "addr": "gw", "certreq": 1 }'), 'PROFILE_SYNTAX', 5, /remote\.certreq: expected true or false/],
    ['bad IKE proposal', profile('ikev2-eap', undefined, '  "ike-proposal": "aes 256"'), 'PROFILE_SYNTAX', 6, /ike-proposal: 'aes 256' is not a proposal/],
    ['bad DNS server', profile('ikev2-eap', undefined, '  "dns-servers": ["10.0.0.1", "dns.example"]'), 'PROFILE_SYNTAX', 6, /'dns\.example' is not an IP address/],
    ['bad split subnet', profile('ikev2-eap', undefined, '  "split-tunneling": {\n    "subnets": ["10.0.0.0/99"]\n  }'), 'PROFILE_SYNTAX', 7, /split-tunneling\.subnets: '10\.0\.0\.0\/99'/],
    ['subnets not strings', profile('ikev2-eap', undefined, '  "split-tunneling": {\n    "subnets": [\n      10\n    ]\n  }'), 'PROFILE_SYNTAX', 8, /expected an array of strings/],
    ['local not an object', profile('ikev2-eap', undefined, '  "local": []'), 'PROFILE_SYNTAX', 6, /local: expected an object/],
    ['gateway with blanks', profile('ikev2-eap', '{ "addr": "a b" }'), 'PROFILE_SYNTAX', 5, /is not a host name/],
  ];
  for (const [name, text, code, line, re] of cases) {
    test(`${name} → p.sswan:${line}`, () => rejects(() => parseSswan(text, 'p.sswan'), code, `p.sswan:${line}`, re));
  }
});

describe('JSON reader', () => {
  test('values, escapes and lines', () => {
    const doc = parseJsonWithLines('{\n "a": [1, -2.5e3, true, false, null],\n "b": "x\\u0041\\n\\"",\n "c": {}\n}', 'j');
    assert.equal(doc.type, 'object');
    if (doc.type !== 'object') return;
    const a = doc.props.get('a')!;
    assert.equal(a.keyLine, 2);
    assert.ok(a.node.type === 'array' && a.node.items.length === 5);
    const b = doc.props.get('b')!.node;
    assert.ok(b.type === 'string' && b.value === 'xA\n"');
    assert.equal(doc.props.get('c')!.keyLine, 4);
  });
});
