/**
 * Packet inspection on the product path: `vpnproxy openvpn PROFILE --ping ... --pcap FILE --log-level trace`
 * against the lab's real OpenVPN server writes the tunnel's IP packets, both directions, to a pcap that tshark
 * decodes, and prints one decoded line per packet.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labPrereqs, startLab, type Lab } from '../lab/index.js';
import { REPO } from './cli-helpers.js';

const pre = labPrereqs();

function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: REPO });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('CLI packet inspection through a real OpenVPN server', { skip: pre.skip, timeout: 120_000 }, () => {
  let lab: Lab;
  let dir: string;
  before(async () => {
    lab = await startLab({ openvpn: { proto: 'udp' }, iperf: false });
    dir = mkdtempSync(join(tmpdir(), 'vpnproxy-pcap-'));
  });
  after(async () => {
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('--pcap writes both directions, tshark decodes them; --log-level trace prints one line per packet', async () => {
    const pcap = join(dir, 'tunnel.pcap');
    const server = lab.openvpn!.serverTunIp;
    const r = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'openvpn', await lab.clientProfile(), '--ping', server, '--count', '3', '--interval', '0.2', '--pcap', pcap, '--log-level', 'trace']);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    // One trace line per packet, decoded: 3 echo requests out, 3 replies in.
    const outLines = r.stderr.split('\n').filter((l) => /\bout ICMP \S+ > \S+ echo-request/.test(l));
    const inLines = r.stderr.split('\n').filter((l) => /\bin ICMP \S+ > \S+ echo-reply/.test(l));
    assert.equal(outLines.length, 3, r.stderr.slice(-2000));
    assert.equal(inLines.length, 3);
    const fields = await new Promise<string>((resolve, reject) =>
      execFile('tshark', ['-r', pcap, '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'icmp.type', '-e', 'icmp.seq'], { timeout: 30_000 }, (e, out, err) =>
        e ? reject(new Error(`${e.message}\n${err}`)) : resolve(out),
      ),
    );
    const rows = fields.trim().split('\n').map((l) => l.split('\t'));
    const requests = rows.filter((f) => f[1] === server && f[2] === '8');
    const replies = rows.filter((f) => f[0] === server && f[2] === '0');
    assert.equal(requests.length, 3, fields);
    assert.equal(replies.length, 3, fields);
    assert.deepEqual(replies.map((f) => f[3]), ['1', '2', '3']);
  });
});
