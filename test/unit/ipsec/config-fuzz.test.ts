import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { VpnError } from '../../../src/errors.js';
import { parseIpsecConfig } from '../../../src/ipsec/config.js';
import type { IncludeReader } from '../../../src/ipsec/settings.js';
import { parseSswan } from '../../../src/ipsec/sswan.js';

const FIX = fileURLToPath(new URL('../../fixtures/ipsec/', import.meta.url));
const read = (p: string) => readFileSync(join(FIX, p), 'utf8');
const confs = ['lab-cli/swanctl.conf', 'lab-srv/swanctl.conf', 'manual.conf', 'included/swanctl.conf', 'included/conf.d/10-home.conf', 'included/conf.d/20-office.conf'].map(read);
const sswans = readdirSync(join(FIX, 'sswan'))
  .filter((f) => f.endsWith('.sswan'))
  .map((f) => read(`sswan/${f}`));

const includes: Record<string, string> = {
  'x.conf': 'k = v\nconnections {\n  i {\n    remote_addrs = 192.0.2.7\n  }\n}\n',
  'bad.conf': 'unclosed {\n',
  'self.conf': 'include self.conf\n',
};
const readInclude: IncludeReader = (pattern) => {
  if (pattern.includes('*')) return Object.keys(includes).filter((k) => k !== 'self.conf').map((k) => ({ file: `/fz/${k}`, text: includes[k]! }));
  const t = includes[pattern];
  if (t === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  return [{ file: `/fz/${pattern}`, text: t }];
};

const snippets = [
  '{', '}', '"', '\\', '#', '=', ':', ',', '::', '\n', '\r\n', '\t', ' ', '\0', '\ufeff', '"\\', '\\\n', 'include x.conf\n', 'include *.conf\n',
  'include bad.conf\n', 'include self.conf\n', 'include missing.conf\n', 'include\n', 'version = 1\n', 'version = 2\n', 'mode = transport\n',
  'esp = aes128gcm16\n', 'esp = aes256-sha512-esn\n', 'esp = null-sha256\n', 'spi = 0\n', 'spi = 0xffffffffff\n', 'enc_key = 0x00\n', 'integ_key = 0x11:22\n',
  'a : b {\n', 'x : connections.home-psk {\n', 'secret = 0s\n', 'secret = 0x\n', 'local {\n', 'remote-2 {\n', 'children {\n', 'manual {\n', 'connections {\n',
  'secrets {\n', 'ike-x {\n', 'ntlm-y {\n', 'out {\n', 'in {\n', 'rekey_time = 99999999999999999999d\n', 'life_bytes = 18446744073709551616G\n',
  'remote_ts = 10.0.0.0/8[tcp/http]\n', 'local_ts = dynamic[udp/1-65535]\n', 'auth = eap-tls\n', 'auth = pubkey-sha256\n', 'auth = ike:rsa/pss-sha384\n',
  'replay_window = 64\n', 'vip = 10.0.0.1\n', 'vip = ::1\n', 'remote_addrs = %any\n', 'certs = /x.crt, y.crt\n', 'pools = p\n', 'hw_offload = yes\n',
  'start_action = trap|start\n', 'tfc_padding = mtu\n', 'esn = maybe\n', '__proto__ = 1\n', 'constructor {\n', 'toString = x\n', 'hasOwnProperty {\n',
];

function mutate(bases: string[], snip: readonly string[]) {
  return fc
    .tuple(fc.constantFrom(...bases), fc.array(fc.tuple(fc.nat(), fc.nat(40), fc.oneof(fc.constantFrom(...snip), fc.string({ maxLength: 12 }))), { maxLength: 6 }))
    .map(([base, edits]) => {
      let s = base;
      for (const [at, del, ins] of edits) {
        const i = at % (s.length + 1);
        s = s.slice(0, i) + ins + s.slice(i + del);
      }
      return s;
    });
}

function checkError(e: unknown): void {
  assert.ok(e instanceof VpnError, `non-VpnError thrown: ${String(e)} ${(e as Error)?.stack ?? ''}`);
  assert.ok(['PROFILE_SYNTAX', 'PROFILE_UNSUPPORTED', 'PROFILE_FILE'].includes(e.code), `${e.code}: ${e.message}`);
  assert.match(e.message, /^[^\n]*:\d+: /, `no file:line in: ${e.message}`);
  assert.ok(!e.message.includes('\n'), `multi-line message: ${JSON.stringify(e.message)}`);
  assert.ok(!e.message.includes('internal error'), e.message);
}

test('random and mutated swanctl.conf text only ever raises PROFILE_* errors with file:line, quickly', () => {
  let ok = 0;
  let failed = 0;
  const lines = fc.array(fc.oneof(fc.constantFrom(...snippets), fc.string({ maxLength: 20 })), { maxLength: 40 }).map((a) => a.join(''));
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 400 }), mutate(confs, snippets), lines), (text) => {
      const t0 = performance.now();
      try {
        const c = parseIpsecConfig(text, '/fz/fuzz.conf', readInclude);
        for (const w of c.warnings) assert.match(w, /^[^\n]*:\d+: /);
        ok++;
      } catch (e) {
        failed++;
        checkError(e);
      }
      assert.ok(performance.now() - t0 < 500, 'parse took too long');
    }),
    { numRuns: 2000 },
  );
  assert.ok(ok > 0 && failed > 0, `ok=${ok} failed=${failed}`);
});

test('random and mutated .sswan profiles only ever raise PROFILE_* errors with file:line', () => {
  let ok = 0;
  let failed = 0;
  const jsonSnippets = ['{', '}', '[', ']', '"', ',', ':', '\\', '\\u00', 'null', 'true', '1e999', '-0', '"type": "ikev2-cert",', '"remote": {}', '"port": 70000,', '"cert": "@",', '\n'];
  const structured = fc
    .record(
      {
        uuid: fc.oneof(fc.uuid(), fc.string()),
        name: fc.oneof(fc.string(), fc.integer()),
        type: fc.oneof(fc.constantFrom('ikev2-eap', 'ikev2-cert', 'ikev2-cert-eap', 'ikev2-eap-tls', 'ikev2-psk'), fc.string()),
        remote: fc.oneof(fc.record({ addr: fc.oneof(fc.domain(), fc.ipV4(), fc.string()), port: fc.oneof(fc.integer(), fc.string()), cert: fc.base64String(), certreq: fc.anything() }, { requiredKeys: [] }), fc.anything()),
        local: fc.oneof(fc.record({ eap_id: fc.string(), id: fc.anything(), p12: fc.oneof(fc.base64String(), fc.string()), 'rsa-pss': fc.anything() }, { requiredKeys: [] }), fc.anything()),
        'ike-proposal': fc.oneof(fc.constantFrom('aes256-sha256-modp2048', 'default'), fc.string()),
        'dns-servers': fc.oneof(fc.array(fc.oneof(fc.ipV4(), fc.ipV6(), fc.string())), fc.string(), fc.anything()),
        mtu: fc.anything(),
        'nat-keepalive': fc.oneof(fc.integer(), fc.anything()),
        'split-tunneling': fc.oneof(fc.record({ subnets: fc.oneof(fc.array(fc.string()), fc.string()), excluded: fc.anything(), 'block-ipv4': fc.anything() }, { requiredKeys: [] }), fc.anything()),
      },
      { requiredKeys: [] },
    )
    .map((o) => JSON.stringify(o, null, 1));
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 300 }), mutate(sswans, jsonSnippets), structured, fc.json()), (text) => {
      try {
        const c = parseSswan(text, 'fuzz.sswan');
        for (const w of c.warnings) assert.match(w, /^fuzz\.sswan:\d+: /);
        ok++;
      } catch (e) {
        failed++;
        checkError(e);
      }
    }),
    { numRuns: 1500 },
  );
  assert.ok(ok > 0 && failed > 0, `ok=${ok} failed=${failed}`);
});

test('a large configuration parses in linear time', () => {
  const conns = Array.from({ length: 3000 }, (_, i) => `  c${i} {\n    remote_addrs = 192.0.2.${i % 250}\n    children {\n      net {\n        remote_ts = 10.${i % 250}.0.0/16\n      }\n    }\n  }\n`).join('');
  const t0 = performance.now();
  const c = parseIpsecConfig(`connections {\n${conns}}\n`, 'big.conf');
  assert.equal(c.connections.size, 3000);
  assert.ok(performance.now() - t0 < 3000);
});

test('deep nesting is an error, not a stack overflow', () => {
  assert.throws(() => parseIpsecConfig('a {\n'.repeat(100000), 'deep.conf'), (e: unknown) => e instanceof VpnError && /deep\.conf:65: sections nested more than 64 deep/.test(e.message));
  assert.throws(() => parseSswan('['.repeat(100000), 'deep.sswan'), (e: unknown) => e instanceof VpnError && /deep\.sswan:1: invalid JSON: nested more than 64 deep/.test(e.message));
});
