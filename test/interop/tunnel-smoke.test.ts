/**
 * The tunnel end to end: our OpenVPN client, IP stack and TCP against the real OpenVPN 2.6 server, talking to
 * the Linux kernel's TCP on the lab's web host. A download and an upload, byte-exact.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { VpnTunnel } from '../../src/tunnel.js';
import { detBytes, detSha256, labPrereqs, type Lab } from '../lab/index.js';
import { startLabTunnel, stopLabTunnel } from './stack-helpers.js';

const pre = labPrereqs();

function httpGet(t: VpnTunnel, host: string, port: number, path: string): Promise<{ head: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    t.connect({ host, port, timeoutMs: 10_000 }).then((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('error', reject);
      s.on('end', () => {
        const all = Buffer.concat(chunks);
        const i = all.indexOf('\r\n\r\n');
        resolve({ head: all.subarray(0, i).toString('latin1'), body: all.subarray(i + 4) });
      });
      s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    }, reject);
  });
}

describe('tunnel: our TCP to the kernel TCP through a real OpenVPN server', { skip: pre.skip, timeout: 300_000 }, () => {
  let lab: Lab;
  let tunnel: VpnTunnel;
  before(async () => {
    ({ lab, tunnel } = await startLabTunnel());
  });
  after(() => stopLabTunnel(lab, tunnel));

  test('download 20 MB byte-exact', async () => {
    const n = 20_000_000;
    const r = await httpGet(tunnel, lab.web.host, lab.web.httpPort, `/bytes/${n}`);
    assert.match(r.head, /^HTTP\/1\.1 200/);
    assert.equal(r.body.length, n);
    assert.equal(createHash('sha256').update(r.body).digest('hex'), detSha256(n));
  });

  test('upload 20 MB byte-exact', async () => {
    const n = 20_000_000;
    const body = detBytes(n);
    const s = await tunnel.connect({ host: lab.web.host, port: lab.web.httpPort });
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    const ended = new Promise((r) => s.on('end', r));
    s.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${n}\r\nConnection: close\r\n\r\n`);
    s.write(body);
    await ended;
    const text = Buffer.concat(chunks).toString();
    const json = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { bytes: number; sha256: string };
    assert.equal(json.bytes, n);
    assert.equal(json.sha256, createHash('sha256').update(body).digest('hex'));
  });

  test('a closed port is refused at once', async () => {
    await assert.rejects(tunnel.connect({ host: lab.web.host, port: 9 }), (e: Error & { code?: string }) => e.code === 'CONN_REFUSED');
  });
});
