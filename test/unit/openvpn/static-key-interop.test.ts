/**
 * Interop with the real OpenVPN binary as a static-key / plaintext p2p peer on loopback (`--dev null`: no
 * root, no device). It pings us every second; we decrypt its pings, and prove it decrypts ours by sending
 * an OCC_REQUEST that it must answer with an OCC_REPLY. Without openvpn the test is skipped with a one-line
 * reason, or fails when CI=true.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { StaticKeyChannel, occResponse, p2pOccOptionsString } from '../../../src/openvpn/static-key.js';
import { framingFor } from '../../../src/openvpn/compress.js';
import { OCC_OP, PING_MAGIC, buildOccMessage, isPing, occOpcode } from '../../../src/openvpn/datachannel.js';
import { StaticKey, formatStaticKey } from '../../../src/openvpn/keyfile.js';
import type { CompressionSetting } from '../../../src/openvpn/profile-types.js';

function findOpenvpn(): string | undefined {
  for (const bin of ['openvpn', '/usr/sbin/openvpn']) {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000 });
    if (r.status === 1 || r.status === 0) if (/OpenVPN 2\.\d/.test(r.stdout)) return bin;
  }
  return undefined;
}
const OPENVPN = findOpenvpn();
const skip = OPENVPN || process.env.CI === 'true' ? undefined : 'openvpn binary not found (apt-get install openvpn)';

interface Case {
  name: string;
  mode: 'static-key' | 'p2p-plain';
  cipher?: string;
  auth?: string;
  /** openvpn's `--secret key N`; ours is the other one (or none for none). */
  theirDirection?: 0 | 1;
  compression?: CompressionSetting;
  /** openvpn compression flags */
  compFlags: string[];
}

const CASES: Case[] = [
  { name: 'AES-256-CBC + SHA256, openvpn direction 0 / ours 1', mode: 'static-key', cipher: 'AES-256-CBC', auth: 'SHA256', theirDirection: 0, compFlags: [] },
  { name: 'AES-128-CBC + SHA1, openvpn direction 1 / ours 0, comp-lzo', mode: 'static-key', cipher: 'AES-128-CBC', auth: 'SHA1', theirDirection: 1, compression: { kind: 'comp-lzo', mode: 'yes' }, compFlags: ['--comp-lzo', 'yes', '--allow-compression', 'yes'] },
  { name: 'AES-256-CBC + SHA512, no direction, compress lz4-v2', mode: 'static-key', cipher: 'AES-256-CBC', auth: 'SHA512', compression: { kind: 'compress', algo: 'lz4-v2' }, compFlags: ['--compress', 'lz4-v2', '--allow-compression', 'yes'] },
  { name: 'plaintext p2p, compress stub', mode: 'p2p-plain', compression: { kind: 'compress', algo: 'stub' }, compFlags: ['--compress', 'stub'] },
];

async function udpSocket(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((res, rej) => {
    s.once('error', rej);
    s.bind(0, '127.0.0.1', () => res());
  });
  return s;
}

async function freePort(): Promise<number> {
  const s = await udpSocket();
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(t);
}

describe('static-key / p2p interop with the real openvpn binary', { skip }, () => {
  for (const c of CASES) {
    test(c.name, { timeout: 20_000 }, async () => {
      assert.ok(OPENVPN, 'openvpn binary not found (required when CI=true)');
      const dir = mkdtempSync(join(tmpdir(), 'vpnproxy-static-'));
      const keyBytes = randomBytes(256);
      const keyFile = join(dir, 'static.key');
      writeFileSync(keyFile, formatStaticKey(keyBytes)); // also checks that openvpn reads our key format
      const sock = await udpSocket();
      const ourPort = sock.address().port;
      const theirPort = await freePort();
      const args = ['--dev', 'null', '--proto', 'udp', '--local', '127.0.0.1', '--lport', String(theirPort), '--remote', '127.0.0.1', String(ourPort), '--ping', '1', '--verb', '3', ...c.compFlags];
      if (c.mode === 'static-key') {
        args.push('--secret', keyFile, ...(c.theirDirection === undefined ? [] : [String(c.theirDirection)]), '--cipher', c.cipher!, '--auth', c.auth!);
      }
      const child = spawn(OPENVPN!, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let log = '';
      child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      child.on('error', (e) => (log += `spawn error: ${e.message}\n`));
      const ours = new StaticKeyChannel({
        mode: c.mode,
        key: new StaticKey(new Uint8Array(keyBytes)),
        direction: c.theirDirection === undefined ? undefined : ((1 - c.theirDirection) as 0 | 1),
        ...(c.cipher ? { cipher: c.cipher } : {}),
        ...(c.auth ? { auth: c.auth } : {}),
        framing: framingFor(c.compression),
      });
      let pings = 0;
      let occReply = '';
      const errors: string[] = [];
      sock.on('message', (msg, rinfo) => {
        if (rinfo.port !== theirPort) return;
        try {
          const p = ours.decrypt(msg);
          if (isPing(p)) pings++;
          else if (occOpcode(p) === OCC_OP.REPLY) occReply = p.subarray(17).toString('latin1');
          else if (occOpcode(p) === OCC_OP.REQUEST) {
            const r = occResponse(p, 'V4,dev-type null');
            if (r) sock.send(ours.encrypt(r), theirPort, '127.0.0.1');
          }
        } catch (e) {
          errors.push((e as Error).message);
        }
      });
      const send = (p: Uint8Array) => sock.send(ours.encrypt(p), theirPort, '127.0.0.1');
      const timer = setInterval(() => {
        send(PING_MAGIC);
        if (!occReply) send(buildOccMessage(OCC_OP.REQUEST));
      }, 300);
      try {
        const deadline = Date.now() + 12_000;
        while ((pings < 3 || !occReply) && Date.now() < deadline && child.exitCode === null) {
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.deepEqual(errors, [], `packets from openvpn we could not decrypt; openvpn log:\n${log}`);
        assert.ok(pings >= 3, `only ${pings} pings decrypted from openvpn within 12 s; log:\n${log}`);
        assert.ok(occReply.startsWith('V4,'), `openvpn did not answer our OCC_REQUEST (so it could not decrypt our packets); log:\n${log}`);
        if (c.mode === 'static-key') {
          assert.match(occReply, new RegExp(`cipher ${c.cipher},auth ${c.auth},keysize \\d+,secret\\0$`));
          if (c.theirDirection !== undefined) assert.match(occReply, new RegExp(`keydir ${c.theirDirection},`));
        }
        if (c.compression) assert.match(occReply, /,comp-lzo/);
        // our OCC string for the same settings is what openvpn sends (link-mtu aside)
        const mine = p2pOccOptionsString({
          mode: c.mode,
          devType: 'null',
          compLzo: c.compression !== undefined,
          ...(c.theirDirection !== undefined ? { direction: c.theirDirection } : {}),
          ...(c.cipher ? { cipher: c.cipher } : {}),
          ...(c.auth ? { auth: c.auth } : {}),
        });
        const noMtu = (s: string) => s.replace(/link-mtu \d+,/, '');
        assert.equal(noMtu(occReply), noMtu(mine) + '\0');
        assert.equal(ours.stats.dropAuth + ours.stats.dropDecrypt + ours.stats.dropReplay, 0);
        assert.doesNotMatch(log, /Authenticate\/Decrypt packet error|bad compression|Bad LZO|Bad compression/i, 'openvpn rejected some of our packets');
      } finally {
        clearInterval(timer);
        await stop(child);
        await new Promise<void>((r) => sock.close(() => r()));
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
