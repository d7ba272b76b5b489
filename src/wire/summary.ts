/**
 * One-line, tcpdump-like description of an IPv4 packet for traces and logs. Never throws.
 *
 *   ICMP 10.8.0.2 > 10.8.0.1 echo-request id=1 seq=3 len=84
 *   TCP 10.8.0.2:40000 > 1.2.3.4:80 [S] seq=1000 ack=0 win=64240 len=0 mss=1460,sackOK,ts=1/0,wscale=7
 *   UDP 10.8.0.2:5353 > 10.8.0.1:53 len=33
 *   IPv4 10.8.0.2 > 10.8.0.1 proto=47 len=60
 *   invalid: IPv4 header checksum mismatch len=20
 *
 * `len` is the IP total length for ICMP and other protocols, the payload length for TCP and UDP.
 * Bad checksums do not stop decoding: they are flagged with "bad-ip-cksum" / "bad-cksum".
 */
import { VpnError } from '../errors.js';
import { internetChecksum } from './checksum.js';
import { parseIcmp, quotedPorts } from './icmp.js';
import { IpProtocol, ipv4ToString, parseIpv4 } from './ipv4.js';
import { parseTcp, tcpChecksumOk, tcpFlagsToString, type ParsedTcpOptions } from './tcp.js';
import { parseUdp } from './udp.js';

export function summarizePacket(ipPacket: Uint8Array): string {
  try {
    return summarize(ipPacket);
  } catch (e) {
    const reason = e instanceof VpnError ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return `invalid: ${reason} len=${ipPacket ? ipPacket.length : 0}`;
  }
}

function summarize(b: Uint8Array): string {
  const ip = parseIpv4(b, { verifyChecksum: false });
  const ipBad = internetChecksum(b, 0, ip.headerLength) !== 0 ? ' bad-ip-cksum' : '';
  const src = ipv4ToString(ip.src);
  const dst = ipv4ToString(ip.dst);
  if (ip.fragmentOffset !== 0 || ip.moreFragments) {
    return (
      `IPv4 ${src} > ${dst} proto=${ip.protocol} frag id=${ip.id} off=${ip.fragmentOffset}` +
      `${ip.moreFragments ? ' MF' : ''} len=${ip.totalLength}${ipBad}`
    );
  }
  const pseudo = { src: ip.src, dst: ip.dst };
  switch (ip.protocol) {
    case IpProtocol.TCP: {
      const t = parseTcp(ip.payload);
      const bad = tcpChecksumOk(ip.payload, pseudo) ? '' : ' bad-cksum';
      const opts = tcpOptionsSummary(t.options);
      return (
        `TCP ${src}:${t.srcPort} > ${dst}:${t.dstPort} [${tcpFlagsToString(t.flags)}] seq=${t.seq} ack=${t.ack} ` +
        `win=${t.window} len=${t.payload.length}${opts ? ' ' + opts : ''}${ipBad}${bad}`
      );
    }
    case IpProtocol.UDP: {
      const u = parseUdp(ip.payload);
      let bad = '';
      if (u.checksum !== 0) {
        try {
          parseUdp(ip.payload, pseudo);
        } catch {
          bad = ' bad-cksum';
        }
      }
      return `UDP ${src}:${u.srcPort} > ${dst}:${u.dstPort} len=${u.payload.length}${ipBad}${bad}`;
    }
    case IpProtocol.ICMP: {
      const bad = internetChecksum(ip.payload) !== 0 ? ' bad-cksum' : '';
      const m = parseIcmp(ip.payload, { verifyChecksum: false });
      let what: string;
      switch (m.kind) {
        case 'echo-request':
        case 'echo-reply':
          what = `${m.kind} id=${m.id} seq=${m.seq}`;
          break;
        case 'dest-unreachable':
        case 'time-exceeded': {
          const o = m.original;
          const ports = quotedPorts(m);
          const q = ports
            ? `${ipv4ToString(o.src)}:${ports.srcPort} > ${ipv4ToString(o.dst)}:${ports.dstPort}`
            : `${ipv4ToString(o.src)} > ${ipv4ToString(o.dst)}`;
          what = `${m.kind} code=${m.code}${m.nextHopMtu ? ` mtu=${m.nextHopMtu}` : ''} for proto=${o.protocol} ${q}`;
          break;
        }
        default:
          what = `type=${m.type} code=${m.code}`;
      }
      return `ICMP ${src} > ${dst} ${what} len=${ip.totalLength}${ipBad}${bad}`;
    }
    default:
      return `IPv4 ${src} > ${dst} proto=${ip.protocol} len=${ip.totalLength}${ipBad}`;
  }
}

function tcpOptionsSummary(o: ParsedTcpOptions): string {
  const parts: string[] = [];
  if (o.mss !== undefined) parts.push(`mss=${o.mss}`);
  if (o.sackPermitted) parts.push('sackOK');
  if (o.timestamp) parts.push(`ts=${o.timestamp.value}/${o.timestamp.echo}`);
  if (o.windowScale !== undefined) parts.push(`wscale=${o.windowScale}`);
  if (o.sack) parts.push(`sack=${o.sack.map((s) => `${s.left}-${s.right}`).join('/')}`);
  return parts.join(',');
}
