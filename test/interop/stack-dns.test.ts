/**
 * DNS through the tunnel (issue 5): the lab's dnsmasq on the web host, pushed by the real OpenVPN server with
 * `dhcp-option DNS` and `dhcp-option DOMAIN lab.test`. A served name resolves, the pushed search domain
 * applies (`web` -> web.lab.test), NXDOMAIN is reported as DNS_NXDOMAIN, a truncated UDP answer is retried
 * over TCP through our own TCP (all 100 records come back), and connections by name go through the tunnel.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadProfile } from '../../src/openvpn/profile.js';
import { DnsError } from '../../src/stack/dns.js';
import { VpnTunnel } from '../../src/tunnel.js';
import { appendToError, detSha256, labPrereqs, type Lab } from '../lab/index.js';
import { getHashed, openVpnTunnel, startLabTunnel, stopLabTunnel } from './stack-helpers.js';

const pre = labPrereqs();

describe('stack: DNS through the tunnel to the lab resolver', { skip: pre.skip, timeout: 120_000 }, () => {
  let lab: Lab;
  let tunnel: VpnTunnel;
  before(async () => {
    ({ lab, tunnel } = await startLabTunnel());
  });
  after(() => stopLabTunnel(lab, tunnel));
  const dns = () => tunnel.stack.dns;

  test('the pushed DNS server and search domain are used', () => {
    const cfg = tunnel.client.config!;
    assert.deepEqual(cfg.dns, [lab.web.dns]);
    assert.ok(cfg.domains.includes(lab.web.domain), `pushed domains: ${cfg.domains.join(',')}`);
  });

  test('a name served by the lab DNS resolves through the tunnel', async () => {
    const before = dns().stats.queriesSent;
    const r = await tunnel.stack.lookup(lab.web.name);
    assert.deepEqual(r.addresses, [lab.web.host]);
    assert.equal(r.server, lab.web.dns);
    assert.equal(r.fromCache, false);
    assert.ok(dns().stats.queriesSent > before, 'a query went out through the tunnel');
    // TTLs are honoured: dnsmasq gives its --address answers TTL 0 (local-ttl), so those are asked again.
    const again = await tunnel.stack.lookup(lab.web.name);
    assert.equal(again.fromCache, r.ttl > 0);
  });

  test('the search domain applies: "web" is web.lab.test', async () => {
    const r = await tunnel.stack.lookup('web');
    assert.equal(r.name, lab.web.name);
    assert.deepEqual(r.addresses, [lab.web.host]);
    // a trailing dot makes a name absolute: no search domain (dnsmasq refuses names outside lab.test)
    await assert.rejects(tunnel.lookup('web.'), (e: Error & { code?: string }) => e.code === 'DNS_ERROR' && /REFUSED/.test(e.message));
  });

  test('NXDOMAIN is reported as DNS_NXDOMAIN (and a REFUSED outside the lab domain as DNS_ERROR)', async () => {
    await assert.rejects(tunnel.lookup(`no-such-host.${lab.web.domain}`), (e: unknown) => {
      assert.ok(e instanceof DnsError);
      assert.equal(e.code, 'DNS_NXDOMAIN');
      assert.equal(e.query, `no-such-host.${lab.web.domain}`);
      return true;
    });
    // search list then the name as given: both NXDOMAIN/REFUSED -> not found
    await assert.rejects(tunnel.lookup('no-such-host'), (e: Error & { code?: string }) => e.code === 'DNS_NXDOMAIN' || e.code === 'DNS_ERROR');
    await assert.rejects(tunnel.lookup('example.com.'), (e: Error & { code?: string }) => e.code === 'DNS_ERROR' && /REFUSED/.test(e.message));
  });

  test('a truncated UDP answer is retried over TCP through our stack: all 100 records', async () => {
    const st = dns().stats;
    const before = { truncated: st.truncated, tcp: st.tcpFallbacks, opens: tunnel.tcp.stats.activeOpens };
    try {
      const r = await tunnel.stack.lookup(lab.web.bigName);
      assert.equal(r.addresses.length, lab.web.bigAddresses.length);
      assert.deepEqual([...r.addresses].sort(), [...lab.web.bigAddresses].sort());
      assert.ok(st.truncated > before.truncated, 'the UDP answer was truncated');
      assert.ok(st.tcpFallbacks > before.tcp, 'the resolver fell back to TCP');
      assert.ok(tunnel.tcp.stats.activeOpens > before.opens, 'over our TcpStack');
    } catch (e) {
      appendToError(e, lab.logs(20));
      throw e;
    }
  });

  test('connect by name through the tunnel (search domain included): HTTP byte-exact', async () => {
    const s = await tunnel.connect({ host: 'web', port: lab.web.httpPort });
    assert.equal(s.remoteAddress, lab.web.host);
    const r = await getHashed(s, 'web', '/bytes/1000000');
    assert.equal(r.sha256, detSha256(1_000_000));
  });

  test('--dns given: the given server is used instead of the pushed one (a dead one fails, naming it)', async () => {
    const { profile } = await loadProfile(await lab.clientProfile());
    // An unused address on the web net: the server's kernel answers host unreachable after ARP gives up
    // (about 3 s), or the tries time out.
    const dead = lab.web.host.replace(/\.\d+$/, '.99');
    const t2 = openVpnTunnel(profile, { dns: [dead] });
    try {
      await t2.start();
      const t0 = Date.now();
      await assert.rejects(t2.lookup('web.lab.test'), (e: Error & { code?: string }) => ['DNS_TIMEOUT', 'DNS_ERROR'].includes(e.code!) && e.message.includes(dead));
      assert.ok(Date.now() - t0 < 10_000);
    } finally {
      await t2.close();
    }
  });
});
