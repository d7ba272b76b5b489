import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { closedTcpPort, closedUdpPort, frame, frameReader, stuckListener, tcpServer, udpEchoServer } from './servers.js';

const CHILD = fileURLToPath(new URL('./fixtures/shutdown-child.ts', import.meta.url));
const EXIT_BOUND_MS = 5000;

/**
 * Run the child and require that it exits on its own: within EXIT_BOUND_MS overall, and within 1.5 s of
 * printing "done" (its work finished and close() resolved). It is killed if it overstays.
 */
function runChild(mode: string, port: number): Promise<{ out: string; code: number | null; afterDoneMs: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode, String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: fileURLToPath(new URL('../../../', import.meta.url)),
    });
    let out = '';
    let err = '';
    let doneAt = 0;
    child.stdout.on('data', (d) => {
      out += String(d);
      if (!doneAt && out.includes('\n')) doneAt = Date.now();
    });
    child.stderr.on('data', (d) => (err += String(d)));
    const killer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child "${mode}" still running after ${EXIT_BOUND_MS} ms (a handle was left open); stdout=${out} stderr=${err}`));
    }, EXIT_BOUND_MS);
    child.on('exit', (code) => {
      clearTimeout(killer);
      if (err.trim()) process.stderr.write(`[child ${mode}] ${err}`);
      resolve({ out: out.trim(), code, afterDoneMs: doneAt ? Date.now() - doneAt : -1 });
    });
  });
}

test('process exits by itself after a UDP transport connects, exchanges a packet and closes', async () => {
  const srv = await udpEchoServer();
  try {
    const r = await runChild('udp', srv.port);
    assert.equal(r.out, 'done ping');
    assert.equal(r.code, 0);
    assert.ok(r.afterDoneMs >= 0 && r.afterDoneMs < 1500, `exited ${r.afterDoneMs} ms after done`);
  } finally {
    await srv.stop();
  }
});

test('process exits by itself after a TCP transport connects, exchanges a packet and closes', async () => {
  const srv = await tcpServer((s) => s.on('data', frameReader((f) => s.write(frame(f)))));
  try {
    const r = await runChild('tcp', srv.port);
    assert.equal(r.out, 'done ping');
    assert.equal(r.code, 0);
    assert.ok(r.afterDoneMs >= 0 && r.afterDoneMs < 1500, `exited ${r.afterDoneMs} ms after done`);
  } finally {
    await srv.stop();
  }
});

test('process exits by itself after failures: UDP ICMP refused, TCP refused, close() during a long connect', async () => {
  const udpPort = await closedUdpPort();
  const tcpPort = await closedTcpPort();
  const stuck = await stuckListener();
  try {
    const [u, t, a] = await Promise.all([runChild('udp-refused', udpPort), runChild('tcp-refused', tcpPort), runChild('tcp-abort', stuck.port)]);
    assert.equal(u.out, 'done CONN_REFUSED');
    assert.equal(t.out, 'done CONN_REFUSED');
    assert.equal(a.out, 'done TRANSPORT_CLOSED');
    for (const r of [u, t, a]) {
      assert.equal(r.code, 0);
      assert.ok(r.afterDoneMs >= 0 && r.afterDoneMs < 1500, `exited ${r.afterDoneMs} ms after done`);
    }
  } finally {
    await stuck.stop();
  }
});
