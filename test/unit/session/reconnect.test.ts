/** The protocol-neutral reconnect loop on the simulated clock: fatal errors, giving up, carry, retry at once. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VpnError } from '../../../src/errors.js';
import { ReconnectingLink, type ReconnectingEvent } from '../../../src/session/reconnect.js';
import { ManualClock } from '../../../src/util/clock.js';
import { LoopbackBackend } from './loopback-backend.js';

const tick = () => new Promise((r) => setImmediate(r));

test('a fatal failure ends the loop and rejects start() with its error', async () => {
  const clock = new ManualClock(0);
  const backend = new LoopbackBackend(clock);
  backend.failNext = ['auth-failed'];
  const link = new ReconnectingLink(backend, { clock, random: () => 0.5 });
  const closed: string[] = [];
  link.on('closed', (e) => closed.push(e.reason));
  await assert.rejects(link.start(), (e: unknown) => e instanceof VpnError && e.code === 'HANDSHAKE_TIMEOUT');
  assert.deepEqual(closed, ['auth-failed']);
  assert.equal(clock.pendingTimers(), 0, 'no retry is scheduled');
  backend.gateway.close();
});

test('maxRounds: gives up after that many rounds over the remotes, with the last error', async () => {
  const clock = new ManualClock(0);
  const backend = new LoopbackBackend(clock);
  backend.maxRounds = 2;
  backend.failNext = Array(10).fill('handshake-timeout');
  const link = new ReconnectingLink(backend, { clock, random: () => 0 });
  const delays: number[] = [];
  link.on('reconnecting', (e: ReconnectingEvent) => delays.push(e.delayMs));
  const started = link.start();
  for (let i = 0; i < 10 && backend.sessions.length < 4; i++) {
    await tick();
    clock.advance(10_000);
  }
  await assert.rejects(started, (e: unknown) => e instanceof VpnError && /giving up after 4 attempts/.test(e.message));
  assert.equal(backend.sessions.length, 4, '2 rounds x 2 remotes');
  assert.deepEqual(delays, [1500, 1500, 3000], 'jitter at its low end (0.75): 2 s, 2 s, then doubled');
  backend.gateway.close();
});

test('retryAtOnce from the backend skips the backoff and keeps the remote (e.g. a refused auth-token)', async () => {
  const clock = new ManualClock(0);
  const backend = new LoopbackBackend(clock);
  let refusedOnce = false;
  backend.afterSession = (_s, c, carry) => {
    if (c.reason === 'auth-failed' && !refusedOnce) {
      refusedOnce = true;
      return { carry: undefined, retryAtOnce: true };
    }
    return { carry: (carry ?? 0) + 1 };
  };
  backend.failNext = ['auth-failed'];
  const link = new ReconnectingLink(backend, { clock, random: () => 0.5 });
  const events: ReconnectingEvent[] = [];
  link.on('reconnecting', (e) => events.push(e));
  const started = link.start();
  await tick();
  assert.equal(events.length, 1);
  assert.equal(events[0]!.reason, 'auth-failed');
  assert.equal(events[0]!.next.host, 'loop-a');
  assert.equal(events[0]!.delayMs, 625);
  clock.advance(625);
  const info = await started;
  assert.equal(info.server.host, 'loop-a');
  assert.equal(link.sessionsEstablished, 1);
  await link.close();
  backend.gateway.close();
});
