import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpAttr, CpType, PayloadType, TsType } from '../../../src/wire/ike-constants.js';
import { buildCp, parseCp } from '../../../src/wire/ike-payloads.js';
import { parseIpv6Address } from '../../../src/wire/ipv6.js';
import { cpRequest, readCpReply } from '../../../src/ipsec/ike/messages.js';
import { rangeToCidrs6, selectorCidrs6, selectorsFromConfig, selectorsText } from '../../../src/ipsec/ike/identity.js';
import { findConnection, loadIpsecConfig, type IkeConnection, type TrafficSelector } from '../../../src/ipsec/config.js';
import { planIke } from '../../../src/ipsec/ike/plan.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('CFG_REQUEST asks for IPv6 address and DNS only when an IPv6 virtual IP is wanted', () => {
  const types = (vip6?: string) => parseCp(cpRequest('0.0.0.0', vip6).body).attributes.map((a) => a.type);
  assert.deepEqual(types(), [CpAttr.INTERNAL_IP4_ADDRESS, CpAttr.INTERNAL_IP4_DNS, CpAttr.INTERNAL_DNS_DOMAIN]);
  assert.deepEqual(types('::'), [CpAttr.INTERNAL_IP4_ADDRESS, CpAttr.INTERNAL_IP4_DNS, CpAttr.INTERNAL_IP6_ADDRESS, CpAttr.INTERNAL_IP6_DNS, CpAttr.INTERNAL_DNS_DOMAIN]);
  const any = parseCp(cpRequest(undefined, '::').body).attributes.find((a) => a.type === CpAttr.INTERNAL_IP6_ADDRESS)!;
  assert.equal(any.value.length, 0);
  const one = parseCp(cpRequest(undefined, 'fd00:6::5').body).attributes.find((a) => a.type === CpAttr.INTERNAL_IP6_ADDRESS)!;
  assert.equal(hex(one.value), `${hex(parseIpv6Address('fd00:6::5'))}80`, 'address then prefix length 128');
});

test('CFG_REPLY: the IPv6 address with its prefix length and the IPv6 DNS servers are read; malformed ones skipped', () => {
  const body = buildCp({
    type: CpType.REPLY,
    attributes: [
      { type: CpAttr.INTERNAL_IP4_ADDRESS, value: Uint8Array.of(10, 3, 0, 1) },
      { type: CpAttr.INTERNAL_IP6_ADDRESS, value: parseIpv6Address('fd00:6::1') }, // 16 bytes: no prefix length
      { type: CpAttr.INTERNAL_IP6_ADDRESS, value: Uint8Array.from([...parseIpv6Address('fd00:6::2'), 128]) },
      { type: CpAttr.INTERNAL_IP6_ADDRESS, value: Uint8Array.from([...parseIpv6Address('fd00:6::3'), 128]) },
      { type: CpAttr.INTERNAL_IP6_DNS, value: parseIpv6Address('fd00:9::53') },
      { type: CpAttr.INTERNAL_IP6_DNS, value: Uint8Array.of(1, 2, 3) },
      { type: CpAttr.INTERNAL_IP4_DNS, value: Uint8Array.of(10, 9, 0, 53) },
    ],
  });
  const r = readCpReply([{ type: PayloadType.CP, critical: false, body }]);
  assert.equal(r.vip, '10.3.0.1');
  assert.equal(r.vip6, 'fd00:6::2');
  assert.equal(r.prefix6, 128);
  assert.deepEqual(r.dns6, ['fd00:9::53']);
  assert.deepEqual(r.dns, ['10.9.0.53']);
  assert.deepEqual(readCpReply([]).dns6, []);
});

const sub = (raw: string, family: 4 | 6): TrafficSelector => ({ raw, kind: 'subnet', family, address: raw.split('/')[0]!, prefix: Number(raw.split('/')[1]) });
const DYN: TrafficSelector = { raw: 'dynamic', kind: 'dynamic' };

test('traffic selectors: IPv6 ones (TS_IPV6_ADDR_RANGE) only when IPv6 is asked for; dynamic covers the IPv6 vip', () => {
  const ts = [sub('10.9.0.0/24', 4), sub('fd00:9::/64', 6), sub('::/0', 6)];
  const v4 = selectorsFromConfig(ts, undefined);
  assert.equal(v4.selectors.length, 1);
  assert.deepEqual(v4.skipped, ['fd00:9::/64', '::/0']);
  const v6 = selectorsFromConfig(ts, undefined, { ipv6: true });
  assert.deepEqual(v6.skipped, []);
  assert.deepEqual(v6.selectors.map((s) => s.type), [TsType.IPV4_ADDR_RANGE, TsType.IPV6_ADDR_RANGE, TsType.IPV6_ADDR_RANGE]);
  assert.equal(hex(v6.selectors[1]!.startAddress), 'fd000009000000000000000000000000');
  assert.equal(hex(v6.selectors[1]!.endAddress), 'fd00000900000000ffffffffffffffff');
  assert.equal(selectorsText(v6.selectors), '10.9.0.0/24, fd00:9::/64, ::/0');
  assert.deepEqual(selectorCidrs6(v6.selectors), ['fd00:9::/64', '::/0']);
  const tsi = selectorsFromConfig([DYN], '0.0.0.0', { ipv6: true, dynamicAddress6: '::' });
  assert.equal(selectorsText(tsi.selectors), '0.0.0.0/0, ::/0');
  const one = selectorsFromConfig([DYN], '10.3.0.1', { ipv6: true, dynamicAddress6: 'fd00:6::2' });
  assert.equal(selectorsText(one.selectors), '10.3.0.1/32, fd00:6::2/128');
  assert.equal(selectorsText(selectorsFromConfig([DYN], undefined).selectors), '0.0.0.0/0', 'no IPv6 vip: IPv4 only, as before');
});

test('IPv6 ranges become the fewest CIDRs', () => {
  assert.deepEqual(rangeToCidrs6(parseIpv6Address('fd00:6::'), parseIpv6Address('fd00:6::ff')), ['fd00:6::/120']);
  assert.deepEqual(rangeToCidrs6(parseIpv6Address('fd00::1'), parseIpv6Address('fd00::6')), ['fd00::1/128', 'fd00::2/127', 'fd00::4/127', 'fd00::6/128']);
  assert.deepEqual(rangeToCidrs6(parseIpv6Address('::'), parseIpv6Address('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')), ['::/0']);
});

test('plan: vips with :: asks for an IPv6 virtual IP and keeps IPv6 selectors; without it they are ignored with a hint', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vpnproxy-plan6-'));
  try {
    const conf = (vips: string) =>
      `connections {\n  lab {\n    remote_addrs = 192.0.2.1\n    vips = ${vips}\n    local {\n      auth = psk\n      id = client.lab\n    }\n    remote {\n      auth = psk\n      id = server.lab\n    }\n    children {\n      net {\n        remote_ts = 10.9.0.0/24, ::/0\n      }\n    }\n  }\n}\nsecrets {\n  ike-lab {\n    id-1 = client.lab\n    id-2 = server.lab\n    secret = "x"\n  }\n}\n`;
    const plan = async (vips: string) => {
      const file = join(dir, `${vips.replace(/[^0-9a-z]/gi, '_')}.conf`);
      await writeFile(file, conf(vips));
      const config = await loadIpsecConfig(file);
      const warnings: string[] = [];
      const p = planIke(config, findConnection(config) as IkeConnection, warnings);
      return { p, warnings };
    };
    const dual = await plan('0.0.0.0, ::');
    assert.equal(dual.p.vip, '0.0.0.0');
    assert.equal(dual.p.vip6, '::');
    assert.ok(!dual.warnings.some((w) => /IPv6 traffic selectors ignored/.test(w)), dual.warnings.join('\n'));
    const v4 = await plan('0.0.0.0');
    assert.equal(v4.p.vip6, undefined);
    assert.ok(v4.warnings.some((w) => /IPv6 traffic selectors ignored \(::\/0\): add :: to vips/.test(w)), v4.warnings.join('\n'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
