import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLinkPair } from '../../../src/link/link.js';
import { IpStack } from '../../../src/stack/stack.js';
import type { ProtocolHandler } from '../../../src/stack/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { DnsRcode, buildDnsMessage, parseDnsMessage } from '../../../src/wire/dns.js';
import { quotedPorts, type IcmpError } from '../../../src/wire/icmp.js';
import { PEER, PEER_N, US, US_N, linkConfig, settle } from './helpers.js';

function twoStacks() {
  const clock = new ManualClock();
  const cfg = linkConfig(US, { dns: [PEER], domains: ['lab.test'] });
  const [a, b] = createLinkPair(cfg, linkConfig(PEER));
  const client = new IpStack(a, { clock });
  const server = new IpStack(b, { clock });
  return { clock, client, server, cfg };
}

test('ping between two stacks: the far stack answers, RTT from the clock', async () => {
  const { client, server } = twoStacks();
  const r = await client.ping(PEER);
  assert.ok(r);
  assert.equal(r.from, PEER);
  assert.equal(r.bytes, 64);
  assert.equal(r.ttl, 64);
  assert.equal(r.rttMs, 0);
  assert.equal(server.stats().ip.icmp.echoRequestsAnswered, 1);
  assert.equal(client.stats().ip.icmp.echoRepliesReceived, 1);
});

test('resolve through the stack: pushed DNS server and search domain, answered by a UDP server on the far stack', async () => {
  const { client, server, cfg } = twoStacks();
  const sock = server.udp.bind(53);
  sock.on('message', (data, rinfo) => {
    const q = parseDnsMessage(data);
    const name = q.questions[0]!.name;
    const known = name === 'web.lab.test';
    sock.send(
      buildDnsMessage({
        header: { id: q.header.id, qr: true, rcode: known ? 0 : DnsRcode.NXDOMAIN },
        questions: q.questions,
        answers: known ? [{ name, type: 1, class: 1, ttl: 60, kind: 'A', address: '10.8.0.1' }] : [],
      }),
      rinfo.port,
      rinfo.address,
    );
  });
  assert.deepEqual(await client.resolve('web'), ['10.8.0.1']);
  const l = await client.lookup('web');
  assert.equal(l.fromCache, true);
  assert.equal(l.name, 'web.lab.test');
  await assert.rejects(client.resolve('nope'), (e: unknown) => (e as { code?: string }).code === 'DNS_NXDOMAIN');
  assert.ok(client.stats().dns.queriesSent >= 2);
  // A new tunnel address (reconnect) empties the cache.
  cfg.address = '10.8.0.3';
  client.linkChanged();
  const fresh = await client.lookup('web');
  assert.equal(fresh.fromCache, false);
  assert.deepEqual(fresh.addresses, ['10.8.0.1']);
  assert.equal(client.stats().udp.sent, client.stats().dns.queriesSent);
});

test('TCP plugs in with registerProtocol(6): datagrams and ICMP errors reach it; it sends through stack.ip', async () => {
  const { client, server } = twoStacks();
  const got: Uint8Array[] = [];
  const errs: IcmpError[] = [];
  const tcp: ProtocolHandler = {
    input: (_s, _d, payload) => void got.push(payload.slice()),
    icmpError: (e) => void errs.push(e),
  };
  server.registerProtocol(6, tcp);
  // The client has no TCP: its IP layer answers protocol unreachable, quoting the segment's ports.
  const seg = new Uint8Array(20);
  seg.set([0x9c, 0x41, 0x00, 0x50]);
  server.ip.sendIp(US_N, 6, seg);
  assert.equal(client.stats().ip.drops.noProtocol, 1);
  assert.equal(errs.length, 1);
  assert.deepEqual(quotedPorts(errs[0]!), { srcPort: 0x9c41, dstPort: 80 });
  assert.equal(errs[0]!.code, 2);
  client.ip.sendIp(PEER_N, 6, seg);
  assert.equal(got.length, 1);
  assert.deepEqual(got[0], seg);
  assert.equal(client.ip.mtu(), 1500);
  await settle();
});

test('link down/up is reported; a DNS timeout through the stack; close() leaves no timers and ends pings', async () => {
  const clock = new ManualClock();
  const cfg = linkConfig(US, { dns: ['10.8.0.53'] });
  let current: typeof cfg | undefined = cfg;
  const [a] = createLinkPair(cfg, linkConfig(PEER));
  const link = { send: a.send, onReceive: a.onReceive, get config() { return current; }, get mtu() { return 1500; } };
  const stack = new IpStack(link, { clock, dns: { servers: ['10.8.0.1'], timeoutMs: 500, attempts: 1 } });
  const changes: boolean[] = [];
  stack.onLinkChange((c) => changes.push(c.up));
  current = undefined;
  stack.linkChanged();
  current = { ...cfg, address: '10.8.0.3' };
  stack.linkChanged();
  assert.deepEqual(changes, [false, true]);
  const p = stack.ping(PEER, { timeoutMs: 10_000 });
  const r = stack.resolve('web.lab.test').catch((e) => e);
  await settle();
  assert.ok(clock.pendingTimers() >= 2);
  clock.advance(500);
  assert.equal((await r).code, 'DNS_TIMEOUT');
  stack.close();
  assert.equal(await p, undefined);
  assert.equal(clock.pendingTimers(), 0);
});
