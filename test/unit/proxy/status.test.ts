import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { StatusServer, type TunnelStatus } from '../../../src/proxy/status.js';
import { ProxyMetrics } from '../../../src/proxy/metrics.js';
import { AccessList } from '../../../src/proxy/access.js';
import { newTcpStats } from '../../../src/stack/tcp/stats.js';

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A strict-enough check of the Prometheus text format: HELP/TYPE before samples, valid sample lines. */
function checkPrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line);
    if (m) continue;
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      assert.ok(!typed.has(m[1]!), `duplicate TYPE for ${m[1]}`);
      typed.add(m[1]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+]+|NaN|[+-]Inf)$/.exec(line);
    assert.ok(m, `bad sample line: ${line}`);
    assert.ok(typed.has(m[1]!), `sample before TYPE: ${line}`);
    samples.set(m[1]! + (m[2] ?? ''), Number(m[3]));
  }
  assert.ok(text.endsWith('\n'));
  return samples;
}

test('status endpoint: /healthz, /status JSON, /metrics Prometheus text', async () => {
  let st: TunnelStatus = { state: 'connecting', protocol: 'openvpn', server: 'vpn.example:1194/udp' };
  let now = 1_000_000;
  const metrics = new ProxyMetrics();
  const srv = new StatusServer({ getStatus: () => st, metrics, port: 0, now: () => now, version: '0.1.0' });
  const port = (await srv.listen()).port;

  let h = await get(port, '/healthz');
  assert.deepEqual([h.status, h.body], [503, 'connecting\n']);

  st = {
    state: 'up',
    protocol: 'openvpn',
    server: 'vpn.example:1194/udp',
    address: '10.8.0.2',
    cipher: 'AES-256-GCM',
    connectedSince: now - 65_000,
    reconnects: 2,
    bytesIn: 1000,
    bytesOut: 2000,
    packetsIn: 10,
    packetsOut: 20,
    drops: 3,
  };
  h = await get(port, '/healthz');
  assert.deepEqual([h.status, h.body], [200, 'ok\n']);

  metrics.opened('http');
  metrics.opened('socks5');
  metrics.closed('socks5', 'vpn', 100, 2000);
  metrics.error('http', 'CONN_REFUSED');
  metrics.denied('http', 'auth');

  const s = await get(port, '/status');
  assert.equal(s.status, 200);
  assert.match(s.type, /^application\/json/);
  const doc = JSON.parse(s.body);
  assert.deepEqual(doc, {
    version: '0.1.0',
    tunnel: {
      state: 'up',
      up: true,
      protocol: 'openvpn',
      server: 'vpn.example:1194/udp',
      address: '10.8.0.2',
      cipher: 'AES-256-GCM',
      uptimeSeconds: 65,
      reconnects: 2,
    },
    traffic: { bytesIn: 1000, bytesOut: 2000, packetsIn: 10, packetsOut: 20, drops: 3 },
    proxy: { connections: { active: 1, total: 1 }, bytes: { up: 100, down: 2000 }, errors: 1, denied: 1 },
  });

  const m = await get(port, '/metrics');
  assert.equal(m.status, 200);
  assert.match(m.type, /^text\/plain; version=0\.0\.4/);
  const samples = checkPrometheus(m.body);
  assert.equal(samples.get('vpnproxy_tunnel_up{state="up"}'), 1);
  assert.equal(samples.get('vpnproxy_tunnel_uptime_seconds'), 65);
  assert.equal(samples.get('vpnproxy_tunnel_bytes_total{direction="in"}'), 1000);
  assert.equal(samples.get('vpnproxy_tunnel_packets_total{direction="out"}'), 20);
  assert.equal(samples.get('vpnproxy_tunnel_drops_total'), 3);
  assert.equal(samples.get('vpnproxy_tunnel_reconnects_total'), 2);
  assert.equal(samples.get('vpnproxy_proxy_connections_total{proxy="socks5",route="vpn"}'), 1);
  assert.equal(samples.get('vpnproxy_proxy_connections_active{proxy="http"}'), 1);
  assert.equal(samples.get('vpnproxy_proxy_bytes_total{proxy="socks5",direction="down"}'), 2000);
  assert.equal(samples.get('vpnproxy_proxy_errors_total{proxy="http",reason="CONN_REFUSED"}'), 1);
  assert.match(m.body, /^# HELP vpnproxy_proxy_connections_total .+\n# TYPE vpnproxy_proxy_connections_total counter\n/m);

  assert.equal((await get(port, '/nope')).status, 404);
  assert.equal((await get(port, '/healthz', 'POST')).status, 405);
  const head = await get(port, '/status', 'HEAD');
  assert.deepEqual([head.status, head.body], [200, '']);

  // getStatus throwing: unhealthy, not a crash.
  st = undefined as unknown as TunnelStatus;
  const broken = new StatusServer({ getStatus: () => { throw new Error('boom'); }, port: 0 });
  const bp = (await broken.listen()).port;
  assert.equal((await get(bp, '/healthz')).status, 503);
  assert.equal((await get(bp, '/status')).status, 500);
  checkPrometheus((await get(bp, '/metrics')).body);
  await broken.close();
  await srv.close();
});

test('status endpoint: TCP stack counters in /status and as vpnproxy_tcp_* metrics', async () => {
  const tcp = { ...newTcpStats(), retransmits: 7, fastRecoveries: 2, connections: 3, timeWait: 1, maxPeerWindow: 65535 };
  const srv = new StatusServer({ getStatus: () => ({ state: 'up', tcp }), port: 0 });
  const port = (await srv.listen()).port;
  const doc = JSON.parse((await get(port, '/status')).body);
  assert.equal(doc.tcp.retransmits, 7);
  assert.equal(doc.tcp.maxPeerWindow, 65535);
  const m = await get(port, '/metrics');
  const samples = checkPrometheus(m.body);
  assert.equal(samples.get('vpnproxy_tcp_retransmits_total'), 7);
  assert.equal(samples.get('vpnproxy_tcp_fast_recoveries_total'), 2);
  assert.equal(samples.get('vpnproxy_tcp_connections'), 3);
  assert.equal(samples.get('vpnproxy_tcp_time_wait'), 1);
  assert.equal(samples.get('vpnproxy_tcp_max_peer_window'), 65535);
  assert.match(m.body, /# TYPE vpnproxy_tcp_connections gauge\n/);
  assert.match(m.body, /# TYPE vpnproxy_tcp_segments_out_total counter\n/);
  // Every counter of the stack is exported.
  for (const k of Object.keys(newTcpStats())) assert.match(m.body, new RegExp(`^vpnproxy_tcp_${k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}(_total)? `, 'm'), k);
  await srv.close();
});

test('status endpoint honours --allow', async () => {
  const srv = new StatusServer({ getStatus: () => ({ state: 'up' }), port: 0, access: new AccessList(['10.0.0.0/8']) });
  const port = (await srv.listen()).port;
  assert.equal((await get(port, '/healthz')).status, 403);
  await srv.close();
});

test('protocol details and drop reasons: in /status as they are, numeric ones and drops by reason in /metrics', async () => {
  const st: TunnelStatus = {
    state: 'up',
    protocol: 'ipsec',
    server: '192.0.2.10:4500/udp',
    drops: 3,
    dropReasons: { replayed: 2, 'bad-icv': 1 },
    details: { spiOut: '0xc1000001', seqOut: 1234, lifetimeSecondsLeft: 3500, esn: false, missing: undefined },
  };
  const srv = new StatusServer({ getStatus: () => st, port: 0 });
  const port = (await srv.listen()).port;
  try {
    const doc = JSON.parse((await get(port, '/status')).body);
    assert.deepEqual(doc.tunnel.details, { spiOut: '0xc1000001', seqOut: 1234, lifetimeSecondsLeft: 3500, esn: false });
    assert.deepEqual(doc.traffic.dropReasons, { replayed: 2, 'bad-icv': 1 });
    const m = checkPrometheus((await get(port, '/metrics')).body);
    assert.equal(m.get('vpnproxy_tunnel_dropped_packets_total{reason="replayed"}'), 2);
    assert.equal(m.get('vpnproxy_tunnel_dropped_packets_total{reason="bad-icv"}'), 1);
    assert.equal(m.get('vpnproxy_tunnel_detail{name="seqOut"}'), 1234);
    assert.equal(m.get('vpnproxy_tunnel_detail{name="lifetimeSecondsLeft"}'), 3500);
    assert.equal(m.get('vpnproxy_tunnel_drops_total'), 3);
  } finally {
    await srv.close();
  }
});

test("a protocol's own metric families (vpnproxy_ike_*) are rendered on /metrics as they are", async () => {
  const st: TunnelStatus = {
    state: 'up',
    protocol: 'ipsec',
    metrics: [
      { name: 'vpnproxy_ike_messages_total', help: 'IKE datagrams.', type: 'counter', samples: [{ labels: { direction: 'sent' }, value: 7 }, { labels: { direction: 'received' }, value: 6 }] },
      { name: 'vpnproxy_ike_sa_info', help: 'The IKE SA.', type: 'gauge', samples: [{ labels: { proposal: 'AES_GCM_16_128/PRF_HMAC_SHA2_256/ECP_256', remote_id: 'gw "one"' }, value: 1 }] },
    ],
  };
  const srv = new StatusServer({ getStatus: () => st, port: 0 });
  const port = (await srv.listen()).port;
  try {
    const body = (await get(port, '/metrics')).body;
    const m = checkPrometheus(body);
    assert.equal(m.get('vpnproxy_ike_messages_total{direction="sent"}'), 7);
    assert.equal(m.get('vpnproxy_ike_messages_total{direction="received"}'), 6);
    assert.match(body, /# TYPE vpnproxy_ike_sa_info gauge\n/);
    assert.match(body, /vpnproxy_ike_sa_info\{proposal="AES_GCM_16_128\/PRF_HMAC_SHA2_256\/ECP_256",remote_id="gw \\"one\\""\} 1/);
  } finally {
    await srv.close();
  }
});
