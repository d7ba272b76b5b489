import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkCredentials, checkProxyAuthorization, parseBasicAuth, parseCredentials, safeEqual } from '../../../src/proxy/auth.js';
import { AccessList } from '../../../src/proxy/access.js';
import { MetricsRegistry, renderFamilies } from '../../../src/proxy/metrics.js';
import { VpnError } from '../../../src/errors.js';

test('credentials: parse, Basic header, constant-time compare of both fields', () => {
  assert.deepEqual(parseCredentials('u:p:q'), { username: 'u', password: 'p:q' });
  assert.deepEqual(parseCredentials('u:'), { username: 'u', password: '' });
  assert.throws(() => parseCredentials(':p'), (e: unknown) => e instanceof VpnError && e.code === 'USAGE');
  assert.throws(() => parseCredentials('nopass'), (e: unknown) => e instanceof VpnError && e.code === 'USAGE');
  const creds = { username: 'alice', password: 'pä ss' };
  const hdr = (s: string) => 'Basic ' + Buffer.from(s).toString('base64');
  assert.deepEqual(parseBasicAuth(hdr('alice:pä ss')), { username: 'alice', password: 'pä ss' });
  assert.equal(parseBasicAuth('Bearer abc'), undefined);
  assert.equal(parseBasicAuth(hdr('nocolon')), undefined);
  assert.equal(checkProxyAuthorization(creds, hdr('alice:pä ss')), true);
  assert.equal(checkProxyAuthorization(creds, 'basic ' + Buffer.from('alice:pä ss').toString('base64')), true, 'scheme is case-insensitive');
  assert.equal(checkProxyAuthorization(creds, hdr('alice:pa ss')), false);
  assert.equal(checkProxyAuthorization(creds, hdr('alicf:pä ss')), false);
  assert.equal(checkProxyAuthorization(creds, undefined), false);
  assert.equal(checkProxyAuthorization(undefined, undefined), true, 'no auth configured');
  assert.equal(checkCredentials(creds, Buffer.from('alice'), Buffer.from('pä ss')), true);
  assert.equal(safeEqual('a', 'ab'), false);
  fc.assert(
    fc.property(fc.string(), fc.string(), (a, b) => {
      assert.equal(safeEqual(a, b), a === b);
      parseBasicAuth(a); // never throws
    }),
  );
});

test('access list: default loopback only, CIDRs, IPv4-mapped peers, bad input', () => {
  const def = new AccessList();
  assert.equal(def.allows('127.0.0.1'), true);
  assert.equal(def.allows('127.5.6.7'), true);
  assert.equal(def.allows('::1'), true);
  assert.equal(def.allows('::ffff:127.0.0.1'), true);
  assert.equal(def.allows('192.168.1.10'), false);
  assert.equal(def.allows(undefined), false);
  assert.equal(def.allows('garbage'), false);
  const lan = new AccessList(['192.168.1.0/24', '10.0.0.5', 'fd00::/8']);
  assert.equal(lan.allows('192.168.1.200'), true);
  assert.equal(lan.allows('::ffff:192.168.1.200'), true);
  assert.equal(lan.allows('192.168.2.1'), false);
  assert.equal(lan.allows('10.0.0.5'), true);
  assert.equal(lan.allows('10.0.0.6'), false);
  assert.equal(lan.allows('fd12::1'), true);
  assert.equal(lan.allows('127.0.0.1'), false, '--allow replaces the default');
  for (const bad of ['10.0.0.0/33', 'foo', '1.2.3.4/x', '1.2.3.4/8/9', '::1/129'])
    assert.throws(() => new AccessList([bad]), (e: unknown) => e instanceof VpnError && e.code === 'USAGE', bad);
});

test('metrics registry renders Prometheus text with escaping, HELP/TYPE once per family', () => {
  const r = new MetricsRegistry();
  const c = r.counter('x_total', 'Things\nwith newline \\ backslash.', ['k']);
  c.inc({ k: 'a"b\\c\nd' }, 2);
  c.inc({ k: 'plain' });
  assert.throws(() => c.inc({ k: 'plain' }, -1));
  const g = r.gauge('y', 'A gauge.');
  g.set(1.5);
  g.dec(undefined, 0.5);
  assert.equal(r.counter('x_total', 'again', ['k']), c, 'same name returns the same metric');
  assert.throws(() => r.gauge('x_total', 'clash'));
  assert.throws(() => r.counter('bad name', 'x'));
  r.addCollector(() => [{ name: 'z', help: 'Z.', type: 'gauge', samples: [{ value: Infinity }] }]);
  r.addCollector(() => {
    throw new Error('broken collector');
  });
  assert.equal(
    r.render(),
    '# HELP x_total Things\\nwith newline \\\\ backslash.\n# TYPE x_total counter\n' +
      'x_total{k="a\\"b\\\\c\\nd"} 2\nx_total{k="plain"} 1\n' +
      '# HELP y A gauge.\n# TYPE y gauge\ny 1\n' +
      '# HELP z Z.\n# TYPE z gauge\nz +Inf\n',
  );
  assert.equal(renderFamilies([{ name: 'a', help: 'h', type: 'counter', samples: [] }, { name: 'a', help: 'h', type: 'counter', samples: [] }]).match(/# TYPE a/g)!.length, 1);
});
