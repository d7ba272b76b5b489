import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLinkPair, type LinkConfig } from '../../../src/link/link.js';
import { withTrace } from '../../../src/link/trace.js';
import { Logger, type LogLevel } from '../../../src/util/log.js';
import { samplePackets } from '../wire/samples.js';

const cfg: LinkConfig = { address: '10.8.0.2', netmask: '255.255.255.0', mtu: 1400, dns: [], domains: [], routes: [], redirectGateway: false };

function setup(level: LogLevel) {
  const lines: string[] = [];
  const logger = new Logger(level, 'text', { write: (l) => lines.push(l) }, 'link');
  const [a, b] = createLinkPair(cfg, { ...cfg, address: '10.8.0.1' });
  const traced = withTrace(a, logger);
  const got: Uint8Array[] = [];
  const gotB: Uint8Array[] = [];
  traced.onReceive((p) => got.push(p));
  b.onReceive((p) => gotB.push(p));
  return { lines, traced, b, got, gotB };
}

test('at trace level: one line per packet with direction and summary; packets pass unchanged', () => {
  const s = samplePackets();
  const { lines, traced, b, got, gotB } = setup('trace');
  traced.send(s.echoRequest!);
  b.send(s.echoReply!);
  traced.send(new Uint8Array([1, 2, 3]));
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /TRACE \[link\] out ICMP 10\.8\.0\.2 > 10\.8\.0\.1 echo-request id=1 seq=3 len=84\n$/);
  assert.match(lines[1]!, /TRACE \[link\] in ICMP 10\.8\.0\.1 > 10\.8\.0\.2 echo-reply id=1 seq=3 len=84\n$/);
  assert.match(lines[2]!, / out invalid: .* len=3\n$/);
  assert.equal(got[0], s.echoReply, 'same buffer delivered');
  assert.equal(gotB[0], s.echoRequest);
  assert.equal(gotB.length, 2);
  assert.equal(traced.mtu, 1400);
  assert.equal(traced.config?.address, '10.8.0.2');
});

test('below trace level: nothing logged', () => {
  const s = samplePackets();
  const { lines, traced, b, got } = setup('debug');
  traced.send(s.syn!);
  b.send(s.udp!);
  assert.equal(lines.length, 0);
  assert.equal(got.length, 1);
});
