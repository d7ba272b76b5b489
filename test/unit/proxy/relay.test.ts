import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { relay, type RelayResult } from '../../../src/proxy/relay.js';
import { waitFor } from './helpers.js';

/** A connected pair of real TCP sockets on loopback: [client side, server side]. */
async function pair(): Promise<{ a: Socket; b: Socket; server: Server }> {
  const server = createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const a = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const b = await accepted;
  await new Promise((r) => (a.connecting ? a.once('connect', r) : r(null)));
  server.close();
  return { a, b, server };
}

test('relay: half-close keeps the other direction flowing; result counts both ways', async () => {
  // client <-> [c1 | relay | u1] <-> upstream
  const p1 = await pair(); // p1.a = client, p1.b = proxy's client-side socket
  const p2 = await pair(); // p2.a = proxy's upstream socket, p2.b = upstream server
  let result: RelayResult | undefined;
  relay(p1.b, p2.a, (r) => (result = r));
  const client = p1.a;
  const upstream = p2.b;
  const atUpstream: Buffer[] = [];
  upstream.on('data', (c) => atUpstream.push(c));
  const upstreamEnded = new Promise((r) => upstream.once('end', r));
  client.end('request');
  await upstreamEnded; // FIN propagated
  assert.equal(Buffer.concat(atUpstream).toString(), 'request');
  // Upstream still answers after the client's half-close.
  const atClient: Buffer[] = [];
  client.on('data', (c) => atClient.push(c));
  const clientEnded = new Promise((r) => client.once('end', r));
  upstream.end('response after half-close');
  await clientEnded;
  assert.equal(Buffer.concat(atClient).toString(), 'response after half-close');
  await waitFor(() => result !== undefined, 2000, 'relay done');
  assert.equal(result!.up, 7);
  assert.equal(result!.down, 'response after half-close'.length);
  assert.equal(result!.error, undefined);
});

test('relay: an abortive close (reset) on one side destroys the other', async () => {
  const p1 = await pair();
  const p2 = await pair();
  let result: RelayResult | undefined;
  relay(p1.b, p2.a, (r) => (result = r));
  p2.b.on('error', () => {});
  p1.a.on('error', () => {});
  p1.a.resume();
  const clientEnded = new Promise((r) => p1.a.once('end', r));
  p2.b.resetAndDestroy();
  await clientEnded;
  p1.a.destroy();
  await waitFor(() => result !== undefined, 2000, 'relay done');
  assert.ok(result!.error, 'the reset is reported');
});

test('relay: backpressure bounds buffering when the receiver does not read', async () => {
  const p1 = await pair();
  const p2 = await pair();
  relay(p1.b, p2.a, () => {});
  const source = p2.b; // upstream sends a lot
  const sink = p1.a; // client never reads
  sink.pause();
  let written = 0;
  let stopped = false;
  const chunk = Buffer.alloc(64 * 1024, 7);
  const pump = () => {
    while (!stopped && written < 512 * 1024 * 1024) {
      written += chunk.length;
      if (!source.write(chunk)) return void source.once('drain', pump);
    }
  };
  pump();
  await new Promise((r) => setTimeout(r, 400));
  const after400 = written;
  await new Promise((r) => setTimeout(r, 300));
  // Stalled: nothing more accepted, and far less than the 512 MB it tried to send.
  assert.equal(written, after400, 'the source is paused');
  assert.ok(written < 64 * 1024 * 1024, `bounded (${written} bytes buffered in kernel + streams)`);
  // Resume reading: everything flows again.
  let got = 0;
  sink.on('data', (c: Buffer) => (got += c.length));
  sink.resume();
  await waitFor(() => got >= after400, 5000, 'drain after resume');
  stopped = true;
  p1.a.destroy();
  p2.b.destroy();
});

test('relay: idle timeout closes both sides', async () => {
  const p1 = await pair();
  const p2 = await pair();
  let result: RelayResult | undefined;
  relay(p1.b, p2.a, (r) => (result = r), { idleTimeoutMs: 50 });
  p1.a.on('error', () => {});
  p2.b.on('error', () => {});
  await waitFor(() => result !== undefined, 2000, 'idle close');
  assert.equal(result!.error, 'idle timeout');
  p1.a.destroy();
  p2.b.destroy();
});
