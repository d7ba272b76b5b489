import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLinkPair, type LinkConfig } from '../../../src/link/link.js';
import { LINKTYPE_RAW, PcapWriter, withPcap } from '../../../src/link/pcap.js';
import { samplePackets } from '../wire/samples.js';

const cfg = (address: string): LinkConfig => ({
  address,
  netmask: '255.255.255.0',
  mtu: 1500,
  dns: [],
  domains: [],
  routes: [],
  redirectGateway: false,
});

const TSHARK = process.env.TSHARK ?? '/usr/bin/tshark';

function tshark(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(TSHARK, args, { timeout: 20_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`tshark failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Capture the sample packets through withPcap around an in-memory link pair. */
async function capture(path: string): Promise<{ received: Uint8Array[]; writer: PcapWriter }> {
  const s = samplePackets();
  const [a, b] = createLinkPair(cfg('10.8.0.2'), cfg('10.8.0.1'));
  const writer = PcapWriter.open(path);
  const wrapped = withPcap(a, writer);
  const received: Uint8Array[] = [];
  wrapped.onReceive((p) => received.push(p));
  b.onReceive(() => {});
  wrapped.send(s.echoRequest!); // out
  b.send(s.echoReply!); // in
  wrapped.send(s.syn!); // out
  wrapped.send(s.udp!); // out
  await writer.close();
  return { received, writer };
}

test('pcap file layout: global header, record headers, copied packet bytes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pcap-'));
  try {
    const path = join(dir, 'x.pcap');
    const { received, writer } = await capture(path);
    assert.equal(received.length, 1);
    assert.equal(writer.packetsWritten, 4);
    const f = readFileSync(path);
    assert.equal(f.readUInt32LE(0), 0xa1b2c3d4);
    assert.equal(f.readUInt16LE(4), 2);
    assert.equal(f.readUInt16LE(6), 4);
    assert.equal(f.readUInt32LE(16), 65535);
    assert.equal(f.readUInt32LE(20), LINKTYPE_RAW);
    const s = samplePackets();
    const expected = [s.echoRequest!, s.echoReply!, s.syn!, s.udp!];
    let off = 24;
    const nowSec = Date.now() / 1000;
    for (const pkt of expected) {
      const sec = f.readUInt32LE(off);
      const usec = f.readUInt32LE(off + 4);
      assert.ok(Math.abs(sec - nowSec) < 60, 'timestamp is wall-clock');
      assert.ok(usec < 1_000_000);
      assert.equal(f.readUInt32LE(off + 8), pkt.length);
      assert.equal(f.readUInt32LE(off + 12), pkt.length);
      assert.deepEqual(new Uint8Array(f.subarray(off + 16, off + 16 + pkt.length)), pkt);
      off += 16 + pkt.length;
    }
    assert.equal(off, f.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('snaplen truncates, explicit timestamps, caller buffer reuse does not change the capture', async () => {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  const w = new PcapWriter(sink, { snaplen: 10 });
  const pkt = new Uint8Array(30).fill(7);
  w.write(pkt, 1_700_000_000_123.456);
  pkt.fill(9); // reuse after write: the record must keep the 7s
  await w.close();
  await w.close(); // idempotent
  w.write(pkt); // after close: dropped, no throw
  assert.equal(w.packetsDropped, 1);
  const f = Buffer.concat(chunks);
  assert.equal(f.length, 24 + 16 + 10);
  assert.equal(f.readUInt32LE(24), 1_700_000_000);
  assert.equal(f.readUInt32LE(28), 123_456);
  assert.equal(f.readUInt32LE(32), 10);
  assert.equal(f.readUInt32LE(36), 30);
  assert.deepEqual([...f.subarray(40)], new Array(10).fill(7));
});

test('a failing stream stops the capture but never throws into the packet path', async () => {
  const sink = new Writable({
    write(_c, _e, cb) {
      cb(new Error('disk full'));
    },
  });
  const w = new PcapWriter(sink);
  await new Promise((r) => setImmediate(r));
  w.write(new Uint8Array(20));
  assert.equal(w.lastError?.message, 'disk full');
  assert.equal(w.packetsDropped, 1);
  await w.close();
});

test('Must-show: tshark decodes the captured ICMP echo request/reply, TCP SYN with options and UDP datagram', async (t) => {
  if (!existsSync(TSHARK)) {
    if (process.env.CI === 'true') assert.fail(`tshark not found at ${TSHARK} (required when CI=true)`);
    t.skip(`tshark not installed at ${TSHARK}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'pcap-'));
  try {
    const path = join(dir, 'must-show.pcap');
    await capture(path);
    const fields = [
      'ip.src',
      'ip.dst',
      'ip.proto',
      'tcp.srcport',
      'tcp.flags.syn',
      'icmp.type',
      'udp.dstport',
      'icmp.seq',
      'tcp.options.mss_val',
      'tcp.options.wscale.shift',
      'tcp.options.timestamp.tsval',
      'ip.checksum.status',
      'tcp.checksum.status',
      'udp.checksum.status',
      'icmp.checksum.status',
    ];
    const out = await tshark([
      '-r', path,
      '-o', 'ip.check_checksum:TRUE',
      '-o', 'tcp.check_checksum:TRUE',
      '-o', 'udp.check_checksum:TRUE',
      '-T', 'fields',
      '-E', 'separator=|',
      ...fields.flatMap((f) => ['-e', f]),
    ]);
    const rows = out.trim().split('\n').map((l) => {
      const v = l.split('|');
      return Object.fromEntries(fields.map((f, i) => [f, v[i] ?? '']));
    });
    assert.equal(rows.length, 4, out);
    const [req, rep, syn, udp] = rows as Array<Record<string, string>>;
    // checksum status (Wireshark proto_checksum_enum_e): 0 = bad, 1 = good, 2 = unverified
    assert.deepEqual(
      { src: req!['ip.src'], dst: req!['ip.dst'], proto: req!['ip.proto'], type: req!['icmp.type'], seq: req!['icmp.seq'], ck: req!['icmp.checksum.status'], ipck: req!['ip.checksum.status'] },
      { src: '10.8.0.2', dst: '10.8.0.1', proto: '1', type: '8', seq: '3', ck: '1', ipck: '1' },
    );
    assert.deepEqual(
      { src: rep!['ip.src'], dst: rep!['ip.dst'], type: rep!['icmp.type'], ck: rep!['icmp.checksum.status'] },
      { src: '10.8.0.1', dst: '10.8.0.2', type: '0', ck: '1' },
    );
    assert.deepEqual(
      {
        dst: syn!['ip.dst'],
        proto: syn!['ip.proto'],
        sport: syn!['tcp.srcport'],
        syn: syn!['tcp.flags.syn'],
        mss: syn!['tcp.options.mss_val'],
        ws: syn!['tcp.options.wscale.shift'],
        tsval: syn!['tcp.options.timestamp.tsval'],
        ck: syn!['tcp.checksum.status'],
      },
      { dst: '1.2.3.4', proto: '6', sport: '40000', syn: '1', mss: '1360', ws: '7', tsval: '1', ck: '1' },
    );
    assert.deepEqual(
      { proto: udp!['ip.proto'], dport: udp!['udp.dstport'], ck: udp!['udp.checksum.status'] },
      { proto: '17', dport: '53', ck: '1' },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
