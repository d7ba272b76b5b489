/**
 * The CLI's port forwards through the lab's real OpenVPN server, 10 MB each way, byte-exact:
 *  - --forward 0:WEB:80: curl to the local port reaches the web host behind the VPN;
 *  - --remote-forward RPORT:127.0.0.1:P: curl on the web host (its own namespace, behind the server) to our
 *    tunnel address:RPORT reaches an HTTP server in this process.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { writeFile, rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { appendToError, detBytes, detSha256, labPrereqs, startLab, type Lab } from '../lab/index.js';
import { curl, sha256, startCli, type CliProcess, type Ready } from './cli-helpers.js';

const pre = labPrereqs(['openvpn', 'curl', 'dns']);
const N = 10_000_000;
const RPORT = 8022;

/** A local HTTP server: GET /download → detBytes(N, 'remote'); POST /upload → {bytes, sha256}. */
function localServer(): Promise<Server> {
  const body = detBytes(N, 'remote');
  const s = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/download') {
      res.writeHead(200, { 'content-length': N, 'content-type': 'application/octet-stream' });
      res.end(body);
      return;
    }
    if (req.method === 'POST' && req.url === '/upload') {
      const h = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        h.update(c);
      });
      req.on('end', () => res.end(JSON.stringify({ bytes, sha256: h.digest('hex') })));
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r(s)));
}

describe('CLI port forwards through a real OpenVPN server', { skip: pre.skip, timeout: 300_000 }, () => {
  let lab: Lab;
  let cli: CliProcess;
  let ready: Ready;
  let local: Server;
  let tmp: string;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'vpnproxy-fwd-'));
    local = await localServer();
    const lport = (local.address() as AddressInfo).port;
    lab = await startLab({ openvpn: { proto: 'udp' }, iperf: false });
    cli = startCli(await lab.clientProfile(), [
      '--http-proxy', 'off', '--socks-proxy', 'off',
      '--forward', `0:${lab.web.host}:${lab.web.httpPort}`,
      '--forward', `127.0.0.1:0:${lab.web.name}:${lab.web.httpPort}`,
      '--remote-forward', `${RPORT}:127.0.0.1:${lport}`,
    ]);
    try {
      ready = await cli.ready();
    } catch (e) {
      appendToError(e, lab.logs());
      throw e;
    }
  });
  after(async () => {
    await cli?.stop();
    await lab?.stop();
    local?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('the ready line lists both forwards with their bound ports and the remote forward on the tunnel address', () => {
    assert.equal(ready.http, undefined, '--http-proxy off');
    assert.equal(ready.socks, undefined, '--socks-proxy off');
    assert.equal(ready.forwards.length, 2);
    assert.ok(ready.forwards.every((f) => f.local.port > 0));
    assert.equal(ready.forwards[1]!.dest, `${lab.web.name}:${lab.web.httpPort}`);
    assert.equal(ready.remoteForwards.length, 1);
    assert.match(ready.remoteForwards[0]!.remote.host, /^10\.8\.0\.\d+$/);
    assert.equal(ready.remoteForwards[0]!.remote.port, RPORT);
  });

  test('--forward: 10 MB down and 10 MB up byte-exact (by address and by a name the tunnel DNS resolves)', async () => {
    for (const f of ready.forwards) {
      const base = `http://127.0.0.1:${f.local.port}`;
      const down = await curl([`${base}/bytes/${N}`]);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(down.stdout.length, N);
      assert.equal(sha256(down.stdout), detSha256(N));
    }
    const body = detBytes(N, 'fwd-up');
    const file = join(tmp, 'up.bin');
    await writeFile(file, body);
    const up = await curl(['--data-binary', `@${file}`, `http://127.0.0.1:${ready.forwards[0]!.local.port}/upload`]);
    assert.equal(up.code, 0, up.stderr);
    assert.deepEqual(JSON.parse(up.stdout.toString()), { bytes: N, sha256: sha256(body) });
    await cli.waitForLog(/\[forward\].*route=vpn.*bytes_down=1000\d{4}/);
  });

  test('--remote-forward: the web host reaches a local server through our tunnel address, 10 MB each way', async () => {
    const addr = ready.remoteForwards[0]!.remote.host;
    const down = await lab.exec('web', 'sh', ['-c', `curl -sS --max-time 60 http://${addr}:${RPORT}/download | sha256sum`], { timeoutMs: 90_000 });
    assert.equal(down.stdout.split(' ')[0], sha256(detBytes(N, 'remote')));
    const body = detBytes(N, 'remote-up');
    const file = join(tmp, 'remote-up.bin');
    await writeFile(file, body);
    const up = await lab.exec('web', 'curl', ['-sS', '--max-time', '60', '--data-binary', `@${file}`, `http://${addr}:${RPORT}/upload`], { timeoutMs: 90_000 });
    assert.deepEqual(JSON.parse(up.stdout), { bytes: N, sha256: sha256(body) });
    await cli.waitForLog(/\[remote-forward\].*route=direct/);
  });
});
