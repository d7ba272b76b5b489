/**
 * One-line, tcpdump-like description of an IPv4 or IPv6 packet for traces and logs. Never throws.
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
import { parseIcmpv6 } from './icmpv6.js';
import { ipv6AddressSum, ipv6ToString, parseIpv6 } from './ipv6.js';

export function summarizePacket(ipPacket: Uint8Array): string {
  try {
    return summarize(ipPacket);
  } catch (e) {
    const reason = e instanceof VpnError ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return `invalid: ${reason} len=${ipPacket ? ipPacket.length : 0}`;
  }
}

function summarize(b: Uint8Array): string {
  if (b.length > 0 && b[0]! >> 4 === 6) return summarize6(b);
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

/**
 *   TCP6 [fd00:8::1000]:40000 > [fd00:102:2::2]:80 [S] seq=1 ack=0 win=64800 len=0 mss=1440,...
 *   ICMP6 fd00:8::1000 > fd00:102:2::2 echo-request id=1 seq=3 len=104
 */
function summarize6(b: Uint8Array): string {
  const ip = parseIpv6(b);
  const src = ipv6ToString(ip.src);
  const dst = ipv6ToString(ip.dst);
  const len = 40 + ip.payloadLength;
  if (ip.fragment) return `IPv6 ${src} > ${dst} next=${ip.protocol} frag id=${ip.fragment.id} off=${ip.fragment.offset}${ip.fragment.moreFragments ? ' MF' : ''} len=${len}`;
  const pseudo = { src: 0, dst: 0, sum: ipv6AddressSum(ip.src, ip.dst) };
  switch (ip.protocol) {
    case IpProtocol.TCP: {
      const t = parseTcp(ip.payload);
      const bad = tcpChecksumOk(ip.payload, pseudo) ? '' : ' bad-cksum';
      const opts = tcpOptionsSummary(t.options);
      return (
        `TCP6 [${src}]:${t.srcPort} > [${dst}]:${t.dstPort} [${tcpFlagsToString(t.flags)}] seq=${t.seq} ack=${t.ack} ` +
        `win=${t.window} len=${t.payload.length}${opts ? ' ' + opts : ''}${bad}`
      );
    }
    case IpProtocol.UDP: {
      const u = parseUdp(ip.payload);
      let bad = '';
      try {
        parseUdp(ip.payload, pseudo);
      } catch {
        bad = ' bad-cksum';
      }
      return `UDP6 [${src}]:${u.srcPort} > [${dst}]:${u.dstPort} len=${u.payload.length}${bad}`;
    }
    case 58: {
      let bad = '';
      try {
        parseIcmpv6(ip.payload, pseudo.sum);
      } catch {
        bad = ' bad-cksum';
      }
      const m = parseIcmpv6(ip.payload);
      let what: string;
      if (m.kind === 'echo-request' || m.kind === 'echo-reply') what = `${m.kind} id=${m.id} seq=${m.seq}`;
      else if (m.kind === 'other') what = `type=${m.type} code=${m.code}`;
      else if (m.kind === 'dest-unreachable' || m.kind === 'packet-too-big' || m.kind === 'time-exceeded' || m.kind === 'parameter-problem')
        what = `${m.kind} code=${m.code}${m.kind === 'packet-too-big' ? ` mtu=${m.value}` : ''} for next=${m.original.protocol} ${ipv6ToString(m.original.src)} > ${ipv6ToString(m.original.dst)}`;
      else what = 'unknown';
      return `ICMP6 ${src} > ${dst} ${what} len=${len}${bad}`;
    }
    default:
      return `IPv6 ${src} > ${dst} next=${ip.protocol} len=${len}`;
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
