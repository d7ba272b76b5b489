import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { VpnError, exitCodeFor, type ErrorCode } from '../../../src/errors.js';
import { parseSettings, type IncludeReader } from '../../../src/ipsec/settings.js';
import {
  ESP_SUITES,
  childLifetime,
  decodeSecret,
  findConnection,
  ikeLifetimes,
  loadIpsecConfig,
  parseIpsecConfig,
  parseSizeValue,
  parseTimeValue,
  parseTrafficSelector,
  type IkeConnection,
  type ManualConnection,
} from '../../../src/ipsec/config.js';

const FIX = fileURLToPath(new URL('../../fixtures/ipsec/', import.meta.url));
const fixture = (p: string) => readFileSync(join(FIX, p), 'utf8');

function catchErr(fn: () => unknown): VpnError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof VpnError, `expected VpnError, got ${String(caught)}`);
  return caught;
}

/** Asserts code and that the message starts with exactly `where: ` and matches `re`. */
function rejects(fn: () => unknown, code: ErrorCode, where: string, re: RegExp): VpnError {
  const e = catchErr(fn);
  assert.equal(e.code, code, e.message);
  assert.ok(e.message.startsWith(`${where}: `), `expected '${where}: …', got '${e.message}'`);
  assert.match(e.message, re);
  assert.ok(!e.message.includes('\n'), 'one line');
  return e;
}

const parse = (text: string, readInclude?: IncludeReader) => parseIpsecConfig(text, 't.conf', readInclude);
const ike = (text: string, name?: string): IkeConnection => {
  const c = parse(text);
  return (name ? c.connections.get(name) : c.connections.values().next().value)!;
};

/** A minimal connection; `extra` lines start at line 3, `child` lines at line 6 + the number of extra lines. */
function conn(extra = '', child = ''): string {
  return `connections {\n  c {\n${extra}    remote_addrs = 192.0.2.1\n    children {\n      net {\n${child}      }\n    }\n  }\n}\n`;
}

// ------------------------------------------------------------------------------------------------
describe('settings syntax', () => {
  test('sections, values to end of line, comments, quoted strings with escapes, empty values', () => {
    const root = parseSettings(
      [
        'a = b c   d # comment',
        'q = "x # not a comment }" tail',
        'esc = "tab\\there\\nnew \\"q\\" \\\\ \\z"',
        'multi = "one',
        'two"',
        'joined = "abc\\',
        'def"',
        'empty =',
        's1 {',
        '  k = v }',
        's2',
        '{',
        '  inner { deep = 1 }',
        '}',
      ].join('\n'),
      'x.conf',
    );
    assert.equal(root.keys.get('a')!.value, 'b c d');
    assert.equal(root.keys.get('q')!.value, 'x # not a comment } tail');
    assert.equal(root.keys.get('esc')!.value, 'tab\there\nnew "q" \\ z');
    assert.equal(root.keys.get('multi')!.value, 'one\ntwo');
    assert.equal(root.keys.get('joined')!.value, 'abcdef');
    assert.equal(root.keys.get('joined')!.line, 6);
    assert.equal(root.keys.get('empty')!.value, '');
    assert.equal(root.sections.get('s1')!.keys.get('k')!.value, 'v');
    const s2 = root.sections.get('s2')!;
    assert.equal(s2.line, 11);
    assert.equal(s2.sections.get('inner')!.keys.get('deep')!.line, 13);
  });

  test('a key given twice: the later value (and its line) wins; repeated sections merge', () => {
    const root = parseSettings('s {\n  k = 1\n  j = x\n}\ns {\n  k = 2\n  sub { z = 1 }\n}\n', 'x.conf');
    const s = root.sections.get('s')!;
    assert.equal(s.line, 1);
    assert.deepEqual([...s.keys.keys()], ['k', 'j']);
    assert.equal(s.keys.get('k')!.value, '2');
    assert.equal(s.keys.get('k')!.line, 6);
    assert.equal(s.keys.get('j')!.value, 'x');
    assert.ok(s.sections.has('sub'));
  });

  test('CRLF line ends, a BOM, tabs, and `::` in names', () => {
    const root = parseSettings('\ufeffa\t=\tb\r\nfilelog {\r\n  C::\\log { x = 1 }\r\n}\r\n', 'x.conf');
    assert.equal(root.keys.get('a')!.value, 'b');
    assert.ok(root.sections.get('filelog')!.sections.has('C:\\log'));
  });

  test('section references: inherited settings, own settings win, nested sections merge', () => {
    const root = parseSettings(
      'defaults {\n  a = 1\n  b = 2\n  sub { x = 1\n y = 2 }\n}\nmore { c = 3 }\nconns {\n  one : defaults, more {\n    b = own\n    sub { y = own }\n  }\n}\n',
      'x.conf',
    );
    const one = root.sections.get('conns')!.sections.get('one')!;
    assert.equal(one.keys.get('a')!.value, '1');
    assert.equal(one.keys.get('b')!.value, 'own');
    assert.equal(one.keys.get('c')!.value, '3');
    assert.equal(one.sections.get('sub')!.keys.get('x')!.value, '1');
    assert.equal(one.sections.get('sub')!.keys.get('y')!.value, 'own');
    assert.equal(one.keys.get('a')!.line, 2, 'inherited values keep their own line');
  });

  test('include: glob relative to the including file, sorted, into the current section; quoted names', () => {
    const files: Record<string, string> = {
      '/etc/sw/conf.d/b.conf': 'k = from-b\n',
      '/etc/sw/conf.d/a.conf': 'k = from-a\nonly-a = 1\n',
      '/etc/sw/with space.conf': 'top = 1\n',
    };
    const seen: string[] = [];
    const reader: IncludeReader = (pattern, from) => {
      seen.push(`${pattern} from ${from}`);
      if (pattern === 'conf.d/*.conf') return ['/etc/sw/conf.d/a.conf', '/etc/sw/conf.d/b.conf'].map((f) => ({ file: f, text: files[f]! }));
      if (pattern === 'with space.conf') return [{ file: '/etc/sw/with space.conf', text: files['/etc/sw/with space.conf']! }];
      return [];
    };
    const warnings: string[] = [];
    const root = parseSettings('s {\n  include conf.d/*.conf\n}\ninclude "with space.conf"\ninclude nothing/*.conf\n', '/etc/sw/swanctl.conf', { readInclude: reader, warnings });
    assert.equal(root.sections.get('s')!.keys.get('k')!.value, 'from-b');
    assert.equal(root.sections.get('s')!.keys.get('k')!.file, '/etc/sw/conf.d/b.conf');
    assert.equal(root.sections.get('s')!.keys.get('only-a')!.line, 2);
    assert.equal(root.keys.get('top')!.value, '1');
    assert.deepEqual(seen, ['conf.d/*.conf from /etc/sw/swanctl.conf', 'with space.conf from /etc/sw/swanctl.conf', 'nothing/*.conf from /etc/sw/swanctl.conf']);
    assert.deepEqual(warnings, ['/etc/sw/swanctl.conf:5: include nothing/*.conf: no file matches']);
  });

  test('`include = x` is a key named include', () => {
    const root = parseSettings('include = yes\n', 'x.conf');
    assert.equal(root.keys.get('include')!.value, 'yes');
  });

  const bad: [string, string, number, RegExp][] = [
    ['unexpected }', 'a = 1\n}\n', 2, /unexpected '}'/],
    ['unclosed section (line of the opening)', 'x = 1\ns {\n  a = 1\n', 2, /section 's' opened here is never closed/],
    ['unterminated string (line where it starts)', 'a = 1\nb = "abc\n\n', 2, /unterminated string/],
    ['= without a name', 'x {\n  = 3\n}\n', 2, /unexpected '='/],
    ['a bare name', 'x {\n  lonely\n  y = 1\n}\n', 2, /'lonely' must be followed by '=' .* or '\{'/],
    ['two words before =', 'a b = 1\n', 1, /expected '=' or '\{' after 'a', found 'b'/],
    ['a quote in a name', 'x {\n  "k" = 1\n}\n', 2, /unexpected string/],
    ['{ without a name', '\n{\n}\n', 2, /a section needs a name/],
    ['include with two names', 'include a.conf b.conf\n', 1, /exactly one file name/],
    ['circular references', 'a : b {\n}\nb : a {\n}\n', 1, /circular reference/],
    ['a reference to nothing', 'x {\n  y : nowhere {\n  }\n}\n', 2, /inherits from 'nowhere', which does not exist/],
    ['a reference list ending in a comma', 'a {\n}\nb : a, {\n}\n', 3, /expected the name of a section/],
  ];
  for (const [name, text, line, re] of bad) {
    test(`syntax error: ${name} → x.conf:${line}`, () => {
      rejects(() => parseSettings(text, 'x.conf'), 'PROFILE_SYNTAX', `x.conf:${line}`, re);
    });
  }

  test('errors inside an included file name that file and its line', () => {
    const reader: IncludeReader = () => [{ file: '/d/inc.conf', text: 'ok = 1\nbroken {\n' }];
    rejects(() => parseSettings('a {\n  include inc.conf\n}\n', '/d/main.conf', { readInclude: reader }), 'PROFILE_SYNTAX', '/d/inc.conf:2', /never closed/);
  });

  test('an include that cannot be read is PROFILE_FILE at the include line', () => {
    const reader: IncludeReader = () => {
      throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    };
    rejects(() => parseSettings('\ninclude missing.conf\n', 'm.conf', { readInclude: reader }), 'PROFILE_FILE', 'm.conf:2', /include missing.conf: no such file/);
  });

  test('an include loop is an error, not a hang', () => {
    const reader: IncludeReader = (p) => [{ file: `/d/${p}`, text: p === 'a.conf' ? 'include b.conf\n' : 'include a.conf\n' }];
    rejects(() => parseSettings('include a.conf\n', '/d/main.conf', { readInclude: reader }), 'PROFILE_SYNTAX', '/d/b.conf:1', /includes itself/);
    rejects(() => parseSettings('\ninclude main.conf\n', '/d/main.conf', { readInclude: (p) => [{ file: `/d/${p}`, text: '' }] }), 'PROFILE_SYNTAX', '/d/main.conf:2', /includes itself/);
  });

  test('the file system include reader: relative glob, literal missing file', async () => {
    const c = await loadIpsecConfig(join(FIX, 'included/swanctl.conf'));
    assert.deepEqual([...c.connections.keys()], ['home', 'office']);
    assert.deepEqual(c.connections.get('home')!.remoteAddrs, ['vpn2.example.org']);
    assert.equal(c.connections.get('home')!.locations['remote_addrs'], `${join(FIX, 'included/conf.d/20-office.conf')}:20`);
    assert.equal(Buffer.from(c.secrets.ike[0]!.secret).toString(), 'lab-psk-not-secret');
    rejects(() => parseIpsecConfig('# x\ninclude not-there.conf\n', join(FIX, 'included/x.conf')), 'PROFILE_FILE', `${join(FIX, 'included/x.conf')}:2`, /no such file/);
  });
});

// ------------------------------------------------------------------------------------------------
describe('value syntax', () => {
  test('times: plain seconds, s/m/h/d, hex, blanks before the unit', () => {
    assert.equal(parseTimeValue('30'), 30);
    assert.equal(parseTimeValue('30s'), 30);
    assert.equal(parseTimeValue('5m'), 300);
    assert.equal(parseTimeValue('1h'), 3600);
    assert.equal(parseTimeValue('1d'), 86400);
    assert.equal(parseTimeValue('2H'), 7200);
    assert.equal(parseTimeValue('10 m'), 600);
    assert.equal(parseTimeValue('0x10'), 16);
    for (const bad of ['', 'h', '1.5h', '-1', '1w', '1hs', '1 h x']) assert.equal(parseTimeValue(bad), undefined, bad);
  });

  test('sizes: plain, k/M/G as powers of 1024', () => {
    assert.equal(parseSizeValue('500'), 500);
    assert.equal(parseSizeValue('500k'), 500 * 1024);
    assert.equal(parseSizeValue('10M'), 10 * 1024 * 1024);
    assert.equal(parseSizeValue('1G'), 1024 ** 3);
    assert.equal(parseSizeValue('1g'), 1024 ** 3);
    for (const bad of ['', 'k', '1T', '1.5M', '-3', '99999999999999999999G']) assert.equal(parseSizeValue(bad), undefined, bad);
  });

  test('traffic selectors', () => {
    assert.deepEqual(parseTrafficSelector('10.0.0.0/8'), { raw: '10.0.0.0/8', kind: 'subnet', family: 4, address: '10.0.0.0', prefix: 8 });
    assert.deepEqual(parseTrafficSelector('2001:db8::/32'), { raw: '2001:db8::/32', kind: 'subnet', family: 6, address: '2001:db8::', prefix: 32 });
    assert.equal(parseTrafficSelector('192.0.2.1')!.prefix, 32);
    assert.deepEqual(parseTrafficSelector('dynamic'), { raw: 'dynamic', kind: 'dynamic' });
    assert.deepEqual(parseTrafficSelector('10.0.0.1-10.0.0.9'), { raw: '10.0.0.1-10.0.0.9', kind: 'range', family: 4, from: '10.0.0.1', to: '10.0.0.9' });
    const p = parseTrafficSelector('10.1.0.0/16[tcp/http]')!;
    assert.equal(p.protocol, 6);
    assert.deepEqual(p.ports, { from: 80, to: 80 });
    assert.deepEqual(parseTrafficSelector('dynamic[udp/1000-2000]')!.ports, { from: 1000, to: 2000 });
    assert.equal(parseTrafficSelector('0.0.0.0/0[17/opaque]')!.ports, 'opaque');
    for (const bad of ['10.0.0.0/33', '10.0.0/8', 'host.example', '10.0.0.1-::1', '10.0.0.0/8[bogus]', '1.2.3.4[tcp/99999]', '::/129']) {
      assert.equal(parseTrafficSelector(bad), undefined, bad);
    }
  });

  test('secrets: 0x hex, 0s base64, strings', () => {
    assert.deepEqual([...decodeSecret('0x0102ff')!], [1, 2, 255]);
    assert.deepEqual([...decodeSecret('0x01:02')!], [1, 2]);
    assert.equal(Buffer.from(decodeSecret('0sYWJj')!).toString(), 'abc');
    assert.equal(Buffer.from(decodeSecret('plain text')!).toString(), 'plain text');
    assert.equal(decodeSecret('0xabc'), undefined);
    assert.equal(decodeSecret('0s!!'), undefined);
  });
});

// ------------------------------------------------------------------------------------------------
describe('defaults (swanctl.conf(5))', () => {
  test('IKE lifetimes', () => {
    assert.deepEqual(ikeLifetimes({}), { rekeyTime: 14400, reauthTime: 0, overTime: 1440, randTime: 1440 });
    assert.deepEqual(ikeLifetimes({ reauth: 7200 }), { rekeyTime: 0, reauthTime: 7200, overTime: 720, randTime: 720 });
    assert.deepEqual(ikeLifetimes({ rekey: 600 }), { rekeyTime: 600, reauthTime: 0, overTime: 60, randTime: 60 });
    assert.deepEqual(ikeLifetimes({ rekey: 3600, reauth: 600 }), { rekeyTime: 3600, reauthTime: 600, overTime: 360, randTime: 300 });
    assert.deepEqual(ikeLifetimes({ rekey: 3600, over: 5, rand: 0 }), { rekeyTime: 3600, reauthTime: 0, overTime: 5, randTime: 0 });
  });

  test('CHILD_SA lifetimes', () => {
    assert.deepEqual(childLifetime({}, 3600), { rekey: 3600, life: 3960, rand: 360 });
    assert.deepEqual(childLifetime({ rekey: 1200 }, 3600), { rekey: 1200, life: 1320, rand: 120 });
    // life / 1.1 in floating point, truncated, as strongSwan computes it
    assert.deepEqual(childLifetime({ life: 1100 }, 3600), { rekey: 999, life: 1100, rand: 101 });
    assert.deepEqual(childLifetime({ life: 5500 }, 3600), { rekey: 5000, life: 5500, rand: 500 });
    assert.deepEqual(childLifetime({ rekey: 100, life: 50 }, 3600), { rekey: 100, life: 50, rand: 0 });
    assert.deepEqual(childLifetime({ rekey: 1000, rand: 7 }, 3600), { rekey: 1000, life: 1100, rand: 7 });
    assert.deepEqual(childLifetime({}, 0), { rekey: 0, life: 0, rand: 0 });
  });

  test('a bare connection gets strongSwan defaults', () => {
    const c = ike(conn());
    assert.equal(c.version, 0);
    assert.equal(c.remotePort, 500);
    assert.equal(c.localPort, undefined);
    assert.deepEqual(c.localAddrs, ['%any']);
    assert.deepEqual(c.proposals, ['default']);
    assert.deepEqual(c.vips, []);
    assert.equal(c.encap, false);
    assert.equal(c.mobike, true);
    assert.equal(c.fragmentation, 'yes');
    assert.equal(c.sendCertreq, true);
    assert.equal(c.sendCert, 'ifasked');
    assert.equal(c.keyingtries, 1);
    assert.equal(c.dpdDelay, 0);
    assert.equal(c.rekeyTime, 14400);
    assert.equal(c.local.length, 1);
    assert.equal(c.local[0]!.auth, 'pubkey');
    assert.equal(c.remote[0]!.auth, 'pubkey');
    assert.equal(c.remote[0]!.revocation, 'relaxed');
    const ch = c.children.get('net')!;
    assert.deepEqual(ch.localTs.map((t) => t.kind), ['dynamic']);
    assert.deepEqual(ch.remoteTs.map((t) => t.kind), ['dynamic']);
    assert.deepEqual(ch.espProposals, ['default']);
    assert.equal(ch.mode, 'tunnel');
    assert.deepEqual(ch.lifetime.time, { rekey: 3600, life: 3960, rand: 360 });
    assert.deepEqual(ch.lifetime.bytes, { rekey: 0, life: 0, rand: 0 });
    assert.equal(ch.replayWindow, 32);
    assert.equal(ch.startAction, 'none');
    assert.equal(ch.dpdAction, 'clear');
  });

  test('every supported setting is read', () => {
    const c = ike(
      conn(
        [
          '    version = 2',
          '    local_addrs = 192.0.2.50',
          '    local_port = 0',
          '    remote_port = 4500',
          '    proposals = AES256GCM16-PRFSHA384-ECP384, default',
          '    vips = 0.0.0.0, ::',
          '    encap = yes',
          '    mobike = no',
          '    fragmentation = force',
          '    childless = never',
          '    send_certreq = no',
          '    send_cert = always',
          '    keyingtries = 0',
          '    unique = replace',
          '    dpd_delay = 30s',
          '    dpd_timeout = 2m',
          '    rekey_time = 2h',
          '    reauth_time = 1d',
          '    over_time = 10m',
          '    rand_time = 5m',
          '    local-2 {',
          '      round = 2',
          '      auth = eap-mschapv2',
          '      eap_id = alice',
          '    }',
          '    local-1 {',
          '      round = 1',
          '      auth = rsa/pss-sha256',
          '      certs = me.crt, /abs/other.crt',
          '      id = "CN=me, O=Example"',
          '    }',
          '    remote {',
          '      auth = ike:pubkey-sha384-sha256',
          '      id = gw.example.org',
          '      cacerts = ca.pem',
          '      revocation = strict',
          '      ca_id = CN=Root',
          '    }',
          '',
        ].join('\n'),
        [
          '        local_ts = 10.9.0.0/16[tcp/443]',
          '        remote_ts = 10.0.0.0/8, 172.16.0.0-172.16.0.255',
          '        esp_proposals = aes128gcm16-modp2048-esn',
          '        rekey_time = 20m',
          '        life_time = 30m',
          '        rand_time = 1m',
          '        rekey_bytes = 500M',
          '        life_packets = 1000k',
          '        start_action = start',
          '        dpd_action = restart',
          '        close_action = trap',
          '        replay_window = 1024',
          '        inactivity = 1h',
          '        tfc_padding = mtu',
          '',
        ].join('\n'),
      ),
    );
    assert.equal(c.version, 2);
    assert.deepEqual(c.localAddrs, ['192.0.2.50']);
    assert.equal(c.localPort, 0);
    assert.equal(c.remotePort, 4500);
    assert.deepEqual(c.proposals, ['aes256gcm16-prfsha384-ecp384', 'default']);
    assert.deepEqual(c.vips, ['0.0.0.0', '::']);
    assert.equal(c.encap, true);
    assert.equal(c.mobike, false);
    assert.equal(c.fragmentation, 'force');
    assert.equal(c.childless, 'never');
    assert.equal(c.sendCertreq, false);
    assert.equal(c.sendCert, 'always');
    assert.equal(c.keyingtries, 0);
    assert.equal(c.unique, 'replace');
    assert.equal(c.dpdDelay, 30);
    assert.equal(c.dpdTimeout, 120);
    assert.deepEqual([c.rekeyTime, c.reauthTime, c.overTime, c.randTime], [7200, 86400, 600, 300]);
    assert.deepEqual(c.local.map((r) => r.section), ['local-1', 'local-2'], 'sorted by round');
    assert.equal(c.local[0]!.auth, 'pubkey');
    assert.deepEqual(c.local[0]!.constraints, ['rsa/pss', 'sha256']);
    assert.equal(c.local[0]!.id, 'CN=me, O=Example');
    assert.deepEqual(c.local[0]!.certs, [{ file: join(process.cwd(), 'x509/me.crt') }, { file: '/abs/other.crt' }]);
    assert.equal(c.local[1]!.auth, 'eap');
    assert.equal(c.local[1]!.eapMethod, 'mschapv2');
    assert.equal(c.local[1]!.eapId, 'alice');
    assert.equal(c.remote[0]!.auth, 'pubkey');
    assert.deepEqual(c.remote[0]!.constraints, ['ike:pubkey-sha384-sha256']);
    assert.deepEqual(c.remote[0]!.cacerts, [{ file: join(process.cwd(), 'x509ca/ca.pem') }]);
    assert.equal(c.remote[0]!.revocation, 'strict');
    assert.equal(c.remote[0]!.caId, 'CN=Root');
    const ch = c.children.get('net')!;
    assert.equal(ch.localTs[0]!.protocol, 6);
    assert.deepEqual(ch.remoteTs.map((t) => t.kind), ['subnet', 'range']);
    assert.deepEqual(ch.espProposals, ['aes128gcm16-modp2048-esn']);
    assert.deepEqual(ch.lifetime.time, { rekey: 1200, life: 1800, rand: 60 });
    assert.deepEqual(ch.lifetime.bytes, { rekey: 500 * 1024 ** 2, life: Math.floor(500 * 1024 ** 2 * 1.1), rand: Math.floor(500 * 1024 ** 2 * 1.1) - 500 * 1024 ** 2 });
    assert.deepEqual(ch.lifetime.packets, { rekey: Math.floor(1024000 / 1.1), life: 1024000, rand: 1024000 - Math.floor(1024000 / 1.1) });
    assert.equal(ch.startAction, 'start');
    assert.equal(ch.dpdAction, 'restart');
    assert.equal(ch.closeAction, 'trap');
    assert.equal(ch.replayWindow, 1024);
    assert.equal(ch.inactivity, 3600);
    assert.equal(ch.tfcPadding, 'mtu');
    assert.equal(c.locations['proposals'], 't.conf:7');
  });

  test('an empty assignment keeps the default', () => {
    const c = ike(conn('    remote_port =\n    proposals =\n'));
    assert.equal(c.remotePort, 500);
    assert.deepEqual(c.proposals, ['default']);
  });

  test('a connection inheriting from a template section (strongSwan references)', () => {
    const c = parse('tpl {\n  version = 2\n  proposals = aes128-sha256-x25519\n  local {\n    auth = psk\n  }\n}\nconnections {\n  a : tpl {\n    remote_addrs = 192.0.2.9\n  }\n}\n');
    assert.ok(c.warnings.some((w) => w.startsWith("t.conf:1: section 'tpl' ignored")));
    const a = c.connections.get('a')!;
    assert.equal(a.version, 2);
    assert.deepEqual(a.proposals, ['aes128-sha256-x25519']);
    assert.equal(a.local[0]!.auth, 'psk');
  });

  test('baseDir moves the credential directories', () => {
    const c = parseIpsecConfig(conn('    local {\n      certs = a.crt\n    }\n'), '/etc/swanctl/swanctl.conf', undefined, { baseDir: '/opt/creds' });
    assert.equal(c.dirs.x509, '/opt/creds/x509');
    assert.deepEqual(c.connections.get('c')!.local[0]!.certs, [{ file: '/opt/creds/x509/a.crt' }]);
  });
});

// ------------------------------------------------------------------------------------------------
describe('the lab configurations', () => {
  test('client swanctl.conf (ipsec-lab/cli)', () => {
    const file = join(FIX, 'lab-cli/swanctl.conf');
    const c = parseIpsecConfig(fixture('lab-cli/swanctl.conf'), file);
    assert.deepEqual(c.warnings, []);
    assert.deepEqual([...c.connections.keys()], ['home-psk', 'home-psk-4500', 'home-eap', 'home-cert', 'home-eaponly']);
    const psk = c.connections.get('home-psk')!;
    assert.equal(psk.version, 2);
    assert.deepEqual(psk.remoteAddrs, ['172.31.250.1']);
    assert.equal(psk.remotePort, 500);
    assert.deepEqual(psk.vips, ['0.0.0.0']);
    assert.deepEqual(psk.proposals, ['aes128-sha256-modp2048']);
    assert.equal(psk.local[0]!.auth, 'psk');
    assert.equal(psk.local[0]!.id, 'client.lab');
    assert.equal(psk.remote[0]!.id, 'server.lab');
    assert.deepEqual(psk.children.get('net')!.remoteTs.map((t) => t.raw), ['10.200.0.0/24']);
    assert.deepEqual(psk.children.get('net')!.espProposals, ['aes128gcm16']);
    assert.equal(c.connections.get('home-psk-4500')!.remotePort, 4500);
    assert.deepEqual(c.connections.get('home-psk-4500')!.children.get('net')!.espProposals, ['chacha20poly1305']);
    const eap = c.connections.get('home-eap')!;
    assert.equal(eap.local[0]!.auth, 'eap');
    assert.equal(eap.local[0]!.eapMethod, undefined);
    assert.equal(eap.local[0]!.eapId, 'alice');
    assert.equal(eap.remote[0]!.auth, 'pubkey');
    const cert = c.connections.get('home-cert')!;
    assert.deepEqual(cert.local[0]!.certs, [{ file: join(FIX, 'lab-cli/x509/client.crt') }]);
    assert.equal(cert.local[0]!.id, 'client@lab');
    assert.equal(c.connections.get('home-eaponly')!.remote[0]!.auth, 'eap');
    assert.equal(c.secrets.ike.length, 1);
    assert.deepEqual(c.secrets.ike[0]!.ids, ['server.lab', 'client.lab']);
    assert.equal(Buffer.from(c.secrets.ike[0]!.secret).toString(), 'lab-psk-not-secret');
    assert.deepEqual(c.secrets.eap.map((e) => [e.ids, e.secret]), [[['alice'], 'alice-password']]);
    assert.deepEqual(c.secrets.privateKeys.map((k) => [k.type, k.file]), [['private', join(FIX, 'lab-cli/private/client.key')]]);
    assert.equal(c.dirs.x509ca, join(FIX, 'lab-cli/x509ca'));
  });

  test('responder swanctl.conf (ipsec-lab/srv) parses; pools are warnings', () => {
    const file = join(FIX, 'lab-srv/swanctl.conf');
    const c = parseIpsecConfig(fixture('lab-srv/swanctl.conf'), file);
    assert.deepEqual([...c.connections.keys()], ['rw-psk', 'rw-eap', 'rw-cert', 'rw-eaponly']);
    assert.deepEqual(c.warnings, [
      `${file}:9: connections.rw-psk.pools ignored: address pools are assigned by a responder`,
      `${file}:33: connections.rw-eap.pools ignored: address pools are assigned by a responder`,
      `${file}:58: connections.rw-cert.pools ignored: address pools are assigned by a responder`,
      `${file}:82: connections.rw-eaponly.pools ignored: address pools are assigned by a responder`,
      `${file}:99: pools ignored: address pools are assigned by a responder`,
    ]);
    const psk = c.connections.get('rw-psk')!;
    assert.deepEqual(psk.remoteAddrs, ['%any']);
    assert.equal(psk.encap, true);
    assert.equal(psk.dpdDelay, 30);
    assert.equal(psk.proposals.length, 3);
    assert.deepEqual(psk.children.get('net')!.espProposals, ['aes128gcm16', 'aes128-sha256', 'chacha20poly1305']);
    const eap = c.connections.get('rw-eap')!;
    assert.equal(eap.sendCertreq, false);
    assert.equal(eap.remote[0]!.eapMethod, 'mschapv2');
    assert.equal(eap.remote[0]!.eapId, '%any');
    assert.deepEqual(eap.local[0]!.certs, [{ file: join(FIX, 'lab-srv/x509/server.crt') }]);
  });

  test('findConnection', async () => {
    const c = await loadIpsecConfig(join(FIX, 'lab-cli/swanctl.conf'));
    assert.equal(findConnection(c, 'home-cert').name, 'home-cert');
    const many = catchErr(() => findConnection(c));
    assert.equal(many.code, 'USAGE');
    assert.equal(exitCodeFor(many), 2);
    assert.match(many.message, /5 connections \(home-psk, home-psk-4500, home-eap, home-cert, home-eaponly\); choose one with --connection NAME/);
    const none = catchErr(() => findConnection(c, 'nope'));
    assert.match(none.message, /no connection named 'nope' \(it has home-psk, home-psk-4500, home-eap, home-cert, home-eaponly\)/);
    const m = parseIpsecConfig(fixture('manual.conf'), 'manual.conf');
    assert.equal((findConnection(m, 'lab') as ManualConnection).kind, 'manual');
    const one = parse(conn());
    assert.equal(findConnection(one).name, 'c');
    assert.equal(catchErr(() => findConnection(parse('# nothing\n'))).code, 'PROFILE_SYNTAX');
  });

  test('loadIpsecConfig: a missing file is PROFILE_FILE; .sswan files are recognised', async () => {
    await assert.rejects(loadIpsecConfig(join(FIX, 'nope.conf')), (e: unknown) => e instanceof VpnError && e.code === 'PROFILE_FILE' && /no such file/.test(e.message));
    const s = await loadIpsecConfig(join(FIX, 'sswan/eap.sswan'));
    assert.deepEqual([...s.connections.keys()], ['Example EAP']);
  });
});

// ------------------------------------------------------------------------------------------------
describe('connection errors (one each, exact file:line)', () => {
  const cases: [string, string, ErrorCode, number, RegExp][] = [
    ['IKEv1', conn('    version = 1\n'), 'PROFILE_UNSUPPORTED', 3, /connections\.c\.version = 1: IKEv1 is not supported/],
    ['bad version', conn('    version = 3\n'), 'PROFILE_SYNTAX', 3, /expected 0 or 2/],
    ['unknown setting', conn('    colour = blue\n'), 'PROFILE_SYNTAX', 3, /connections\.c\.colour: unknown setting/],
    ['unknown section', conn('    extra {\n    }\n'), 'PROFILE_SYNTAX', 3, /connections\.c\.extra: unknown section/],
    ['bad remote_port', conn('    remote_port = 70000\n'), 'PROFILE_SYNTAX', 3, /remote_port = 70000: expected an integer from 1 to 65535/],
    ['bad time', conn('    dpd_delay = 30 minutes\n'), 'PROFILE_SYNTAX', 3, /dpd_delay = 30 minutes: expected a time/],
    ['bad bool', conn('    encap = maybe\n'), 'PROFILE_SYNTAX', 3, /encap = maybe: expected yes or no/],
    ['bad choice', conn('    fragmentation = sometimes\n'), 'PROFILE_SYNTAX', 3, /expected one of yes, accept, force, no/],
    ['bad proposals', conn('    proposals = aes128--sha256\n'), 'PROFILE_SYNTAX', 3, /proposals = aes128--sha256/],
    ['bad vips', conn('    vips = me\n'), 'PROFILE_SYNTAX', 3, /'me' is not an IP address/],
    ['aggressive mode', conn('    aggressive = yes\n'), 'PROFILE_UNSUPPORTED', 3, /Aggressive Mode/],
    ['push mode', conn('    pull = no\n'), 'PROFILE_UNSUPPORTED', 3, /push mode/],
    ['mediation', conn('    mediation = yes\n'), 'PROFILE_UNSUPPORTED', 3, /mediation/],
    ['PPK required', conn('    ppk_required = yes\n'), 'PROFILE_UNSUPPORTED', 3, /RFC 8784/],
    ['xauth', conn('    local {\n      auth = xauth-pam\n    }\n'), 'PROFILE_UNSUPPORTED', 4, /XAuth belongs to IKEv1/],
    ['EAP-TLS', conn('    local {\n      auth = eap-tls\n    }\n'), 'PROFILE_UNSUPPORTED', 4, /EAP-TLS is not supported \(supported: eap-mschapv2 or plain eap\)/],
    ['unknown EAP method', conn('    local {\n      auth = eap-magic\n    }\n'), 'PROFILE_SYNTAX', 4, /unknown EAP method 'magic'/],
    ['vendor EAP', conn('    local {\n      auth = eap-192-3\n    }\n'), 'PROFILE_UNSUPPORTED', 4, /vendor EAP/],
    ['unknown auth', conn('    remote {\n      auth = password\n    }\n'), 'PROFILE_SYNTAX', 4, /unknown authentication method/],
    ['raw public keys', conn('    local {\n      pubkeys = a.pub\n    }\n'), 'PROFILE_UNSUPPORTED', 4, /raw public keys/],
    ['PKCS#11 certificate section', conn('    local {\n      cert-token {\n        handle = 01\n      }\n    }\n'), 'PROFILE_UNSUPPORTED', 4, /PKCS#11/],
    ['groups', conn('    remote {\n      groups = staff\n    }\n'), 'PROFILE_UNSUPPORTED', 4, /authorization groups/],
    ['groups on local is unknown', conn('    local {\n      groups = staff\n    }\n'), 'PROFILE_SYNTAX', 4, /connections\.c\.local\.groups: unknown setting/],
    ['bad round', conn('    local {\n      round = first\n    }\n'), 'PROFILE_SYNTAX', 4, /round = first/],
    ['transport mode', conn('', '        mode = transport\n'), 'PROFILE_UNSUPPORTED', 6, /children\.net\.mode = transport: only tunnel mode is supported/],
    ['pass mode', conn('', '        mode = pass\n'), 'PROFILE_UNSUPPORTED', 6, /only tunnel mode/],
    ['unknown mode', conn('', '        mode = sideways\n'), 'PROFILE_SYNTAX', 6, /expected one of tunnel/],
    ['AH', conn('', '        ah_proposals = sha256\n'), 'PROFILE_UNSUPPORTED', 6, /AH is not supported/],
    ['IPComp', conn('', '        ipcomp = yes\n'), 'PROFILE_UNSUPPORTED', 6, /IPComp/],
    ['sha256_96', conn('', '        sha256_96 = yes\n'), 'PROFILE_UNSUPPORTED', 6, /96 bits/],
    ['bad traffic selector', conn('', '        remote_ts = 10.0.0.0/40\n'), 'PROFILE_SYNTAX', 6, /'10\.0\.0\.0\/40' is not a traffic selector/],
    ['bad size', conn('', '        rekey_bytes = 5T\n'), 'PROFILE_SYNTAX', 6, /rekey_bytes = 5T: expected a number, optionally with k, M or G/],
    ['bad replay_window', conn('', '        replay_window = 99999\n'), 'PROFILE_SYNTAX', 6, /from 0 to 4096/],
    ['unknown child setting', conn('', '        esp = aes\n'), 'PROFILE_SYNTAX', 6, /children\.net\.esp: unknown setting/],
    ['setting directly in children', 'connections {\n  c {\n    children {\n      x = 1\n    }\n  }\n}\n', 'PROFILE_SYNTAX', 4, /one section per CHILD_SA/],
    ['setting directly in connections', 'connections {\n  x = 1\n}\n', 'PROFILE_SYNTAX', 2, /one section per connection/],
  ];
  for (const [name, text, code, line, re] of cases) {
    test(`${name} → t.conf:${line}`, () => {
      const e = rejects(() => parse(text), code, `t.conf:${line}`, re);
      assert.equal(exitCodeFor(e), 2);
    });
  }

  test('irrelevant settings are warnings with file:line', () => {
    const c = parse(
      conn(
        '    dscp = 101000\n    pools = p\n    if_id_in = 1\n    ppk_id = me\n    local {\n      xauth_id = me\n    }\n',
        '        updown = /usr/lib/ipsec/_updown\n        hw_offload = yes\n        policies = no\n        priority = 10\n        start_action = trap\n        mark_in = 5\n        hostaccess = yes\n        copy_df = no\n',
      ),
    );
    assert.deepEqual(c.warnings, [
      't.conf:3: connections.c.dscp ignored: DSCP marking of IKE packets is not supported',
      't.conf:4: connections.c.pools ignored: address pools are assigned by a responder',
      't.conf:5: connections.c.if_id_in ignored: only meaningful for the kernel IPsec stack, which a userspace client does not use',
      't.conf:6: connections.c.ppk_id ignored: post-quantum preshared keys (RFC 8784) are not supported',
      't.conf:8: connections.c.local.xauth_id ignored: XAuth belongs to IKEv1',
      't.conf:13: connections.c.children.net.updown ignored: scripts are never run',
      't.conf:14: connections.c.children.net.hw_offload ignored: only meaningful for the kernel IPsec stack, which a userspace client does not use',
      't.conf:15: connections.c.children.net.policies ignored: only meaningful for the kernel IPsec stack, which a userspace client does not use',
      't.conf:16: connections.c.children.net.priority ignored: only meaningful for the kernel IPsec stack, which a userspace client does not use',
      't.conf:17: connections.c.children.net.start_action = trap: trap policies are not supported; the tunnel is started on connect',
      't.conf:18: connections.c.children.net.mark_in ignored: only meaningful for the kernel IPsec stack, which a userspace client does not use',
      't.conf:19: connections.c.children.net.hostaccess ignored: only used by updown scripts',
      't.conf:20: connections.c.children.net.copy_df ignored: only meaningful for the kernel IPsec stack, which a userspace client does not use',
    ]);
    assert.equal(c.connections.get('c')!.children.get('net')!.startAction, 'trap');
  });

  test('disabled unsupported features are fine', () => {
    const c = ike(conn('    aggressive = no\n    pull = yes\n    mediation = no\n', '        ipcomp = no\n        sha256_96 = no\n        mode = tunnel\n'));
    assert.equal(c.children.get('net')!.mode, 'tunnel');
  });

  test('unknown top-level sections and top-level keys are warnings', () => {
    const c = parse('stray = 1\nconnection {\n}\n');
    assert.deepEqual(c.warnings, [
      't.conf:1: stray ignored: settings outside a section are not read by swanctl',
      "t.conf:2: section 'connection' ignored: swanctl.conf has connections, secrets, authorities, pools (and our manual)",
    ]);
  });

  test('a quoted value with a newline stays on one line in the message', () => {
    rejects(() => parse(conn('    version = "1\n2"\n')), 'PROFILE_SYNTAX', 't.conf:3', /version = 1\\n2: expected 0 or 2/);
  });
});

// ------------------------------------------------------------------------------------------------
describe('secrets and authorities', () => {
  test('every kind of secret', () => {
    const c = parse(
      [
        'secrets {',
        '  ike-1 {',
        '    id-a = a.example',
        '    id-b = b.example',
        '    secret = 0x0102030405',
        '  }',
        '  ike {',
        '    secret = "a shared secret"',
        '  }',
        '  eap-carol {',
        '    id = carol',
        '    secret = 0sc2VjcmV0',
        '  }',
        '  xauth-dave {',
        '    id = dave',
        '    secret = pw',
        '  }',
        '  ntlm-erin {',
        '    id = erin',
        '    secret = 0x000102030405060708090a0b0c0d0e0f',
        '  }',
        '  private-key {',
        '    file = my.key',
        '    secret = "pass phrase"',
        '  }',
        '  pkcs12-me {',
        '    file = /abs/me.p12',
        '  }',
        '  ppk-x {',
        '    secret = 0x00',
        '  }',
        '}',
        'authorities {',
        '  ca {',
        '    cacert = ca.pem',
        '    crl_uris = http://crl.example/ca.crl, file:///x.crl',
        '    ocsp_uris = http://ocsp.example',
        '  }',
        '}',
      ].join('\n'),
    );
    assert.deepEqual(c.secrets.ike.map((s) => [s.name, s.ids, [...s.secret]]), [
      ['ike-1', ['a.example', 'b.example'], [1, 2, 3, 4, 5]],
      ['ike', [], [...Buffer.from('a shared secret')]],
    ]);
    assert.deepEqual(c.secrets.eap.map((s) => [s.name, s.ids, s.secret]), [
      ['eap-carol', ['carol'], 'secret'],
      ['xauth-dave', ['dave'], 'pw'],
    ]);
    assert.equal(c.secrets.ntlm[0]!.hash.length, 16);
    assert.deepEqual(c.secrets.privateKeys.map((k) => [k.type, k.file, k.passphrase]), [
      ['private', join(process.cwd(), 'private/my.key'), 'pass phrase'],
      ['pkcs12', '/abs/me.p12', undefined],
    ]);
    assert.equal(c.secrets.ike[0]!.where, 't.conf:2');
    assert.deepEqual(c.warnings, ['t.conf:29: secrets.ppk-x ignored: post-quantum preshared keys (RFC 8784) are not supported']);
    const ca = c.authorities.get('ca')!;
    assert.equal(ca.cacert, join(process.cwd(), 'x509ca/ca.pem'));
    assert.deepEqual(ca.crlUris, ['http://crl.example/ca.crl', 'file:///x.crl']);
    assert.deepEqual(ca.ocspUris, ['http://ocsp.example']);
  });

  const cases: [string, string, ErrorCode, number, RegExp][] = [
    ['missing secret', 'secrets {\n  ike-x {\n    id = a\n  }\n}\n', 'PROFILE_SYNTAX', 2, /secrets\.ike-x: missing secret/],
    ['bad hex', 'secrets {\n  ike-x {\n    secret = 0xabc\n  }\n}\n', 'PROFILE_SYNTAX', 3, /malformed hex/],
    ['bad base64', 'secrets {\n  eap-x {\n\n    secret = 0s###\n  }\n}\n', 'PROFILE_SYNTAX', 4, /malformed base64/],
    ['unknown key in a secret', 'secrets {\n  ike-x {\n    secret = a\n    pin = 1\n  }\n}\n', 'PROFILE_SYNTAX', 4, /secrets\.ike-x\.pin: unknown setting/],
    ['unknown kind', 'secrets {\n  password-x {\n  }\n}\n', 'PROFILE_SYNTAX', 2, /unknown kind of secret/],
    ['token', 'secrets {\n  token-x {\n    handle = 01\n  }\n}\n', 'PROFILE_UNSUPPORTED', 2, /PKCS#11/],
    ['NT hash of the wrong size', 'secrets {\n  ntlm-x {\n    secret = 0x0011\n  }\n}\n', 'PROFILE_SYNTAX', 3, /16 bytes, got 2/],
    ['NT hash as a string', 'secrets {\n  ntlm-x {\n    secret = password\n  }\n}\n', 'PROFILE_SYNTAX', 3, /NT hash/],
    ['private key without file', 'secrets {\n  private-x {\n    secret = pw\n  }\n}\n', 'PROFILE_SYNTAX', 2, /missing file/],
    ['setting directly in secrets', 'secrets {\n  secret = x\n}\n', 'PROFILE_SYNTAX', 2, /secrets\.secret: unknown setting/],
    ['authority on a token', 'authorities {\n  a {\n    handle = 0102\n  }\n}\n', 'PROFILE_UNSUPPORTED', 3, /PKCS#11/],
  ];
  for (const [name, text, code, line, re] of cases) {
    test(`${name} → t.conf:${line}`, () => {
      rejects(() => parse(text), code, `t.conf:${line}`, re);
    });
  }
});

// ------------------------------------------------------------------------------------------------
describe('manual SAs', () => {
  test('the fixture (issue 12 layout)', () => {
    const c = parseIpsecConfig(fixture('manual.conf'), 'manual.conf');
    assert.deepEqual(c.warnings, []);
    const lab = c.manual.get('lab')!;
    assert.equal(lab.kind, 'manual');
    assert.deepEqual(lab.remoteAddrs, ['192.0.2.10']);
    assert.equal(lab.remotePort, 4500);
    assert.equal(lab.localPort, 0);
    assert.equal(lab.vip, '10.203.0.9');
    assert.deepEqual(lab.localTs, [{ address: '10.203.0.9', prefix: 32 }]);
    assert.deepEqual(lab.remoteTs, [
      { address: '10.200.0.0', prefix: 24 },
      { address: '10.201.0.0', prefix: 16 },
    ]);
    assert.deepEqual(lab.dns, ['10.200.0.53']);
    assert.equal(lab.keepAlive, 20);
    assert.equal(lab.out.spi, 0xc1000001);
    assert.equal(lab.out.suite.name, 'aes128gcm16');
    assert.equal(lab.out.encKey.length, 20);
    assert.equal(lab.out.encKey[19], 0x13);
    assert.equal(lab.out.integKey.length, 0);
    assert.equal(lab.out.esn, false);
    assert.equal(lab.out.replayWindow, 128);
    assert.equal(lab.in.replayWindow, 256);
    assert.equal(lab.in.where, 'manual.conf:13');
    assert.deepEqual(lab.in.lifetime, { rekeyTime: 0, lifeTime: 0, rekeyBytes: 0, lifeBytes: 0, rekeyPackets: 0, lifePackets: 0 });
    const cbc = c.manual.get('lab-cbc')!;
    assert.deepEqual(cbc.remoteAddrs, ['gw.example.net']);
    assert.equal(cbc.remotePort, 14500);
    assert.equal(cbc.out.spi, 3238002689);
    assert.equal(cbc.out.suite.name, 'aes256-sha256');
    assert.equal(cbc.out.esn, true);
    assert.equal(cbc.in.esn, true);
    assert.equal(cbc.out.encKey.length, 32);
    assert.equal(cbc.out.integKey.length, 32);
    assert.deepEqual(cbc.out.lifetime, { rekeyTime: 3000, lifeTime: 3600, rekeyBytes: 0, lifeBytes: 0, rekeyPackets: 0, lifePackets: 0 });
    assert.deepEqual(cbc.in.lifetime, { rekeyTime: 3000, lifeTime: 3600, rekeyBytes: 900 * 1024 ** 2, lifeBytes: 1024 ** 3, rekeyPackets: 0, lifePackets: 0 });
  });

  const hex = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff)).toString('hex');
  for (const [kw, s] of Object.entries(ESP_SUITES)) {
    test(`manual SA with ${kw}`, () => {
      const block = (spi: string, seed: number) =>
        [`    esp = ${kw}`, `    spi = ${spi}`, s.cipher !== 'null' ? `    enc_key = 0x${hex(s.encKeyBytes + s.saltBytes, seed)}` : '', s.aead ? '' : `    integ_key = ${hex(s.integKeyBytes, seed + 1)}`]
          .filter((l) => l !== '')
          .join('\n');
      const c = parse(`manual {\n m {\n  remote_addrs = 192.0.2.1\n  vip = 10.0.0.2\n  remote_ts = 10.1.0.0/16\n  out {\n${block('0x1000', 1)}\n  }\n  in {\n${block('4097', 9)}\n  }\n }\n}\n`);
      const m = c.manual.get('m')!;
      assert.equal(m.out.suite, s);
      assert.equal(m.out.spi, 0x1000);
      assert.equal(m.in.spi, 4097);
      assert.equal(m.out.encKey.length, s.encKeyBytes + s.saltBytes);
      assert.equal(m.out.integKey.length, s.integKeyBytes);
      assert.equal(Buffer.from(m.in.encKey).toString('hex'), s.cipher === 'null' ? '' : hex(s.encKeyBytes + s.saltBytes, 9));
      assert.equal(m.in.esn, false);
    });
  }

  test('the suite table matches RFC 4106 / 7634 / 4868 sizes', () => {
    assert.equal(ESP_SUITES['aes256gcm16']!.encKeyBytes + ESP_SUITES['aes256gcm16']!.saltBytes, 36);
    assert.equal(ESP_SUITES['aes192gcm8']!.icvBytes, 8);
    assert.equal(ESP_SUITES['chacha20poly1305']!.encKeyBytes + ESP_SUITES['chacha20poly1305']!.saltBytes, 36);
    assert.deepEqual(
      ['aes128-sha1', 'aes128-sha256', 'aes128-sha384', 'aes128-sha512'].map((k) => [ESP_SUITES[k]!.integKeyBytes, ESP_SUITES[k]!.icvBytes]),
      [[20, 12], [32, 16], [48, 24], [64, 32]],
    );
  });

  /** A valid manual section; `outExtra` lines start at line 7, in the out block. */
  const man = (top = '', outExtra = '', inBlock = '  in {\n    spi = 0x2000\n    esp = aes128gcm16\n    enc_key = 0x' + '11'.repeat(20) + '\n  }\n') =>
    `manual {\n m {\n  remote_addrs = 192.0.2.1\n  vip = 10.0.0.2\n  remote_ts = 10.1.0.0/16\n${top}  out {\n${outExtra}    spi = 0x1000\n    esp = aes128gcm16\n    enc_key = 0x${'22'.repeat(20)}\n  }\n${inBlock} }\n}\n`;

  test('the template is valid', () => {
    assert.equal(parse(man()).manual.get('m')!.out.spi, 0x1000);
  });

  const cases: [string, string, ErrorCode, number, RegExp][] = [
    ['missing out block', 'manual {\n m {\n  remote_addrs = 192.0.2.1\n  vip = 10.0.0.2\n  remote_ts = 10.1.0.0/16\n  in {\n  }\n }\n}\n', 'PROFILE_SYNTAX', 2, /manual\.m: missing out \{ \.\.\. \} block/],
    ['missing in block', man('', '', ''), 'PROFILE_SYNTAX', 2, /manual\.m: missing in \{ \.\.\. \} block/],
    ['missing vip', 'manual {\n m {\n  remote_addrs = 192.0.2.1\n }\n}\n', 'PROFILE_SYNTAX', 2, /missing vip/],
    ['missing remote_addrs', 'manual {\n m {\n  vip = 10.0.0.1\n }\n}\n', 'PROFILE_SYNTAX', 2, /missing remote_addrs/],
    ['missing remote_ts', 'manual {\n m {\n  remote_addrs = 192.0.2.1\n  vip = 10.0.0.1\n }\n}\n', 'PROFILE_SYNTAX', 2, /missing remote_ts/],
    ['IPv6 vip', man('  vip = 2001:db8::1\n'), 'PROFILE_UNSUPPORTED', 6, /IPv4 only/],
    ['bad vip', man('  vip = me\n'), 'PROFILE_SYNTAX', 6, /vip = me/],
    ['bad remote_ts', man('  remote_ts = 10.1.0.0/16, nowhere\n'), 'PROFILE_SYNTAX', 6, /'nowhere' is not an IPv4 subnet/],
    ['%any gateway', man('  remote_addrs = %any\n'), 'PROFILE_SYNTAX', 6, /not a gateway address/],
    ['bad dns', man('  dns = resolver\n'), 'PROFILE_SYNTAX', 6, /'resolver' is not an IP address/],
    ['unknown connection setting', man('  pfs = yes\n'), 'PROFILE_SYNTAX', 6, /manual\.m\.pfs: unknown setting/],
    ['unknown block', man('  fwd {\n  }\n'), 'PROFILE_SYNTAX', 6, /manual\.m\.fwd: unknown section/],
    ['unknown block setting', man('', '    mode = tunnel\n'), 'PROFILE_SYNTAX', 7, /manual\.m\.out\.mode: unknown setting/],
    ['SPI 0', man('', '    spi = 0\n').replace('    spi = 0x1000\n', ''), 'PROFILE_SYNTAX', 7, /SPI 0 is reserved/],
    ['SPI below 256', man('', '    spi = 255\n').replace('    spi = 0x1000\n', ''), 'PROFILE_SYNTAX', 7, /SPIs 1 to 255 are reserved/],
    ['SPI above 32 bits', man('', '    spi = 0x100000000\n').replace('    spi = 0x1000\n', ''), 'PROFILE_SYNTAX', 7, /32 bits/],
    ['SPI not a number', man('', '    spi = first\n').replace('    spi = 0x1000\n', ''), 'PROFILE_SYNTAX', 7, /expected a number/],
    ['missing spi', man().replace('    spi = 0x1000\n', ''), 'PROFILE_SYNTAX', 6, /manual\.m\.out: missing spi/],
    ['missing esp', man().replace('    esp = aes128gcm16\n', ''), 'PROFILE_SYNTAX', 6, /manual\.m\.out: missing esp/],
    ['unknown ESP keyword', man().replace('esp = aes128gcm16', 'esp = aes128ccm16'), 'PROFILE_SYNTAX', 8, /unknown ESP algorithm/],
    ['GCM key without salt', man().replace('22'.repeat(20), '22'.repeat(16)), 'PROFILE_SYNTAX', 9, /aes128gcm16 needs 20 bytes \(16-byte key \+ 4-byte salt\), got 16/],
    ['missing enc_key', man().replace(`    enc_key = 0x${'22'.repeat(20)}\n`, ''), 'PROFILE_SYNTAX', 6, /missing enc_key/],
    ['malformed hex', man().replace('22'.repeat(20), 'zz'.repeat(20)), 'PROFILE_SYNTAX', 9, /expected hex bytes/],
    ['odd hex', man().replace('22'.repeat(20), '2'.repeat(39)), 'PROFILE_SYNTAX', 9, /expected hex bytes/],
    ['integ_key for AEAD', man('', '    integ_key = 0x00\n'), 'PROFILE_SYNTAX', 7, /AEAD algorithm and takes no integ_key/],
    ['CBC without integ_key', man().replace('esp = aes128gcm16', 'esp = aes128-sha256').replace('22'.repeat(20), '22'.repeat(16)), 'PROFILE_SYNTAX', 6, /missing integ_key = 0x… \(32 bytes for aes128-sha256\)/],
    ['CBC integ_key of the wrong size', man('', '    integ_key = 0x' + '00'.repeat(20) + '\n').replace('esp = aes128gcm16', 'esp = aes128-sha256').replace('22'.repeat(20), '22'.repeat(16)), 'PROFILE_SYNTAX', 7, /needs 32 bytes \(HMAC-SHA256 key\), got 20/],
    ['CBC enc_key of the wrong size', man('', '    integ_key = 0x' + '00'.repeat(32) + '\n').replace('esp = aes128gcm16', 'esp = aes256-sha256').replace('22'.repeat(20), '22'.repeat(16)), 'PROFILE_SYNTAX', 10, /aes256-sha256 needs 32 bytes \(32-byte key\), got 16/],
    ['enc_key with NULL', man('', '    integ_key = 0x' + '00'.repeat(32) + '\n').replace('esp = aes128gcm16', 'esp = null-sha256'), 'PROFILE_SYNTAX', 10, /null-sha256 has no encryption key/],
    ['replay window too small', man().replace('  in {\n', '  in {\n    replay_window = 16\n'), 'PROFILE_SYNTAX', 12, /replay_window = 16: expected an integer from 32 to 4096/],
    ['replay window too big', man().replace('  in {\n', '  in {\n    replay_window = 8192\n'), 'PROFILE_SYNTAX', 12, /from 32 to 4096/],
    ['ESN contradiction', man('', '    esn = no\n').replace('esp = aes128gcm16', 'esp = aes128gcm16-esn'), 'PROFILE_SYNTAX', 7, /esn = no contradicts esp = aes128gcm16-esn/],
    ['rekey after life', man('  life_time = 1h\n  rekey_time = 2h\n'), 'PROFILE_SYNTAX', 8, /manual\.m\.out: rekey_time \(7200\) must be below life_time \(3600\)/],
    ['a block with a subsection', man('', '    extra {\n    }\n'), 'PROFILE_SYNTAX', 7, /manual\.m\.out\.extra: unknown section/],
    ['same name as an IKE connection', man() + 'connections {\n m {\n }\n}\n', 'PROFILE_SYNTAX', 2, /names must be unique/],
  ];
  for (const [name, text, code, line, re] of cases) {
    test(`${name} → t.conf:${line}`, () => {
      rejects(() => parse(text), code, `t.conf:${line}`, re);
    });
  }

  test('replay_window in an out block is a warning', () => {
    const c = parse(man('', '    replay_window = 64\n'));
    assert.deepEqual(c.warnings, ['t.conf:7: manual.m.out.replay_window ignored: the replay window applies to inbound SAs']);
  });

  test('optional settings: local_ts, local_port, keep_alive, -esn / esn = yes', () => {
    const c = parse(man('  local_ts = 10.0.0.0/24\n  local_port = 40000\n  keep_alive = 0\n', '    esn = yes\n'));
    const m = c.manual.get('m')!;
    assert.deepEqual(m.localTs, [{ address: '10.0.0.0', prefix: 24 }]);
    assert.equal(m.localPort, 40000);
    assert.equal(m.keepAlive, 0);
    assert.equal(m.out.esn, true);
    assert.equal(m.in.esn, false);
  });
});
