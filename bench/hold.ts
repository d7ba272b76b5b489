/**
 * Holds N proxied connections open at once: each sends `GET http://TARGET/trickle?bytes=B&interval=MS` in
 * absolute form to the HTTP proxy and reads the trickled body to its end. Connections are opened over
 * --ramp-ms. Prints one JSON line `{connections, completed, errors, peakOpen, firstErrors, seconds}`; an error
 * is a socket error, a non-200 status, a short or wrong-sized body, or a connection still open at the deadline.
 *
 *   node --import tsx bench/hold.ts --proxy 127.0.0.1:PORT --target 10.101.2.2 [--connections 1000] \
 *     [--bytes 20] [--interval 500] [--ramp-ms 1000]
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

function arg(name: string, dflt?: string): string {
  const i = process.argv.indexOf(name);
  const v = i > 0 ? process.argv[i + 1] : dflt;
  if (v === undefined) {
    process.stderr.write(`hold.ts: ${name} is required\n`);
    process.exit(2);
  }
  return v;
}

const [proxyHost, proxyPort] = ((p) => [p.slice(0, p.lastIndexOf(':')), Number(p.slice(p.lastIndexOf(':') + 1))] as const)(arg('--proxy'));
const target = arg('--target');
const n = Number(arg('--connections', '1000'));
const bytes = Number(arg('--bytes', '20'));
const interval = Number(arg('--interval', '500'));
const rampMs = Number(arg('--ramp-ms', '1000'));
const deadlineMs = rampMs + bytes * interval + 30_000;

let open = 0;
let peakOpen = 0;
let completed = 0;
let errors = 0;
const firstErrors: string[] = [];
const sockets = new Set<Socket>();

function fail(why: string): void {
  errors++;
  if (firstErrors.length < 5) firstErrors.push(why);
}

function one(i: number): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    let counted = false;
    const finish = (err?: string): void => {
      if (done) return;
      done = true;
      if (counted) open--;
      if (err) fail(`#${i}: ${err}`);
      else completed++;
      sockets.delete(s);
      s.destroy();
      resolve();
    };
    const s = connect(proxyPort, proxyHost);
    sockets.add(s);
    s.setNoDelay(true);
    let head = '';
    let headerDone = false;
    let body = 0;
    let expected = -1;
    s.on('connect', () => {
      s.write(`GET http://${target}/trickle?bytes=${bytes}&interval=${interval}&seed=${i} HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`);
    });
    s.on('data', (chunk: Buffer) => {
      if (!headerDone) {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        headerDone = true;
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1];
        if (status !== '200') return finish(`status ${status ?? '?'}: ${head.split('\r\n')[0]}`);
        expected = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? -1);
        body = head.length - end - 4;
        counted = true;
        open++;
        if (open > peakOpen) peakOpen = open;
      } else body += chunk.length;
      if (expected >= 0 && body > expected) finish(`body ${body} > ${expected}`);
      else if (body === expected) finish();
    });
    s.on('error', (e) => finish(`socket error ${e.message}`));
    s.on('close', () => finish(headerDone ? `closed after ${body}/${expected} body bytes` : 'closed before the response'));
  });
}

const t0 = performance.now();
const all: Promise<void>[] = [];
for (let i = 0; i < n; i++) {
  all.push(one(i));
  if (rampMs > 0 && i % 10 === 9) await new Promise((r) => setTimeout(r, (rampMs * 10) / n));
}
const timer = setTimeout(() => {
  for (const s of sockets) s.destroy(new Error('still open at the deadline'));
}, deadlineMs);
await Promise.all(all);
clearTimeout(timer);
process.stdout.write(
  `${JSON.stringify({ connections: n, completed, errors, peakOpen, firstErrors, seconds: (performance.now() - t0) / 1000 })}\n`,
);
process.exit(0);
