import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VpnError } from '../../../src/errors.js';
import { mapSocketError, TransportError } from '../../../src/transport/index.js';

const sysErr = (code: string) => Object.assign(new Error(`${code} something`), { code });

test('socket errno codes map to stable VpnError codes with actionable messages', () => {
  const ctx = { proto: 'tcp' as const, host: 'vpn.example.net', port: 443, phase: 'connect' as const, fatal: true };
  const table: Array<[string, string, RegExp]> = [
    ['ECONNREFUSED', 'CONN_REFUSED', /refused by vpn\.example\.net:443 \(TCP\): is the server running/],
    ['EHOSTUNREACH', 'HOST_UNREACHABLE', /unreachable \(EHOSTUNREACH\)/],
    ['ENETUNREACH', 'HOST_UNREACHABLE', /unreachable \(ENETUNREACH\)/],
    ['ETIMEDOUT', 'CONNECT_TIMEOUT', /timed out/],
    ['ENOTFOUND', 'DNS_NXDOMAIN', /cannot resolve vpn\.example\.net/],
    ['ECONNRESET', 'TRANSPORT_CLOSED', /closed the connection \(ECONNRESET\)/],
    ['EPIPE', 'TRANSPORT_CLOSED', /EPIPE/],
    ['EACCES', 'TRANSPORT_ERROR', /transport to vpn\.example\.net:443 \(TCP\) failed: EACCES/],
  ];
  for (const [errno, code, msg] of table) {
    const e = mapSocketError(sysErr(errno), ctx);
    assert.ok(e instanceof VpnError && e instanceof TransportError);
    assert.equal(e.code, code, errno);
    assert.match(e.message, msg);
    assert.equal(e.errno, errno);
    assert.equal(e.fatal, true);
    assert.equal((e.cause as Error).message, `${errno} something`);
  }
  const io = mapSocketError(sysErr('ETIMEDOUT'), { ...ctx, phase: 'io' });
  assert.equal(io.code, 'TRANSPORT_ERROR');
  const udp = mapSocketError(sysErr('ECONNREFUSED'), { ...ctx, proto: 'udp', fatal: false });
  assert.match(udp.message, /ICMP port unreachable/);
  assert.equal(udp.fatal, false);
  assert.equal(mapSocketError('weird', ctx).code, 'TRANSPORT_ERROR');
});
