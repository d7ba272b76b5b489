/**
 * The lab's DNS server (dnsmasq on the web host, test/lab/dns.ts), queried from the srv namespace (the only
 * place besides a tunnel that reaches the web host): web.lab.test answers the web address, big.lab.test is
 * truncated (TC) over UDP without EDNS and complete (100 A records) over TCP, unknown lab.test names are
 * NXDOMAIN and other names REFUSED. Other tests (resolver TCP fallback, socks5h) rely on exactly this.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { labPrereqs, startLab, type Lab } from '../lab/index.js';

const pre = labPrereqs(['openvpn', 'dns']);

// Runs in the srv namespace: one query over UDP or TCP, prints {tc, rcode, addresses}.
const QUERY = `
const [proto, server, name] = process.argv.slice(1);
const q = Buffer.concat([Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
  ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, 1, 0, 1])]);
function parse(b) {
  const an = b.readUInt16BE(6); let off = 12;
  while (b[off] !== 0) off += b[off] + 1; off += 5;
  const addresses = [];
  for (let i = 0; i < an && off < b.length; i++) {
    off += (b[off] & 0xc0) === 0xc0 ? 2 : 0;
    const type = b.readUInt16BE(off), len = b.readUInt16BE(off + 8);
    if (type === 1) addresses.push([...b.subarray(off + 10, off + 14)].join('.'));
    off += 10 + len;
  }
  console.log(JSON.stringify({ tc: (b[2] & 2) !== 0, rcode: b[3] & 15, addresses }));
}
setTimeout(() => { console.log('timeout'); process.exit(1); }, 5000);
if (proto === 'udp') {
  const s = require('node:dgram').createSocket('udp4');
  s.on('message', (m) => { parse(m); process.exit(0); });
  s.send(q, 53, server);
} else {
  const c = require('node:net').connect(53, server, () => { const l = Buffer.alloc(2); l.writeUInt16BE(q.length); c.write(Buffer.concat([l, q])); });
  let buf = Buffer.alloc(0);
  c.on('data', (d) => { buf = Buffer.concat([buf, d]); if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) { parse(buf.subarray(2)); process.exit(0); } });
}`;

describe('lab DNS (dnsmasq on the web host)', { skip: pre.skip, timeout: 120_000 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({ iperf: false });
  });
  after(async () => {
    await lab?.stop();
  });
  const ask = async (proto: 'udp' | 'tcp', name: string) =>
    JSON.parse((await lab.exec('srv', process.execPath, ['-e', QUERY, proto, lab.web.dns, name], { timeoutMs: 10_000 })).stdout) as {
      tc: boolean;
      rcode: number;
      addresses: string[];
    };

  test('names, truncation over UDP, TCP, NXDOMAIN and REFUSED', async () => {
    assert.deepEqual(await ask('udp', lab.web.name), { tc: false, rcode: 0, addresses: [lab.web.host] });
    assert.deepEqual(await ask('tcp', lab.web.name), { tc: false, rcode: 0, addresses: [lab.web.host] });
    const udpBig = await ask('udp', lab.web.bigName);
    assert.equal(udpBig.tc, true, 'big.lab.test is truncated over UDP');
    assert.ok(udpBig.addresses.length < lab.web.bigAddresses.length);
    const tcpBig = await ask('tcp', lab.web.bigName);
    assert.equal(tcpBig.tc, false);
    assert.deepEqual([...tcpBig.addresses].sort(), [...lab.web.bigAddresses].sort(), 'complete over TCP');
    assert.equal((await ask('udp', `nope.${lab.web.domain}`)).rcode, 3);
    assert.equal((await ask('udp', 'example.com')).rcode, 5);
  });
});
