/**
 * No IPv6 leak with `redirect-gateway ipv6` (issue 16): the lab's OpenVPN server runs `server-ipv6` and pushes
 * `redirect-gateway ipv6` (IPv4 and IPv6 through the tunnel). The web host gets an extra address, 2001:db8:B::80
 * on its loopback, that no pushed route-ipv6 covers (only the srv–web /64 is pushed); srv routes it to the web
 * host. The root namespace, where our client runs, is given a route to that address via srv as well, so a
 * direct connection from this host would work, and an nft counter in the root namespace counts every packet this
 * host sends to it.
 *
 * The test first shows that the direct path works and is counted (curl without a proxy: the web host sees the
 * root namespace's own address, the counter moves). Then curl through our HTTP proxy and through SOCKS5 to
 * `[2001:db8:B::80]`: the bodies arrive, the web host sees our tunnel IPv6 address (fd00:8:…), our `--pcap` file
 * holds the IPv6 packets to and from that address, and the root namespace's counter did not move.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendToError, detSha256, labPrereqs, run, startLab, type Lab } from '../lab/index.js';
import { curl, sha256, startCli, type CliProcess } from './cli-helpers.js';
import { ipv6ToString } from '../../src/wire/ipv6.js';

const pre = labPrereqs(['openvpn', 'curl']);
const N = 2_000_000;

/** IPv6 source and destination of every IPv6 packet in a LINKTYPE_RAW pcap file (microsecond, little-endian). */
function pcapIpv6(buf: Buffer): { src: string; dst: string }[] {
  assert.equal(buf.readUInt32LE(0), 0xa1b2c3d4, 'pcap magic (little-endian, microseconds)');
  assert.equal(buf.readUInt32LE(20), 101, 'LINKTYPE_RAW');
  const out: { src: string; dst: string }[] = [];
  for (let off = 24; off + 16 <= buf.length; ) {
    const caplen = buf.readUInt32LE(off + 8);
    const pkt = buf.subarray(off + 16, off + 16 + caplen);
    off += 16 + caplen;
    if (pkt.length >= 40 && pkt[0]! >> 4 === 6) out.push({ src: ipv6ToString(pkt.subarray(8, 24)), dst: ipv6ToString(pkt.subarray(24, 40)) });
  }
  return out;
}

describe('no IPv6 leak with redirect-gateway ipv6 (a real OpenVPN server)', { skip: pre.skip, timeout: 300_000 }, () => {
  let lab: Lab;
  let tmp: string;
  let cli: CliProcess | undefined;
  let far = '';
  let table = '';

  const nft = (args: string[]) => run('nft', args, { timeoutMs: 10_000 });
  /** Packets this host (the root namespace) sent to `far` so far. */
  async function directPackets(): Promise<number> {
    const r = await nft(['list', 'table', 'ip6', table]);
    const m = /counter packets (\d+) bytes \d+/.exec(r.stdout);
    assert.ok(m, `no counter in:\n${r.stdout}`);
    return Number(m[1]);
  }

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'vpnproxy-leak6-'));
    lab = await startLab({ openvpn: { proto: 'udp', ipv6: true, push: ['redirect-gateway ipv6'] }, iperf: false });
    const a = lab.addr;
    far = `2001:db8:${a.octet}::80`;
    table = `vpnproxy_leak6_${a.octet}`;
    await lab.exec('web', 'ip', ['addr', 'add', `${far}/128`, 'dev', 'lo']);
    await lab.exec('srv', 'ip', ['route', 'add', `${far}/128`, 'via', a.web6]);
    // replies of the direct path (from the root namespace's address on the root–srv link) go back via srv
    await lab.exec('web', 'ip', ['route', 'add', `${a.rootToSrv6}/128`, 'via', a.srvWebSide6]);
    await run('ip', ['-6', 'route', 'replace', `${far}/128`, 'via', a.srv6], { timeoutMs: 10_000 });
    // a killed earlier run of this slot may have left its counter table behind (it only counts): start afresh
    await run('nft', ['delete', 'table', 'ip6', table], { allowFail: true, timeoutMs: 10_000 });
    await nft(['add', 'table', 'ip6', table]);
    await nft(['add', 'chain', 'ip6', table, 'out', '{ type filter hook output priority 0 ; }']);
    await nft(['add', 'rule', 'ip6', table, 'out', 'ip6', 'daddr', far, 'counter']);
  });
  after(async () => {
    await cli?.stop();
    if (table) await nft(['delete', 'table', 'ip6', table]).catch(() => undefined);
    if (far) await run('ip', ['-6', 'route', 'del', `${far}/128`], { allowFail: true, timeoutMs: 10_000 });
    await lab?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('the pushed routes do not cover the address, and from this host it is reachable directly (the counter sees it)', async () => {
    const a = lab.addr;
    const profile = lab.openvpn!.options;
    assert.deepEqual(profile.push, ['redirect-gateway ipv6']);
    assert.ok(!far.startsWith(a.webNet6.split('::')[0]!), `${far} lies outside the pushed route-ipv6 ${a.webNet6}`);
    const before = await directPackets();
    const r = await curl(['--max-time', '10', `http://[${far}]/ip`]);
    assert.equal(r.code, 0, `the direct path must work for this test to mean anything: ${r.stderr}`);
    const seen = JSON.parse(r.stdout.toString()) as { remoteAddress: string; localAddress: string };
    assert.equal(seen.remoteAddress, a.rootToSrv6, 'directly, the web host sees this host\'s own address');
    assert.equal(seen.localAddress, far);
    assert.ok((await directPackets()) > before, 'the nft counter counts direct packets');
  });

  test('through our HTTP proxy and SOCKS5 to [2001:db8:B::80]: via the tunnel (web host sees fd00:8:…, --pcap has the packets), nothing directly', async () => {
    const pcap = join(tmp, 'leak.pcap');
    cli = startCli(await lab.clientProfile(), ['--pcap', pcap]);
    let proxy = '';
    let socks = '';
    try {
      const ready = await cli.ready();
      proxy = `http://${ready.http!.host}:${ready.http!.port}`;
      socks = `${ready.socks!.host}:${ready.socks!.port}`;
    } catch (e) {
      appendToError(e, lab.logs());
      throw e;
    }
    const before = await directPackets();
    const ctx = () => `\n--- CLI stderr ---\n${cli!.stderr.slice(-3000)}`;
    for (const via of [['-x', proxy], ['-p', '-x', proxy], ['--socks5', socks]]) {
      const body = await curl([...via, `http://[${far}]/bytes/${N}`]);
      assert.equal(body.code, 0, `${via.join(' ')}: curl exit ${body.code}: ${body.stderr}${ctx()}`);
      assert.equal(body.stdout.length, N);
      assert.equal(sha256(body.stdout), detSha256(N));
      const ip = await curl([...via, `http://[${far}]/ip`]);
      assert.equal(ip.code, 0, `${via.join(' ')}: ${ip.stderr}${ctx()}`);
      const seen = JSON.parse(ip.stdout.toString()) as { remoteAddress: string; localAddress: string };
      assert.match(seen.remoteAddress, /^fd00:8:/, `${via.join(' ')}: the web host saw ${seen.remoteAddress}, not our tunnel address`);
      assert.equal(seen.localAddress, far);
    }
    await cli.waitForLog(/\[socks5\].*route=vpn/);
    assert.doesNotMatch(cli.stderr, /route=direct/);
    assert.equal(await directPackets(), before, `packets to ${far} left this host outside the tunnel`);
    await cli.stop();
    cli = undefined;
    const pkts = pcapIpv6(await readFile(pcap));
    const out = pkts.filter((p) => p.dst === far);
    const back = pkts.filter((p) => p.src === far);
    assert.ok(out.length > 100 && back.length > 100, `--pcap: ${out.length} packets to ${far}, ${back.length} from it`);
    assert.ok(out.every((p) => p.src.startsWith('fd00:8:')), `every packet to ${far} has our tunnel address: ${[...new Set(out.map((p) => p.src))].join(', ')}`);
  });
});
