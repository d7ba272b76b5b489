/**
 * Happy Eyeballs on a simulated clock: which family goes first, when the second starts (the 250 ms delay only
 * ever measured on the ManualClock), who wins, that losers are aborted or closed, and the combined error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VpnError } from '../../../src/errors.js';
import { happyEyeballs, type HappyEyeballsOptions } from '../../../src/stack/happy-eyeballs.js';
import { ManualClock } from '../../../src/util/clock.js';

const V4 = '192.0.2.80';
const V6 = '2001:db8::80';
const flush = () => new Promise<void>((r) => setImmediate(r));

type Behaviour = 'ok' | 'refuse' | 'hang';

function harness(b: Record<string, Behaviour>, over: Partial<HappyEyeballsOptions<string>> = {}) {
  const clock = new ManualClock(0);
  const started: Array<[string, number]> = [];
  const aborted: string[] = [];
  const discarded: string[] = [];
  const opts: HappyEyeballsOptions<string> = {
    clock,
    name: 'dual.lab.test',
    resolve4: async () => [V4],
    resolve6: async () => [V6],
    prefer6: true,
    connect: (address, signal) => {
      started.push([address, clock.now()]);
      return new Promise<string>((resolve, reject) => {
        const how = b[address] ?? 'hang';
        signal.addEventListener('abort', () => {
          aborted.push(address);
          reject(new VpnError('TRANSPORT_CLOSED', 'aborted'));
        });
        if (how === 'ok') queueMicrotask(() => resolve(`conn:${address}`));
        if (how === 'refuse') queueMicrotask(() => reject(new VpnError('CONN_REFUSED', `${address}: connection refused`)));
      });
    },
    discard: (c) => discarded.push(c),
    ...over,
  };
  return { clock, started, aborted, discarded, opts };
}

test('preferred family connects: the other is never started', async () => {
  const h = harness({ [V6]: 'ok', [V4]: 'ok' });
  const r = await happyEyeballs(h.opts);
  assert.deepEqual([r.address, r.family, r.conn], [V6, 6, `conn:${V6}`]);
  assert.deepEqual(h.started, [[V6, 0]]);
});

test('first family fails fast: the second is used at once, without waiting for the delay', async () => {
  const h = harness({ [V6]: 'refuse', [V4]: 'ok' });
  const r = await happyEyeballs(h.opts);
  assert.equal(r.family, 4);
  assert.deepEqual(h.started, [
    [V6, 0],
    [V4, 0],
  ]);
});

test('first family hangs: the second starts after 250 ms on the clock, wins, and the first is aborted', async () => {
  const h = harness({ [V6]: 'hang', [V4]: 'ok' });
  const p = happyEyeballs(h.opts);
  await flush();
  h.clock.advance(249);
  await flush();
  assert.deepEqual(h.started, [[V6, 0]]);
  h.clock.advance(1);
  const r = await p;
  assert.equal(r.address, V4);
  assert.deepEqual(h.started, [
    [V6, 0],
    [V4, 250],
  ]);
  assert.deepEqual(h.aborted, [V6]);
});

test('IPv4 first when the preference says the tunnel does not route the IPv6 address; IPv6 after the delay', async () => {
  const h = harness({ [V4]: 'hang', [V6]: 'ok' }, { prefer6: (a) => a[0] === '2001:db8:1::1' });
  const p = happyEyeballs(h.opts);
  await flush();
  assert.deepEqual(h.started, [[V4, 0]]);
  h.clock.advance(250);
  const r = await p;
  assert.equal(r.family, 6);
  assert.deepEqual(h.started, [
    [V4, 0],
    [V6, 250],
  ]);
  assert.deepEqual(h.aborted, [V4]);
});

test('a connection completing after the winner is discarded', async () => {
  let late!: (c: string) => void;
  const h = harness({});
  h.opts.connect = (address) => {
    h.started.push([address, h.clock.now()]);
    if (address === V6) return new Promise((r) => (late = r));
    return Promise.resolve(`conn:${V4}`);
  };
  const p = happyEyeballs(h.opts);
  await flush();
  h.clock.advance(250);
  assert.equal((await p).family, 4);
  late(`conn:${V6}`);
  await flush();
  assert.deepEqual(h.discarded, [`conn:${V6}`]);
});

test('a hanging AAAA lookup delays IPv4 by at most the delay when the preference waits on it', async () => {
  const h = harness({ [V4]: 'ok' }, { prefer6: () => true, resolve6: () => new Promise(() => {}) });
  const p = happyEyeballs(h.opts);
  await flush();
  assert.deepEqual(h.started, []);
  h.clock.advance(250);
  assert.equal((await p).family, 4);
  assert.deepEqual(h.started, [[V4, 250]]);
});

test('both fail: one error naming both families, the code of the connect failure', async () => {
  const h = harness({ [V6]: 'refuse' }, { resolve4: () => Promise.reject(new VpnError('DNS_NODATA', 'dual.lab.test has no IPv4 address')) });
  await assert.rejects(happyEyeballs(h.opts), (e: VpnError) => {
    assert.equal(e.code, 'CONN_REFUSED');
    assert.match(e.message, /^cannot reach dual\.lab\.test: IPv6 \[2001:db8::80\]: .*connection refused; IPv4: dual\.lab\.test has no IPv4 address$/);
    return true;
  });
  const h2 = harness({ [V6]: 'refuse', [V4]: 'refuse' });
  await assert.rejects(happyEyeballs(h2.opts), (e: VpnError) => e.code === 'CONN_REFUSED' && /IPv6 \[2001:db8::80\].*; IPv4 192\.0\.2\.80: /.test(e.message));
});

test('the caller aborting rejects and aborts the attempts', async () => {
  const ac = new AbortController();
  const h = harness({}, { signal: ac.signal });
  const p = happyEyeballs(h.opts);
  await flush();
  ac.abort();
  await assert.rejects(p, /aborted/);
  assert.deepEqual(h.aborted, [V6]);
});
